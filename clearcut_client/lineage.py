"""The lineage record written beside the data: what a compliance team files.

`lineage.json` holds the contract id, the signed manifest (with the key that verifies it), the
contract's policy (ODRL), and for every file its path, asset, SHA-256, whether it verified, and
the ids of the grants it came through (each in the contract's delivery log). `manifest.json`
is the signed manifest exactly as the service returned it, so anyone can verify it again.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clearcut_client import __version__
from clearcut_client.journal import Journal

if TYPE_CHECKING:  # only for the annotations: pull imports this module
    from clearcut_client.pull import Options, Result

LINEAGE_FORMAT = "clearcut.lineage/1"


def _write_json(path: Path, document: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def write_lineage(
    dest: Path,
    opts: Options,
    manifest: dict[str, Any],
    signing_key: dict[str, Any],
    policy: dict[str, Any],
    journal: Journal,
    result: Result,
) -> Path:
    """Write manifest.json and lineage.json into dest; return the lineage's path."""
    _write_json(dest / "manifest.json", manifest)
    files = []
    for entry in manifest["assets"]:
        rec = journal.files.get(entry["asset_id"])
        if rec is None:
            continue  # not pulled (--only, --max-bytes)
        files.append(
            {
                "path": rec.path,
                "asset_id": entry["asset_id"],
                "title_id": entry["title_id"],
                "kind": entry["kind"],
                "byte_size": entry["byte_size"],
                "sha256": entry["sha256"],
                "verified": rec.verified_at is not None,
                "verified_at": rec.verified_at,
                "error": rec.failed,
                "grant_ids": rec.grant_ids,
            }
        )
    lineage = {
        "format": LINEAGE_FORMAT,
        "contract_id": manifest["contract_id"],
        "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "client": f"clearcut_client {__version__}",
        "api": opts.api_url,
        "layout": opts.fmt,
        "selection": {
            "only": sorted(opts.only) if opts.only else None,
            "max_bytes": opts.max_bytes,
            "skipped": result.skipped,
        },
        "manifest": {
            "version": manifest.get("version"),
            "frozen_at": manifest.get("frozen_at"),
            "manifest_sha256": manifest["manifest_sha256"],
            "signature": manifest["signature"],
            "signing_key": signing_key,
            "file": "manifest.json",
        },
        "policy": policy,
        "files": files,
        "complete": result.ok and all(f["verified"] for f in files),
    }
    path = dest / "lineage.json"
    _write_json(path, lineage)
    return path
