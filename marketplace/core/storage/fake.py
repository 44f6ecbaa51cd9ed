"""The in-memory fake ObjectStorage for unit tests, held to the same contract test as S3."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from typing import BinaryIO

from marketplace.core.storage.base import (
    _MULTIPART_REFUSALS,
    CHECKSUM_HEADER,
    MAX_PARTS,
    READ_CHUNK_BYTES,
    MultipartRefused,
    ObjectChanged,
    ObjectInfo,
    ObjectMissing,
    PartDone,
    StorageUnavailable,
    _check_expiry,
    _check_key,
    _etag,
    _normalise_sha256_hex,
    attachment_disposition,
    range_headers,
    sha256_hex_to_base64,
)


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

    def put_file(self, key: str, fileobj: BinaryIO) -> None:
        """Store a copy of the file's bytes under key."""
        self.put_bytes(key, fileobj.read())

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
