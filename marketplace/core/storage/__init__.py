"""Object storage: the interface the app uses (here), the S3 adapter (`.s3`) and the in-memory
fake for unit tests (`.fake`), both held to one contract test (tests/core/test_storage_contract.py).

Assets never pass through the app: studios upload and buyers download through presigned URLs,
and the store itself enforces the size and SHA-256 a studio declared (both are signed into the
upload URL), so the app only has to check `head()` afterwards.
"""

from marketplace.core.storage.base import (
    CHECKSUM_HEADER,
    MAX_PARTS,
    MAX_PRESIGN_SECONDS,
    READ_CHUNK_BYTES,
    MultipartRefused,
    ObjectChanged,
    ObjectInfo,
    ObjectMissing,
    ObjectStorage,
    PartDone,
    StorageUnavailable,
    attachment_disposition,
    range_headers,
    sha256_hex_to_base64,
    upload_headers,
)

__all__ = [
    "CHECKSUM_HEADER",
    "MAX_PARTS",
    "MAX_PRESIGN_SECONDS",
    "READ_CHUNK_BYTES",
    "MultipartRefused",
    "ObjectChanged",
    "ObjectInfo",
    "ObjectMissing",
    "ObjectStorage",
    "PartDone",
    "StorageUnavailable",
    "attachment_disposition",
    "range_headers",
    "sha256_hex_to_base64",
    "upload_headers",
]
