"""One contract for every ObjectStorage: S3Storage on a real SeaweedFS, and the in-memory fake.

Where the fake can honour a behaviour (presigned uploads and downloads, expiry) it runs the same
test through its `simulate_*` methods, so unit tests that rely on the fake rely on real behaviour.
"""

from __future__ import annotations

import hashlib
import io
import os
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pytest
import requests
from botocore.exceptions import IncompleteReadError

from marketplace.core.storage import (
    CHECKSUM_HEADER,
    MultipartRefused,
    ObjectChanged,
    ObjectInfo,
    ObjectMissing,
    ObjectStorage,
    PartDone,
    StorageUnavailable,
    attachment_disposition,
    range_headers,
    upload_headers,
)
from marketplace.core.storage.fake import InMemoryStorage
from marketplace.core.storage.s3 import S3Storage
from marketplace.dev.servers import SeaweedFS, free_port

HttpPut = Callable[[str, bytes, Mapping[str, str]], int]
HttpGet = Callable[..., tuple[int, bytes, Mapping[str, str]]]  # (url, headers=None)
PartPut = Callable[[str, bytes, Mapping[str, str]], tuple[int, str | None]]


@dataclass
class Backend:
    """A storage under test, with how a client talks to its presigned URLs."""

    storage: ObjectStorage
    http_put: HttpPut
    http_get: HttpGet
    elapse: Callable[[float], None]  # let this much time pass for URL expiry
    put_part: PartPut  # PUT a part to its presigned URL: the status and the ETag


def _requests_put(url: str, body: bytes, headers: Mapping[str, str]) -> int:
    return requests.put(url, data=body, headers=dict(headers), timeout=10).status_code


def _requests_put_part(url: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, str | None]:
    response = requests.put(url, data=body, headers=dict(headers), timeout=30)
    return response.status_code, response.headers.get("ETag")


def _requests_get(
    url: str, headers: Mapping[str, str] | None = None
) -> tuple[int, bytes, Mapping[str, str]]:
    response = requests.get(url, headers=dict(headers or {}), timeout=10)
    return response.status_code, response.content, response.headers


class _Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(params=[pytest.param("s3", marks=pytest.mark.servers), "memory"])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "s3":
        storage: S3Storage = request.getfixturevalue("s3_storage")
        return Backend(storage, _requests_put, _requests_get, time.sleep, _requests_put_part)
    clock = _Clock()
    fake = InMemoryStorage("contract-test", clock=clock)
    return Backend(
        fake, fake.simulate_put, fake.simulate_get, clock.advance, fake.simulate_put_part
    )


@pytest.fixture
def key() -> str:
    # Spaces and non-ASCII exercise the key quoting in presigned URLs.
    return f"contract/{uuid.uuid4().hex}/Reel 1 – Übergang.mov"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ----------------------------------------------------------------------------- both backends


def test_ensure_bucket_is_idempotent(backend: Backend, key: str) -> None:
    backend.storage.ensure_bucket()
    backend.storage.ensure_bucket()

    backend.storage.put_bytes(key, b"still usable")
    assert backend.storage.head(key) is not None


def test_head_of_an_absent_key_is_none(backend: Backend, key: str) -> None:
    assert backend.storage.head(key) is None


def test_put_bytes_then_head_reports_size_and_sha256(backend: Backend, key: str) -> None:
    data = b"frame data \x00\xff" * 100

    backend.storage.put_bytes(key, data)

    assert backend.storage.head(key) == ObjectInfo(byte_size=len(data), sha256_hex=_sha256(data))


def test_put_file_streams_a_file_and_reads_back_whole(backend: Backend, key: str) -> None:
    import io

    data = os.urandom(3 * 1024 * 1024 + 17)

    backend.storage.put_file(key, io.BytesIO(data))

    assert b"".join(backend.storage.read_chunks(key, chunk_size=1024 * 1024)) == data
    info = backend.storage.head(key)
    assert info is not None and info.byte_size == len(data)


def test_ping_succeeds(backend: Backend) -> None:
    backend.storage.ping()


def test_presigned_upload_with_the_declared_size_and_checksum_is_stored(
    backend: Backend, key: str
) -> None:
    body = b"the declared asset bytes"
    url = backend.storage.presign_put(
        key, byte_size=len(body), sha256_hex=_sha256(body), expires_in=60
    )

    status = backend.http_put(url, body, upload_headers(_sha256(body)))

    assert status == 200
    assert backend.storage.head(key) == ObjectInfo(byte_size=len(body), sha256_hex=_sha256(body))


def test_presigned_upload_of_another_length_is_refused(backend: Backend, key: str) -> None:
    declared = b"declared bytes"
    url = backend.storage.presign_put(
        key, byte_size=len(declared), sha256_hex=_sha256(declared), expires_in=60
    )

    status = backend.http_put(url, declared + b" and more", upload_headers(_sha256(declared)))

    assert status == 403
    assert backend.storage.head(key) is None


def test_presigned_upload_of_other_bytes_of_the_same_length_is_refused(
    backend: Backend, key: str
) -> None:
    declared = b"declared bytes"
    other = b"DECLARED BYTES"
    url = backend.storage.presign_put(
        key, byte_size=len(declared), sha256_hex=_sha256(declared), expires_in=60
    )

    # The uploader claims the declared checksum but sends other bytes: BadDigest.
    assert backend.http_put(url, other, upload_headers(_sha256(declared))) == 400
    # Or it sends the checksum of what it actually sends: not what was signed.
    assert backend.http_put(url, other, upload_headers(_sha256(other))) == 403
    assert backend.storage.head(key) is None


def test_presigned_upload_without_the_checksum_header_is_refused(
    backend: Backend, key: str
) -> None:
    body = b"declared bytes"
    url = backend.storage.presign_put(
        key, byte_size=len(body), sha256_hex=_sha256(body), expires_in=60
    )

    assert backend.http_put(url, body, {}) == 403
    assert backend.storage.head(key) is None


def test_presigned_download_returns_the_bytes_and_the_attachment_name(
    backend: Backend, key: str
) -> None:
    data = b"licensed footage" * 64
    backend.storage.put_bytes(key, data)
    filename = 'Reel 1 – "final".mov'

    status, body, headers = backend.http_get(
        backend.storage.presign_get(key, expires_in=60, filename=filename)
    )

    assert status == 200
    assert body == data
    assert headers["Content-Disposition"] == attachment_disposition(filename)
    assert headers["Content-Disposition"] == (
        'attachment; filename="Reel 1 _ _final_.mov"; '
        "filename*=UTF-8''Reel%201%20%E2%80%93%20%22final%22.mov"
    )


def test_a_ranged_download_serves_exactly_the_signed_range(backend: Backend, key: str) -> None:
    data = bytes(range(256)) * 40
    backend.storage.put_bytes(key, data)
    url = backend.storage.presign_get(key, expires_in=60, byte_range=(1000, 4999))

    status, body, headers = backend.http_get(url, range_headers((1000, 4999)))

    assert (status, body) == (206, data[1000:5000])
    assert headers["Content-Range"] == f"bytes 1000-4999/{len(data)}"
    # The range is signed: another one, a whole download, or a range added to a URL signed
    # for none would not be what was counted.
    for other in ({"Range": "bytes=0-4999"}, {"Range": "bytes=1000-"}, {}):
        assert backend.http_get(url, other)[0] == 403


def test_a_range_header_of_a_single_byte_or_the_last_bytes(backend: Backend, key: str) -> None:
    data = b"0123456789"
    backend.storage.put_bytes(key, data)
    for first, last in ((0, 0), (9, 9), (3, 9)):
        url = backend.storage.presign_get(key, expires_in=60, byte_range=(first, last))
        status, body, _ = backend.http_get(url, range_headers((first, last)))
        assert (status, body) == (206, data[first : last + 1])
    with pytest.raises(ValueError, match="byte range"):
        backend.storage.presign_get(key, expires_in=60, byte_range=(5, 4))


def test_an_expired_presigned_download_is_refused(backend: Backend, key: str) -> None:
    backend.storage.put_bytes(key, b"short-lived")
    url = backend.storage.presign_get(key, expires_in=1)

    backend.elapse(2)

    assert backend.http_get(url)[0] == 403


def test_presign_rejects_a_malformed_checksum(backend: Backend, key: str) -> None:
    with pytest.raises(ValueError, match="sha256_hex"):
        backend.storage.presign_put(key, byte_size=1, sha256_hex="abc", expires_in=60)


# ----------------------------------------------------------------------- real server only


@pytest.mark.servers
def test_an_unsigned_download_is_refused(s3_storage: S3Storage, key: str) -> None:
    s3_storage.put_bytes(key, b"not public")
    presigned = s3_storage.presign_get(key, expires_in=60)

    response = requests.get(presigned.split("?", 1)[0], timeout=10)

    assert response.status_code == 403
    assert b"not public" not in response.content


@pytest.mark.servers
def test_a_tampered_presigned_download_is_refused(s3_storage: S3Storage, key: str) -> None:
    s3_storage.put_bytes(key, b"not public")
    presigned = s3_storage.presign_get(key, expires_in=60)

    response = requests.get(presigned.replace("X-Amz-Expires=60", "X-Amz-Expires=61"), timeout=10)

    assert response.status_code == 403


def test_ping_on_a_closed_port_raises_quickly() -> None:
    storage = S3Storage(
        "clearcut-nowhere",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        access_key="AKIDEXAMPLE",
        secret_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    )
    started = time.monotonic()

    with pytest.raises(StorageUnavailable) as raised:
        storage.ping()

    assert time.monotonic() - started < 3
    message = str(raised.value)
    assert "AKIDEXAMPLE" not in message
    assert "wJalrXUtnFEMI" not in message
    storage.close()


@pytest.mark.servers
def test_ping_with_wrong_credentials_raises(s3_storage: S3Storage) -> None:
    storage = S3Storage(
        s3_storage.bucket,
        endpoint_url=s3_storage.endpoint_url,
        access_key="AKIDWRONG",
        secret_key="not-the-secret",
    )

    with pytest.raises(StorageUnavailable, match="HTTP 403"):
        storage.ping()
    with pytest.raises(StorageUnavailable) as raised:
        storage.head("anything")

    assert "not-the-secret" not in str(raised.value)
    storage.close()


@pytest.mark.servers
def test_ping_of_a_missing_bucket_raises(seaweedfs: SeaweedFS) -> None:
    storage = S3Storage(
        f"clearcut-missing-{uuid.uuid4().hex[:8]}",
        endpoint_url=seaweedfs.endpoint_url,
        access_key=seaweedfs.access_key,
        secret_key=seaweedfs.secret_key,
    )

    with pytest.raises(StorageUnavailable, match="HTTP 404"):
        storage.ping()
    storage.close()


# ------------------------------------------------------------------------------ fake only


def test_the_fake_simulates_an_outage() -> None:
    fake = InMemoryStorage()
    fake.fail_next_ping = True
    with pytest.raises(StorageUnavailable):
        fake.ping()
    fake.ping()  # only the next one failed

    fake.available = False
    with pytest.raises(StorageUnavailable):
        fake.ping()
    with pytest.raises(StorageUnavailable):
        fake.head("k")
    with pytest.raises(StorageUnavailable):
        fake.put_bytes("k", b"x")


def test_the_fake_satisfies_the_protocol() -> None:
    assert isinstance(InMemoryStorage(), ObjectStorage)
    assert CHECKSUM_HEADER == "x-amz-checksum-sha256"


# -- multipart uploads (objects past one PUT's 5 GiB; here, parts of S3's 5 MiB minimum)

MIB = 1024**2


def _part_url(backend: Backend, key: str, upload_id: str, number: int, data: bytes) -> str:
    return backend.storage.presign_upload_part(
        key, upload_id, number, byte_size=len(data), sha256_hex=_sha256(data), expires_in=300
    )


def _upload_parts(backend: Backend, key: str, upload_id: str, parts: list[bytes]) -> list[PartDone]:
    done = []
    for number, data in enumerate(parts, start=1):
        url = _part_url(backend, key, upload_id, number, data)
        status, etag = backend.put_part(url, data, upload_headers(_sha256(data)))
        assert status == 200 and etag
        done.append(PartDone(number, etag, _sha256(data)))
    return done


def test_parts_put_through_presigned_urls_make_one_object(backend: Backend, key: str) -> None:
    parts = [b"a" * (5 * MIB), b"b" * (5 * MIB), b"c" * 1000]
    upload_id = backend.storage.start_multipart(key)
    assert backend.storage.multipart_alive(key, upload_id)
    backend.storage.complete_multipart(
        key, upload_id, _upload_parts(backend, key, upload_id, parts)
    )
    # The size; no SHA-256 of the whole (S3 keeps a checksum of the parts' checksums).
    assert backend.storage.head(key) == ObjectInfo(byte_size=10 * MIB + 1000, sha256_hex=None)
    assert not backend.storage.multipart_alive(key, upload_id)
    status, body, _ = backend.http_get(backend.storage.presign_get(key, expires_in=60))
    assert status == 200 and body == b"".join(parts)


@pytest.mark.parametrize(
    ("fault", "status"), [("another length", 403), ("other bytes", 400), ("no checksum", 403)]
)
def test_a_part_not_as_signed_is_refused(
    backend: Backend, key: str, fault: str, status: int
) -> None:
    data = b"x" * 100
    upload_id = backend.storage.start_multipart(key)
    url = _part_url(backend, key, upload_id, 1, data)
    headers = upload_headers(_sha256(data))
    body = {"another length": data + b"x", "other bytes": b"y" * 100}.get(fault, data)
    assert backend.put_part(url, body, {} if fault == "no checksum" else headers)[0] == status


@pytest.mark.parametrize("fault", ["wrong etag", "wrong sha256", "small part", "gone"])
def test_the_store_refuses_to_assemble_a_bad_upload(backend: Backend, key: str, fault: str) -> None:
    first = b"a" * (10 if fault == "small part" else 5 * MIB)
    upload_id = backend.storage.start_multipart(key)
    done = _upload_parts(backend, key, upload_id, [first, b"b" * 10])
    if fault == "wrong etag":
        done[0] = PartDone(1, '"0123456789abcdef0123456789abcdef"', done[0].sha256_hex)
    if fault == "wrong sha256":
        done[1] = PartDone(2, done[1].etag, _sha256(b"c" * 10))
    if fault == "gone":  # aborted or expired (completing twice is allowed, as on S3)
        upload_id = "no-such-upload"
    with pytest.raises(MultipartRefused) as refused:
        backend.storage.complete_multipart(key, upload_id, done)
    assert refused.value.upload_gone == (fault == "gone")


# -- reading an object back, in chunks (checking the SHA-256 of an object made of parts)


@pytest.mark.parametrize("chunk_size", [1000, 4096, 10_000, 1 << 20])
def test_read_chunks_yields_the_object_in_order(
    backend: Backend, key: str, chunk_size: int
) -> None:
    data = bytes(range(256)) * 39 + b"tail"  # 9,988 bytes: chunks that do not divide it
    backend.storage.put_bytes(key, data)
    chunks = list(backend.storage.read_chunks(key, chunk_size=chunk_size))
    assert b"".join(chunks) == data
    assert all(len(chunk) == chunk_size for chunk in chunks[:-1])
    assert 0 < len(chunks[-1]) <= chunk_size


def test_read_chunks_of_an_empty_object_yields_nothing(backend: Backend, key: str) -> None:
    backend.storage.put_bytes(key, b"")
    assert list(backend.storage.read_chunks(key)) == []


def test_read_chunks_of_an_absent_object_is_object_missing(backend: Backend, key: str) -> None:
    with pytest.raises(ObjectMissing):
        next(iter(backend.storage.read_chunks(key)))


def test_an_object_replaced_while_read_is_object_changed(backend: Backend, key: str) -> None:
    backend.storage.put_bytes(key, b"a" * 3000)
    chunks = iter(backend.storage.read_chunks(key, chunk_size=1000))
    assert next(chunks) == b"a" * 1000
    backend.storage.put_bytes(key, b"b" * 3000)  # same size, other bytes
    with pytest.raises(ObjectChanged):
        next(chunks)


def test_an_object_of_parts_reads_back_whole(backend: Backend, key: str) -> None:
    parts = [bytes([n]) * (5 * MIB) for n in (1, 2)] + [b"end"]
    upload_id = backend.storage.start_multipart(key)
    backend.storage.complete_multipart(
        key, upload_id, _upload_parts(backend, key, upload_id, parts)
    )
    digest = hashlib.sha256()
    for chunk in backend.storage.read_chunks(key, chunk_size=3 * MIB):
        digest.update(chunk)
    assert digest.hexdigest() == _sha256(b"".join(parts))


class _Dropped(io.BytesIO):
    def read(self, size: int | None = -1) -> bytes:
        raise IncompleteReadError(actual_bytes=3, expected_bytes=6)


class _CutShort:
    """A response body whose connection drops `drops` times before the bytes come whole:
    botocore notices (IncompleteReadError) on odd calls, the caller must on even ones."""

    def __init__(self, data: bytes, drops: int) -> None:
        self.data, self.drops, self.calls = data, drops, 0

    def get_object(self, **params: object) -> dict[str, object]:
        self.calls += 1
        first, last = (int(n) for n in str(params["Range"])[len("bytes=") :].split("-"))
        body = self.data[first : last + 1]
        if self.calls > self.drops:
            return {"Body": io.BytesIO(body)}
        if self.calls % 2:
            return {"Body": _Dropped()}
        return {"Body": io.BytesIO(body[: len(body) // 2])}  # the bytes stop halfway


@pytest.mark.parametrize(("drops", "read_whole"), [(0, True), (1, True), (2, True), (3, False)])
def test_a_range_cut_short_is_asked_for_again_up_to_three_times(
    drops: int, read_whole: bool
) -> None:
    storage = S3Storage("b", endpoint_url="http://127.0.0.1:9", access_key="k", secret_key="s")
    stub = _CutShort(b"0123456789", drops)
    storage._client = stub  # a unit test of the retry: the ranges come from a stub
    if read_whole:
        assert storage._read_range("k", '"etag"', 2, 7) == b"234567"
        assert stub.calls == drops + 1
    else:
        with pytest.raises(StorageUnavailable):
            storage._read_range("k", '"etag"', 2, 7)
        assert stub.calls == 3
