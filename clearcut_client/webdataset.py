"""`--format webdataset`: tar shards that training code streams, and a JSON Lines index.

WebDataset shards are what large-scale training reads most (OpenCLIP, LAION, video and audio
pipelines stream them sequentially from disk or object stores), and Hugging Face `datasets`
loads a folder of them with `load_dataset("webdataset", data_files=...)`, no loading script.
Each sample is `<asset_id>.<ext>` (the file) plus `<asset_id>.json` (its manifest entry);
samples are grouped by title so a title's files sit together. `metadata.jsonl` lists every
sample with its shard; `load_dataset("json", data_files="metadata.jsonl")` reads it. JSON
Lines rather than Parquet: the standard library writes it, so the client needs no pyarrow.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path, PurePosixPath
from typing import Any

from clearcut_client.journal import Journal

SHARD_DIR = "webdataset"


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    tar.addfile(info, io.BytesIO(data))


def write_shards(
    dest: Path, data: Path, manifest: dict[str, Any], journal: Journal, shard_bytes: int
) -> list[Path]:
    """Write the verified files into tar shards under dest/webdataset, and metadata.jsonl."""
    out = dest / SHARD_DIR
    out.mkdir(parents=True, exist_ok=True)
    entries = sorted(
        (
            e
            for e in manifest["assets"]
            if (r := journal.files.get(e["asset_id"])) and r.verified_at
        ),
        key=lambda e: (e["title_id"], e["asset_id"]),
    )
    shards: list[Path] = []
    index: list[dict[str, Any]] = []
    tar: tarfile.TarFile | None = None
    size = 0
    try:
        for entry in entries:
            rel = journal.files[entry["asset_id"]].path or ""
            if tar is None or size >= shard_bytes:
                if tar is not None:
                    tar.close()
                shards.append(out / f"shard-{len(shards):06d}.tar")
                tar = tarfile.open(  # noqa: SIM115 (closed when the shard is full, or below)
                    shards[-1], "w", format=tarfile.USTAR_FORMAT
                )
                size = 0
            key = entry["asset_id"]
            ext = PurePosixPath(rel).suffix.lstrip(".").lower() or entry["kind"]
            meta = {**entry, "contract_id": manifest["contract_id"]}
            tar.add(data / rel, arcname=f"{key}.{ext}")
            _add(tar, f"{key}.json", json.dumps(meta, sort_keys=True).encode("utf-8"))
            size += entry["byte_size"]
            index.append({**meta, "shard": f"{SHARD_DIR}/{shards[-1].name}", "__key__": key})
    finally:
        if tar is not None:
            tar.close()
    with (dest / "metadata.jsonl").open("w", encoding="utf-8") as f:
        for row in index:
            f.write(json.dumps(row, sort_keys=True) + "\n")
    return shards
