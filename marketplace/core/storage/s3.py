"""ObjectStorage on S3 or an S3-compatible store (SeaweedFS in development and tests)."""

from __future__ import annotations

import base64
import hashlib
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any, BinaryIO

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from marketplace.core.storage.base import (
    _MULTIPART_REFUSALS,
    _NOT_FOUND_CODES,
    _PING_TIMEOUT_SECONDS,
    _READ_ATTEMPTS,
    MAX_PARTS,
    READ_CHUNK_BYTES,
    MultipartRefused,
    ObjectChanged,
    ObjectInfo,
    ObjectMissing,
    PartDone,
    StorageUnavailable,
    _base64_to_sha256_hex,
    _check_expiry,
    _check_key,
    _error_code,
    attachment_disposition,
    range_headers,
    sha256_hex_to_base64,
)


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

    def put_file(self, key: str, fileobj: BinaryIO) -> None:
        """Stream a file to key (boto3's managed upload: in parts past its threshold)."""
        _check_key(key)
        try:
            self._client.upload_fileobj(fileobj, self.bucket, key)
        except (BotoCoreError, ClientError) as exc:
            raise self._unavailable("put", exc) from exc

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
