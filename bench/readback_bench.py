"""Reading an asset back to check its SHA-256 (`marketplace catalog verify-assets`).

One object of BENCH_READBACK_MIB MiB (default 512), uploaded in parts to a local SeaweedFS, is
read back three ways, each three times (the median reported):
- `read_chunks`: what the verifier runs: S3Storage.read_chunks (16 MiB ranged GETs, each
  conditional on the ETag) into hashlib.sha256;
- `baseline_boto3`: plain boto3, one streaming GET_object, 16 MiB reads into hashlib.sha256;
- `baseline_sha256_in_memory`: hashlib.sha256 over the same bytes already in memory (the floor:
  what hashing alone costs on this machine).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import statistics
import time
from pathlib import Path
from typing import Any

from marketplace.core.storage import READ_CHUNK_BYTES
from marketplace.core.storage.s3 import S3Storage
from marketplace.dev.servers import SeaweedFS

MIB = 1024**2
SIZE_MIB = int(os.environ.get("BENCH_READBACK_MIB", "512"))
RUNS = 3


def _timed(read: Any) -> tuple[float, str]:
    started = time.perf_counter()
    digest = read()
    return time.perf_counter() - started, digest


def _figure(seconds: list[float], size: int) -> dict[str, float]:
    median = statistics.median(seconds)
    return {
        "median_seconds": round(median, 3),
        "mb_per_second": round(size / MIB / median, 1),
        "runs": len(seconds),
    }


def run(workdir: Path) -> dict[str, Any]:
    server = SeaweedFS(
        workdir / "seaweedfs",
        access_key=f"bench{secrets.token_hex(4)}",
        secret_key=secrets.token_urlsafe(30),
    )
    server.start()
    try:
        server.wait_ready()
        return _measure(server)
    finally:
        server.stop(timeout=2.0)


def _measure(server: SeaweedFS) -> dict[str, Any]:
    storage = S3Storage(
        "readback-bench",
        endpoint_url=server.endpoint_url,
        access_key=server.access_key,
        secret_key=server.secret_key,
    )
    storage.ensure_bucket()
    client = storage._client  # the same boto3 client: only the way of reading differs
    data = os.urandom(SIZE_MIB * MIB)
    key = "bench/master.mov"
    part = 64 * MIB
    upload = client.create_multipart_upload(Bucket=storage.bucket, Key=key)["UploadId"]
    parts = []
    for number, start in enumerate(range(0, len(data), part), start=1):
        answer = client.upload_part(
            Bucket=storage.bucket,
            Key=key,
            UploadId=upload,
            PartNumber=number,
            Body=data[start : start + part],
        )
        parts.append({"PartNumber": number, "ETag": answer["ETag"]})
    client.complete_multipart_upload(
        Bucket=storage.bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": parts}
    )
    expected = hashlib.sha256(data).hexdigest()

    def with_read_chunks() -> str:
        digest = hashlib.sha256()
        for chunk in storage.read_chunks(key):
            digest.update(chunk)
        return digest.hexdigest()

    def with_boto3() -> str:
        digest = hashlib.sha256()
        body = client.get_object(Bucket=storage.bucket, Key=key)["Body"]
        for chunk in body.iter_chunks(READ_CHUNK_BYTES):
            digest.update(chunk)
        return digest.hexdigest()

    def in_memory() -> str:
        digest = hashlib.sha256()
        view = memoryview(data)
        for start in range(0, len(data), READ_CHUNK_BYTES):
            digest.update(view[start : start + READ_CHUNK_BYTES])
        return digest.hexdigest()

    times: dict[str, list[float]] = {"read_chunks": [], "boto3": [], "memory": []}
    for _ in range(RUNS):  # interleaved, so a drift of the machine touches all three
        for name, read in (("read_chunks", with_read_chunks), ("boto3", with_boto3)):
            seconds, digest = _timed(read)
            if digest != expected:
                raise RuntimeError(f"{name} read back other bytes")
            times[name].append(seconds)
        seconds, digest = _timed(in_memory)
        if digest != expected:
            raise RuntimeError("hashing in memory disagrees with itself")
        times["memory"].append(seconds)
    storage.close()
    ours = _figure(times["read_chunks"], len(data))
    boto3_figure = _figure(times["boto3"], len(data))
    return {
        "object_mib": SIZE_MIB,
        "stored_as": f"{len(parts)} parts of 64 MiB, SeaweedFS on loopback",
        "chunk_mib": READ_CHUNK_BYTES // MIB,
        "read_chunks": ours,
        "baseline_boto3": boto3_figure,
        "baseline_sha256_in_memory": _figure(times["memory"], len(data)),
        "ratio_read_chunks_to_boto3": round(
            ours["mb_per_second"] / boto3_figure["mb_per_second"], 3
        ),
    }
