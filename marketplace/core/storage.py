"""Object storage: the interface the app uses, the S3 implementation, and an in-memory fake.

Assets never pass through the app: studios upload and buyers download through presigned URLs,
and the store itself enforces the size and SHA-256 a studio declared (both are signed into the
upload URL), so the app only has to check `head()` afterwards.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

__all__ = [
    "CHECKSUM_HEADER",
    "MAX_PARTS",
    "MAX_PRESIGN_SECONDS",
    "InMemoryStorage",
    "READ_CHUNK_BYTES",
    "MultipartRefused",
    "ObjectChanged",
    "ObjectInfo",
    "ObjectMissing",
    "ObjectStorage",
    "PartDone",
    "S3Storage",
    "StorageUnavailable",
    "attachment_disposition",
    "range_headers",
    "sha256_hex_to_base64",
    "upload_headers",
]

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


# --------------------------------------------------------------------------------------- S3


class S3Storage:
    """ObjectStorage on S3 or an S3-compatible store (SeaweedFS in development and tests)."""

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key: str | None = None,
        secret_key: str | None = None,
    ) -> None:
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.region = region
        # One client for the life of this object: clients are thread-safe and costly to build.
        # Credentials stay inside it (None means boto3's usual chain: env, profile, role).
        self._client: Any = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                connect_timeout=3,
                read_timeout=30,
                retries={"mode": "standard", "max_attempts": 3},
            ),
        )

    @classmethod
    def from_settings(cls, settings: object) -> S3Storage:
        """Build from a settings object with s3_bucket, s3_endpoint_url, s3_region, aws_* keys."""

        def setting(name: str) -> str | None:
            value = getattr(settings, name, None)
            return str(value) if value else None  # empty strings mean "not set"

        bucket = setting("s3_bucket")
        if bucket is None:
            raise ValueError("settings.s3_bucket is required for S3 storage")
        return cls(
            bucket,
            endpoint_url=setting("s3_endpoint_url"),
            region=setting("s3_region") or "us-east-1",
            access_key=setting("aws_access_key_id"),
            secret_key=setting("aws_secret_access_key"),
        )

    def __repr__(self) -> str:
        return f"S3Storage(bucket={self.bucket!r}, endpoint_url={self.endpoint_url!r})"

    def close(self) -> None:
        """Close the client's pooled connections (optional; for tests and shutdown)."""
        self._client.close()

    def _unavailable(self, operation: str, exc: Exception) -> StorageUnavailable:
        # Only the operation, bucket and error code/class: never keys, signatures or URLs.
        detail = _error_code(exc) if isinstance(exc, ClientError) else type(exc).__name__
        return StorageUnavailable(
            f"object storage {operation} failed for bucket {self.bucket!r}: {detail}"
        )

    def presign_put(self, key: str, *, byte_size: int, sha256_hex: str, expires_in: int) -> str:
        """Return a URL accepting one PUT of exactly byte_size bytes with this SHA-256.

        Signed headers are `content-length`, `host` and `x-amz-checksum-sha256`, so the uploader
        must send `Content-Length: <byte_size>` and `x-amz-checksum-sha256: <base64 digest>`
        (`upload_headers(sha256_hex)`); any Content-Type is accepted. Another length or a
        missing/different checksum header gets 403; other bytes of the right length get 400.
        """
        if byte_size < 0:
            raise ValueError("byte_size must not be negative")
        return self._presign_upload("put_object", key, byte_size, sha256_hex, expires_in)

    def _presign_upload(
        self,
        operation: str,
        key: str,
        byte_size: int,
        sha256_hex: str,
        expires_in: int,
        **params: Any,
    ) -> str:
        """A PUT URL with the body's length and SHA-256 signed in (an object or a part)."""
        _check_key(key)
        _check_expiry(expires_in)
        url: str = self._client.generate_presigned_url(
            operation,
            Params={
                "Bucket": self.bucket,
                "Key": key,
                **params,
                "ContentLength": byte_size,
                "ChecksumSHA256": sha256_hex_to_base64(sha256_hex),
            },
            ExpiresIn=expires_in,
            HttpMethod="PUT",
        )
        return url

    def start_multipart(self, key: str) -> str:
        """Start a multipart upload of key; return its upload id."""
        _check_key(key)
        try:
            # Every part then carries its SHA-256, which the store checks against its bytes.
            response = self._client.create_multipart_upload(
                Bucket=self.bucket, Key=key, ChecksumAlgorithm="SHA256"
            )
        except (ClientError, BotoCoreError) as exc:
            raise self._unavailable("start_multipart", exc) from exc
        upload_id: str = response["UploadId"]
        return upload_id

    def multipart_alive(self, key: str, upload_id: str) -> bool:
        """Whether the upload still takes parts (not completed, aborted or expired)."""
        _check_key(key)
        try:
            self._client.list_parts(Bucket=self.bucket, Key=key, UploadId=upload_id, MaxParts=1)
        except ClientError as exc:
            if _error_code(exc) == "NoSuchUpload":
                return False
            raise self._unavailable("list_parts", exc) from exc
        except BotoCoreError as exc:
            raise self._unavailable("list_parts", exc) from exc
        return True

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
        """Return a URL accepting one PUT of part `part_number`: byte_size bytes, this SHA-256.

        Signed as presign_put's: another length or checksum header gets 403, other bytes 400.
        """
        if not 1 <= part_number <= MAX_PARTS or byte_size < 1:
            raise ValueError("part_number must be 1..10000 and byte_size positive")
        return self._presign_upload(
            "upload_part",
            key,
            byte_size,
            sha256_hex,
            expires_in,
            UploadId=upload_id,
            PartNumber=part_number,
        )

    def complete_multipart(self, key: str, upload_id: str, parts: list[PartDone]) -> None:
        """Assemble the object from its parts; MultipartRefused if the store will not."""
        _check_key(key)
        try:
            self._client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={
                    "Parts": [
                        {
                            "PartNumber": part.number,
                            "ETag": part.etag,
                            "ChecksumSHA256": sha256_hex_to_base64(part.sha256_hex),
                        }
                        for part in parts
                    ]
                },
            )
        except ClientError as exc:
            code = _error_code(exc)
            if code in _MULTIPART_REFUSALS:
                raise MultipartRefused(
                    _MULTIPART_REFUSALS[code], upload_gone=code == "NoSuchUpload"
                ) from exc
            raise self._unavailable("complete_multipart", exc) from exc
        except BotoCoreError as exc:
            raise self._unavailable("complete_multipart", exc) from exc

    def read_chunks(self, key: str, *, chunk_size: int = READ_CHUNK_BYTES) -> Iterator[bytes]:
        """Yield the object's bytes in ranged GETs of chunk_size, each made conditional on the
        ETag the object had when reading began (the store answers 412 if it was replaced)."""
        _check_key(key)
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        try:
            response = self._client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _error_code(exc) in _NOT_FOUND_CODES:
                raise ObjectMissing(key) from exc
            raise self._unavailable("read", exc) from exc
        except BotoCoreError as exc:
            raise self._unavailable("read", exc) from exc
        size, etag = int(response["ContentLength"]), response["ETag"]
        for start in range(0, size, chunk_size):
            yield self._read_range(key, etag, start, min(start + chunk_size, size) - 1)

    def _read_range(self, key: str, etag: str, first: int, last: int) -> bytes:
        failure: Exception | None = None
        for _ in range(_READ_ATTEMPTS):
            try:
                response = self._client.get_object(
                    Bucket=self.bucket, Key=key, Range=f"bytes={first}-{last}", IfMatch=etag
                )
                data: bytes = response["Body"].read()
            except ClientError as exc:
                code = _error_code(exc)
                if code in _NOT_FOUND_CODES or code in {"PreconditionFailed", "412"}:
                    raise ObjectChanged(key) from exc
                raise self._unavailable("read", exc) from exc
            except BotoCoreError as exc:  # incl. a body cut short: ask for the range again
                failure = exc
                continue
            if len(data) == last - first + 1:
                return data
            failure = BotoCoreError()
        raise self._unavailable("read", failure or BotoCoreError())

    def presign_get(
        self,
        key: str,
        *,
        expires_in: int,
        filename: str | None = None,
        byte_range: tuple[int, int] | None = None,
    ) -> str:
        """Return a download URL; with filename, the download is served as an attachment;
        with byte_range, only those bytes, the `Range` header being signed into the URL."""
        _check_key(key)
        _check_expiry(expires_in)
        params: dict[str, str] = {"Bucket": self.bucket, "Key": key}
        if filename is not None:
            params["ResponseContentDisposition"] = attachment_disposition(filename)
        if byte_range is not None:
            params["Range"] = range_headers(byte_range)["Range"]
        url: str = self._client.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=expires_in, HttpMethod="GET"
        )
        return url

    def head(self, key: str) -> ObjectInfo | None:
        """Return the object's size and SHA-256 (when the store reports it), or None if absent."""
        _check_key(key)
        try:
            response = self._client.head_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED")
        except ClientError as exc:
            # HEAD responses carry no error body: a missing bucket is a bare 404 too.
            if _error_code(exc) in _NOT_FOUND_CODES:
                return None
            raise self._unavailable("head", exc) from exc
        except BotoCoreError as exc:
            raise self._unavailable("head", exc) from exc
        checksum = response.get("ChecksumSHA256")
        # A multipart upload reports a checksum of part checksums, not of the object's bytes.
        full_object = response.get("ChecksumType", "FULL_OBJECT") == "FULL_OBJECT"
        sha256_hex = _base64_to_sha256_hex(checksum) if checksum and full_object else None
        return ObjectInfo(byte_size=int(response["ContentLength"]), sha256_hex=sha256_hex)

    def ping(self) -> None:
        """Raise StorageUnavailable unless the bucket answers a signed HEAD within ~2 seconds."""
        # A presigned HeadBucket sent once with a hard timeout: the shared client's retries and
        # 30 s read timeout suit uploads, not a readiness probe. Signing needs no network.
        url = self._client.generate_presigned_url(
            "head_bucket", Params={"Bucket": self.bucket}, ExpiresIn=60, HttpMethod="HEAD"
        )
        request = urllib.request.Request(url, method="HEAD")  # noqa: S310 - our store's http(s) URL
        try:
            with urllib.request.urlopen(request, timeout=_PING_TIMEOUT_SECONDS) as response:  # noqa: S310
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (OSError, ValueError) as exc:
            # URLError, timeouts, refused connections; the message names no URL (it is signed).
            raise StorageUnavailable(
                f"object storage unreachable for bucket {self.bucket!r}: {type(exc).__name__}"
            ) from None
        if status != 200:
            raise StorageUnavailable(
                f"object storage answered HTTP {status} for bucket {self.bucket!r}"
            )

    def ensure_bucket(self) -> None:
        """Create the bucket if it is missing; idempotent."""
        try:
            self._client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as exc:
            if _error_code(exc) not in _NOT_FOUND_CODES:
                raise self._unavailable("head_bucket", exc) from exc
        except BotoCoreError as exc:
            raise self._unavailable("head_bucket", exc) from exc
        params: dict[str, Any] = {"Bucket": self.bucket}
        if self.region != "us-east-1":  # AWS rejects an explicit us-east-1 constraint
            params["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            self._client.create_bucket(**params)
        except ClientError as exc:
            if _error_code(exc) == "BucketAlreadyOwnedByYou":  # a concurrent ensure_bucket won
                return
            raise self._unavailable("create_bucket", exc) from exc
        except BotoCoreError as exc:
            raise self._unavailable("create_bucket", exc) from exc

    def put_bytes(self, key: str, data: bytes) -> None:
        """Store data under key from the server side (seeding, tests), with its SHA-256."""
        _check_key(key)
        digest = base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")
        try:
            # Sending the SHA-256 makes the store verify it and report it from head() later.
            self._client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ContentLength=len(data),
                ChecksumSHA256=digest,
            )
        except (BotoCoreError, ClientError) as exc:
            raise self._unavailable("put", exc) from exc


# ------------------------------------------------------------------------------------- fake


class InMemoryStorage:
    """The in-memory fake ObjectStorage for unit tests; presigned URLs are `memory://` URLs.

    `simulate_put` / `simulate_get` play an HTTP client using a presigned URL and answer with
    the status codes the real store gives. Set `available = False` for an outage, or
    `fail_next_ping = True` for one failed ping.
    """

    def __init__(self, bucket: str = "clearcut", *, clock: Callable[[], float] = time.time) -> None:
        self.bucket = bucket
        self.objects: dict[str, bytes] = {}
        self.available = True
        self.fail_next_ping = False
        self.bucket_ensured = False
        self.uploads: dict[str, tuple[str, dict[int, bytes]]] = {}  # id -> (key, parts)
        self._assembled: set[str] = set()  # keys stored from parts: no whole-object SHA-256
        self._clock = clock
        self._lock = threading.Lock()

    def _check_available(self, operation: str) -> None:
        if not self.available:
            raise StorageUnavailable(
                f"object storage {operation} failed for bucket {self.bucket!r}: unavailable"
            )

    def _url(self, key: str, params: dict[str, str]) -> str:
        query = urllib.parse.urlencode(params)
        return f"memory://{self.bucket}/{urllib.parse.quote(key, safe='/')}?{query}"

    def presign_put(self, key: str, *, byte_size: int, sha256_hex: str, expires_in: int) -> str:
        """Return a `memory://` URL accepting one PUT of byte_size bytes with this SHA-256."""
        _check_key(key)
        _check_expiry(expires_in)
        if byte_size < 0:
            raise ValueError("byte_size must not be negative")
        return self._url(
            key,
            {
                "method": "PUT",
                "size": str(byte_size),
                "sha256": _normalise_sha256_hex(sha256_hex),
                "expires": str(int(self._clock()) + expires_in),
            },
        )

    def presign_get(
        self,
        key: str,
        *,
        expires_in: int,
        filename: str | None = None,
        byte_range: tuple[int, int] | None = None,
    ) -> str:
        """Return a `memory://` download URL, with the Content-Disposition for filename and
        the Range the downloader must send for byte_range."""
        _check_key(key)
        _check_expiry(expires_in)
        params = {"method": "GET", "expires": str(int(self._clock()) + expires_in)}
        if filename is not None:
            params["response-content-disposition"] = attachment_disposition(filename)
        if byte_range is not None:
            params["range"] = range_headers(byte_range)["Range"]
        return self._url(key, params)

    def head(self, key: str) -> ObjectInfo | None:
        """Return the stored object's size and SHA-256, or None if absent."""
        _check_key(key)
        self._check_available("head")
        with self._lock:
            data = self.objects.get(key)
        if data is None:
            return None
        if key in self._assembled:  # as S3: a checksum of part checksums, not reported
            return ObjectInfo(byte_size=len(data), sha256_hex=None)
        return ObjectInfo(byte_size=len(data), sha256_hex=hashlib.sha256(data).hexdigest())

    def ping(self) -> None:
        """Raise StorageUnavailable when unavailable or asked to fail once."""
        if self.fail_next_ping:
            self.fail_next_ping = False
            raise StorageUnavailable(f"object storage ping failed for bucket {self.bucket!r}")
        self._check_available("ping")

    def ensure_bucket(self) -> None:
        """Record that the bucket exists; idempotent."""
        self._check_available("ensure_bucket")
        self.bucket_ensured = True

    def put_bytes(self, key: str, data: bytes) -> None:
        """Store a copy of data under key."""
        _check_key(key)
        self._check_available("put")
        with self._lock:
            self.objects[key] = bytes(data)
            self._assembled.discard(key)

    def read_chunks(self, key: str, *, chunk_size: int = READ_CHUNK_BYTES) -> Iterator[bytes]:
        """Yield the stored bytes chunk by chunk, as S3Storage does (ObjectChanged if the
        object is replaced or deleted between two chunks)."""
        _check_key(key)
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        self._check_available("read")
        with self._lock:
            data = self.objects.get(key)
        if data is None:
            raise ObjectMissing(key)
        for start in range(0, len(data), chunk_size):
            self._check_available("read")
            with self._lock:
                if self.objects.get(key) is not data:
                    raise ObjectChanged(key)
            yield data[start : start + chunk_size]

    def start_multipart(self, key: str) -> str:
        """Start a multipart upload of key; return its upload id."""
        _check_key(key)
        self._check_available("start_multipart")
        upload_id = secrets.token_hex(16)
        with self._lock:
            self.uploads[upload_id] = (key, {})
        return upload_id

    def multipart_alive(self, key: str, upload_id: str) -> bool:
        """Whether the upload still takes parts."""
        self._check_available("list_parts")
        with self._lock:
            return self.uploads.get(upload_id, ("", {}))[0] == key

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
        """Return a `memory://` URL accepting one PUT of this part: byte_size bytes, this
        SHA-256."""
        _check_key(key)
        _check_expiry(expires_in)
        if not 1 <= part_number <= MAX_PARTS or byte_size < 1:
            raise ValueError("part_number must be 1..10000 and byte_size positive")
        return self._url(
            key,
            {
                "method": "PUT",
                "upload": upload_id,
                "part": str(part_number),
                "size": str(byte_size),
                "sha256": _normalise_sha256_hex(sha256_hex),
                "expires": str(int(self._clock()) + expires_in),
            },
        )

    def complete_multipart(self, key: str, upload_id: str, parts: list[PartDone]) -> None:
        """Assemble the object as S3 does, refusing as S3 refuses."""
        self._check_available("complete_multipart")
        with self._lock:
            owner, uploaded = self.uploads.get(upload_id, ("", {}))
            if owner != key:
                raise MultipartRefused(_MULTIPART_REFUSALS["NoSuchUpload"], upload_gone=True)
            numbers = [part.number for part in parts]
            if numbers != sorted(set(numbers)):
                raise MultipartRefused(_MULTIPART_REFUSALS["InvalidPartOrder"])
            for part in parts:
                data = uploaded.get(part.number)
                if data is None or _etag(data) != part.etag.strip('"'):
                    raise MultipartRefused(_MULTIPART_REFUSALS["InvalidPart"])
                if hashlib.sha256(data).hexdigest() != _normalise_sha256_hex(part.sha256_hex):
                    raise MultipartRefused(_MULTIPART_REFUSALS["BadDigest"])
            if any(len(uploaded[number]) < 5 * 1024**2 for number in numbers[:-1]):
                raise MultipartRefused(_MULTIPART_REFUSALS["EntityTooSmall"])
            self.objects[key] = b"".join(uploaded[number] for number in numbers)
            self._assembled.add(key)
            del self.uploads[upload_id]

    # -- what an HTTP client holding a presigned URL would get

    def _parse(self, url: str, method: str) -> tuple[str, dict[str, str]] | None:
        parts = urllib.parse.urlsplit(url)
        params = dict(urllib.parse.parse_qsl(parts.query))
        if parts.scheme != "memory" or parts.netloc != self.bucket:
            return None
        if params.get("method") != method:
            return None
        return urllib.parse.unquote(parts.path[1:]), params

    def _expired(self, params: Mapping[str, str]) -> bool:
        return self._clock() > int(params.get("expires", "0"))

    def _refusal(
        self, params: Mapping[str, str], body: bytes, headers: Mapping[str, str] | None
    ) -> int | None:
        """The status the store refuses a signed PUT with, or None if it takes the body."""
        sent = {name.lower(): value for name, value in (headers or {}).items()}
        # Length and checksum header are part of the signature: a mismatch is a bad signature.
        if self._expired(params) or len(body) != int(params["size"]):
            return 403
        if sent.get(CHECKSUM_HEADER) != sha256_hex_to_base64(params["sha256"]):
            return 403
        if hashlib.sha256(body).hexdigest() != params["sha256"]:
            return 400  # BadDigest
        return None

    def simulate_put(self, url: str, body: bytes, headers: Mapping[str, str] | None = None) -> int:
        """PUT body to a presign_put URL and return the HTTP status the real store would give."""
        if not self.available:
            return 503
        parsed = self._parse(url, "PUT")
        if parsed is None or "upload" in parsed[1]:
            return 403
        key, params = parsed
        refused = self._refusal(params, body, headers)
        if refused is not None:
            return refused
        with self._lock:
            self.objects[key] = bytes(body)
            self._assembled.discard(key)
        return 200

    def simulate_put_part(
        self, url: str, body: bytes, headers: Mapping[str, str] | None = None
    ) -> tuple[int, str | None]:
        """PUT a part to a presign_upload_part URL: the HTTP status and the ETag header."""
        if not self.available:
            return 503, None
        parsed = self._parse(url, "PUT")
        if parsed is None or "upload" not in parsed[1]:
            return 403, None
        key, params = parsed
        refused = self._refusal(params, body, headers)
        if refused is not None:
            return refused, None
        with self._lock:
            owner, uploaded = self.uploads.get(params["upload"], ("", {}))
            if owner != key:
                return 404, None  # NoSuchUpload
            uploaded[int(params["part"])] = bytes(body)
        return 200, f'"{_etag(body)}"'

    def simulate_get(
        self, url: str, headers: Mapping[str, str] | None = None
    ) -> tuple[int, bytes, dict[str, str]]:
        """GET a presign_get URL: the HTTP status, body and headers the real store would give."""
        if not self.available:
            return 503, b"", {}
        parsed = self._parse(url, "GET")
        if parsed is None:
            return 403, b"", {}
        key, params = parsed
        sent = {name.lower(): value for name, value in (headers or {}).items()}
        # A signed range is part of the signature: another range, or none, does not match it.
        if self._expired(params) or sent.get("range") != params.get("range", sent.get("range")):
            return 403, b"", {}
        with self._lock:
            data = self.objects.get(key)
        if data is None:
            return 404, b"", {}
        answer = {"Content-Length": str(len(data))}
        if "response-content-disposition" in params:
            answer["Content-Disposition"] = params["response-content-disposition"]
        if "range" not in params:
            return 200, data, answer
        first, last = (int(n) for n in params["range"][len("bytes=") :].split("-"))
        if first >= len(data):
            return 416, b"", {}
        last = min(last, len(data) - 1)
        answer["Content-Length"] = str(last - first + 1)
        answer["Content-Range"] = f"bytes {first}-{last}/{len(data)}"
        return 206, data[first : last + 1], answer
