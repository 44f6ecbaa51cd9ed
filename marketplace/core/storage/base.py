"""Object storage: the interface the app uses, and what its implementations share.

Assets never pass through the app: studios upload and buyers download through presigned URLs,
and the store itself enforces the size and SHA-256 a studio declared (both are signed into the
upload URL), so the app only has to check `head()` afterwards.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol, runtime_checkable

from botocore.exceptions import ClientError

#: The header an uploader sends with the base64 SHA-256 of the body; signed into upload URLs.
CHECKSUM_HEADER = "x-amz-checksum-sha256"

#: SigV4 presigned URLs live at most 7 days.
MAX_PRESIGN_SECONDS = 7 * 24 * 3600

# ping() must answer /readyz quickly: one attempt, short timeouts, no retries.
_PING_TIMEOUT_SECONDS = 2.0

_NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NoSuchBucket", "NotFound"})

#: S3's most parts in one multipart upload.
MAX_PARTS = 10_000

#: How much of an object one ranged GET of `read_chunks` fetches (and holds in memory).
READ_CHUNK_BYTES = 16 * 1024**2

# A ranged GET cut short (a dropped connection) is asked for again this many times in all.
_READ_ATTEMPTS = 3

# What S3 says when it will not assemble an upload, in words for the uploader.
_MULTIPART_REFUSALS = {
    "InvalidPart": "a part was not uploaded, or its ETag is not the one the store gave",
    "InvalidPartOrder": "the parts are not in ascending order",
    "EntityTooSmall": "a part other than the last is smaller than the store allows (5 MiB)",
    "NoSuchUpload": "the upload no longer exists (completed, aborted or expired)",
    "BadDigest": "a part's SHA-256 is not the one it was uploaded with",
    "InvalidRequest": "a part's SHA-256 is missing",
}


@dataclass(frozen=True)
class ObjectInfo:
    """What the store reports about one stored object."""

    byte_size: int
    sha256_hex: str | None


class StorageUnavailable(Exception):
    """The object store could not be reached, or refused the request (never names credentials)."""


class ObjectMissing(Exception):
    """The object to read is not in the store."""


class ObjectChanged(Exception):
    """The object was replaced or deleted while it was being read."""


class MultipartRefused(Exception):
    """The store would not assemble a multipart upload: a part missing or not the one uploaded
    (its ETag), parts too small, or the upload gone (completed, aborted or expired)."""

    def __init__(self, message: str, *, upload_gone: bool = False) -> None:
        super().__init__(message)
        self.upload_gone = upload_gone


@dataclass(frozen=True)
class PartDone:
    """An uploaded part, as completing a multipart upload names it."""

    number: int
    etag: str
    sha256_hex: str


@runtime_checkable
class ObjectStorage(Protocol):
    """The object store the app uses (S3 in production, SeaweedFS locally, a fake in tests)."""

    def presign_put(self, key: str, *, byte_size: int, sha256_hex: str, expires_in: int) -> str:
        """Return a URL accepting one PUT of exactly byte_size bytes with this SHA-256.

        The uploader must send the body with `Content-Length: <byte_size>` (HTTP clients set it)
        and `x-amz-checksum-sha256: <base64 of the raw 32-byte digest>` (see `upload_headers`).
        The store refuses a body of another length (403), a missing or different checksum header
        (403), and bytes that do not match the checksum (400 BadDigest).
        """
        ...

    def presign_get(
        self,
        key: str,
        *,
        expires_in: int,
        filename: str | None = None,
        byte_range: tuple[int, int] | None = None,
    ) -> str:
        """Return a download URL; with filename, the download is served as an attachment.

        With byte_range (first and last byte, inclusive), the URL serves only those bytes
        (206): the `Range` header is signed into it, so the downloader must send exactly
        `range_headers(byte_range)`; another range, or none, is refused (403).
        """
        ...

    def head(self, key: str) -> ObjectInfo | None:
        """Return the object's size and SHA-256 (when the store reports it), or None if absent."""
        ...

    def ping(self) -> None:
        """Raise StorageUnavailable unless the bucket answers quickly."""
        ...

    def ensure_bucket(self) -> None:
        """Create the bucket if it is missing; idempotent."""
        ...

    def put_bytes(self, key: str, data: bytes) -> None:
        """Store data under key from the server side (seeding, tests), with its SHA-256."""
        ...

    def put_file(self, key: str, fileobj: BinaryIO) -> None:
        """Store a file's bytes under key from the server side, streamed, however large (an
        import's upload, for the worker that runs it)."""
        ...

    def read_chunks(self, key: str, *, chunk_size: int = READ_CHUNK_BYTES) -> Iterator[bytes]:
        """Yield the object's bytes in order, at most chunk_size at a time, however large it is
        (memory holds one chunk). ObjectMissing if it is absent, ObjectChanged if it is replaced
        or deleted before the last chunk."""
        ...

    # -- multipart uploads, for objects past one PUT's 5 GiB

    def start_multipart(self, key: str) -> str:
        """Start a multipart upload of key; return its upload id."""
        ...

    def multipart_alive(self, key: str, upload_id: str) -> bool:
        """Whether the upload still takes parts (not completed, aborted or expired)."""
        ...

    def presign_upload_part(
        self,
        key: str,
        upload_id: str,
        part_number: int,
        *,
        byte_size: int,
        sha256_hex: str,
        expires_in: int,
    ) -> str:
        """Return a URL accepting one PUT of part `part_number`: exactly byte_size bytes with
        this SHA-256, sent as for presign_put (`upload_headers(sha256_hex)`).

        The store answers the PUT with the part's `ETag`, which completing the upload needs.
        """
        ...

    def complete_multipart(self, key: str, upload_id: str, parts: list[PartDone]) -> None:
        """Assemble the object from its parts, in order; MultipartRefused if the store will not
        (a part missing or another than uploaded, too small, the upload gone)."""
        ...


# ------------------------------------------------------------------------------------ helpers


def _normalise_sha256_hex(sha256_hex: str) -> str:
    value = sha256_hex.strip().lower()
    if len(value) != 64 or any(ch not in "0123456789abcdef" for ch in value):
        raise ValueError("sha256_hex must be 64 hexadecimal digits")
    return value


def sha256_hex_to_base64(sha256_hex: str) -> str:
    """Return the base64 of the raw digest, the form S3 checksum headers carry."""
    return base64.b64encode(bytes.fromhex(_normalise_sha256_hex(sha256_hex))).decode("ascii")


def _base64_to_sha256_hex(value: str) -> str | None:
    """Return the hex digest of a base64 full-object SHA-256, None for anything else."""
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None  # e.g. a multipart "composite" checksum such as "abc...=-3"
    return raw.hex() if len(raw) == 32 else None


def upload_headers(sha256_hex: str) -> dict[str, str]:
    """Return the headers to send with a PUT to a presign_put URL (besides Content-Length)."""
    return {CHECKSUM_HEADER: sha256_hex_to_base64(sha256_hex)}


def range_headers(byte_range: tuple[int, int]) -> dict[str, str]:
    """The header a ranged download URL is signed for (first and last byte, inclusive)."""
    first, last = byte_range
    if not 0 <= first <= last:
        raise ValueError("a byte range runs from its first byte to a last byte not before it")
    return {"Range": f"bytes={first}-{last}"}


def attachment_disposition(filename: str) -> str:
    """Return a `Content-Disposition: attachment` value for filename (RFC 6266, RFC 5987)."""
    name = filename.replace("/", "_").replace("\\", "_")
    # The plain `filename=` must be printable ASCII without quotes or backslashes; the full name
    # (any Unicode, any character) travels percent-encoded in `filename*=`.
    fallback = "".join(ch if " " <= ch <= "~" and ch not in '"\\' else "_" for ch in name)
    fallback = fallback or "download"
    if fallback == name:
        return f'attachment; filename="{name}"'
    encoded = urllib.parse.quote(name, safe="")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


def _etag(data: bytes) -> str:
    """A part's ETag as S3 gives it (the MD5 of its bytes), unquoted."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _check_key(key: str) -> None:
    if not key or len(key.encode("utf-8")) > 1024:
        raise ValueError("object keys are 1 to 1024 bytes of UTF-8")


def _check_expiry(expires_in: int) -> None:
    if not 1 <= expires_in <= MAX_PRESIGN_SECONDS:
        raise ValueError(f"expires_in must be between 1 and {MAX_PRESIGN_SECONDS} seconds")


def _error_code(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    return str(error.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode"))
