"""`marketplace pull` end to end: the app served over HTTP, the files in a real SeaweedFS.

The client runs as a developer runs it (in a subprocess, for the kill): it gets every
licensed file, verified, with its lineage record; killed halfway and run again it completes
without granting verified files again, and the contract counts each byte once; a file changed
in the store after licensing is reported as not verifying.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from clearcut_client.pull import Options, pull
from config import Settings
from contracts.models import Contract
from marketplace.app import create_app
from marketplace.core.db import make_session_factory
from marketplace.core.storage.s3 import S3Storage
from marketplace.delivery.models import Download
from tests.catalog.factories import make_asset, make_title
from tests.delivery.builders import make_contract
from tests.world import World, build_world

pytestmark = [pytest.mark.servers, pytest.mark.committing]

KiB = 1024


@dataclass
class Deal:
    api: str
    key: str
    contract_id: str
    files: dict[str, bytes]  # asset id -> bytes
    titles: dict[str, str]  # asset id -> title id
    world: World


@pytest.fixture
def served(settings: Settings, committing_engine: Engine, s3_storage: S3Storage) -> Iterator[str]:
    app = create_app(
        settings, session_factory=make_session_factory(committing_engine), storage=s3_storage
    )
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


def licensed(
    engine: Engine, storage: S3Storage, api: str, sizes: list[int], kinds: list[str] | None = None
) -> Deal:
    """Two titles whose assets of `sizes` are in the store, licensed to developer X."""
    with Session(engine, expire_on_commit=False) as session:
        world = build_world(session)
        titles = [make_title(session, world["studio_a"].org_id) for _ in range(2)]
        files, owner = {}, {}
        for i, size in enumerate(sizes):
            data = os.urandom(size)
            kind = kinds[i] if kinds else "video"
            asset = make_asset(session, titles[i % 2], data=data, kind=kind)
            storage.put_bytes(asset.storage_key, data)
            files[asset.id], owner[asset.id] = data, asset.title_id
        contract = make_contract(session, world, [t.id for t in titles], quota_downloads=10_000)
        session.commit()
    return Deal(api, world["developer_x"].key, contract.id, files, owner, world)


def usage(engine: Engine, contract_id: str) -> tuple[int, int]:
    with Session(engine) as session:
        row = session.get(Contract, contract_id)
        assert row is not None
        return row.downloads_used, row.bytes_used


def grants(engine: Engine) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(Download)) or 0


def run_cli(deal: Deal, dest: Path, *extra: str) -> subprocess.Popen[str]:
    marketplace = Path(sys.executable).with_name("marketplace")
    return subprocess.Popen(
        [
            str(marketplace),
            "pull",
            deal.contract_id,
            "--dest",
            str(dest),
            "--api",
            deal.api,
            *extra,
        ],
        env={**os.environ, "CLEARCUT_API_KEY": deal.key},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def assert_all_there(deal: Deal, dest: Path) -> dict[str, Any]:
    lineage = json.loads((dest / "lineage.json").read_text())
    assert lineage["contract_id"] == deal.contract_id and lineage["complete"]
    by_asset = {f["asset_id"]: f for f in lineage["files"]}
    assert set(by_asset) == set(deal.files)
    for asset_id, data in deal.files.items():
        entry = by_asset[asset_id]
        assert entry["path"].startswith(deal.titles[asset_id] + "/")
        assert (dest / entry["path"]).read_bytes() == data
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["verified"] and entry["grant_ids"]
    manifest = json.loads((dest / "manifest.json").read_text())
    assert manifest["manifest_sha256"] == lineage["manifest"]["manifest_sha256"]
    assert lineage["policy"]["@context"]
    return lineage


def test_one_command_gets_every_file_verified_with_its_lineage(
    served: str, committing_engine: Engine, s3_storage: S3Storage, tmp_path: Path
) -> None:
    sizes = [64 * KiB + i for i in range(12)] + [3 * 1024 * KiB + 5]  # one past --part-size
    deal = licensed(committing_engine, s3_storage, served, sizes)
    result = pull(
        Options(
            deal.contract_id,
            tmp_path,
            served,
            deal.key,
            parallel=4,
            part_size=1024 * KiB,
            batch_size=5,
            progress=None,
        )
    )
    assert result.ok and len(result.verified) == len(sizes)
    lineage = assert_all_there(deal, tmp_path)
    # The large file came in four ranged parts, counted as one download and its bytes once.
    assert max(len(f["grant_ids"]) for f in lineage["files"]) == 4
    assert usage(committing_engine, deal.contract_id) == (len(sizes), sum(sizes))
    # Run again: nothing is granted, nothing counted.
    before = grants(committing_engine)
    again = pull(Options(deal.contract_id, tmp_path, served, deal.key, progress=None))
    assert again.ok and again.granted == 0 and grants(committing_engine) == before


def test_killed_halfway_it_resumes_without_paying_twice(
    served: str, committing_engine: Engine, s3_storage: S3Storage, tmp_path: Path
) -> None:
    sizes = [256 * KiB] * 150 + [24 * 1024 * KiB]
    deal = licensed(committing_engine, s3_storage, served, sizes)
    args = ("--parallel", "2", "--part-size", "4M", "--quiet")
    proc = run_cli(deal, tmp_path, *args)
    journal = tmp_path / ".clearcut" / "journal.jsonl"
    deadline = time.monotonic() + 60
    verified_before: set[str] = set()
    while time.monotonic() < deadline and proc.poll() is None:
        if journal.exists():
            events = [json.loads(line) for line in journal.read_text().splitlines() if line]
            verified_before = {e["asset_id"] for e in events if e["event"] == "verified"}
            if len(verified_before) >= 20:
                break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert 20 <= len(verified_before) < len(sizes), "the pull was not stopped halfway"
    lines_before = len(journal.read_text().splitlines())
    proc = run_cli(deal, tmp_path, *args)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert_all_there(deal, tmp_path)
    after = [json.loads(line) for line in journal.read_text().splitlines()[lines_before:]]
    regranted = {e["asset_id"] for e in after if e["event"] == "grant"}
    assert not regranted & verified_before  # files verified before the kill: not granted again
    # Grants made before the kill and not fetched were resumed by range: each byte once.
    assert usage(committing_engine, deal.contract_id) == (len(sizes), sum(sizes))


def test_a_file_changed_in_the_store_after_licensing_does_not_verify(
    served: str, committing_engine: Engine, s3_storage: S3Storage, tmp_path: Path
) -> None:
    deal = licensed(committing_engine, s3_storage, served, [10 * KiB, 11 * KiB, 12 * KiB])
    changed = sorted(deal.files)[1]
    with Session(committing_engine) as session:
        from catalog.models import Asset

        asset = session.get(Asset, changed)
        assert asset is not None
        s3_storage.put_bytes(asset.storage_key, b"not what was licensed" * 100)
    proc = run_cli(deal, tmp_path, "--quiet")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert f"NOT VERIFIED {deal.titles[changed]}/{changed}" in err
    lineage = json.loads((tmp_path / "lineage.json").read_text())
    status = {f["asset_id"]: f["verified"] for f in lineage["files"]}
    assert status == {a: a != changed for a in deal.files} and not lineage["complete"]
    assert not (tmp_path / deal.titles[changed] / changed).exists()


def test_webdataset_shards_hold_every_file_and_its_metadata(
    served: str, committing_engine: Engine, s3_storage: S3Storage, tmp_path: Path
) -> None:
    deal = licensed(
        committing_engine,
        s3_storage,
        served,
        [5 * KiB, 6 * KiB, 7 * KiB],
        kinds=["video", "audio", "video"],
    )
    result = pull(
        Options(
            deal.contract_id,
            tmp_path,
            served,
            deal.key,
            fmt="webdataset",
            progress=None,
            only=frozenset({"video"}),
        )
    )
    assert result.ok
    videos = {a for a, d in deal.files.items() if len(d) != 6 * KiB}
    members: dict[str, bytes] = {}
    for shard in sorted((tmp_path / "webdataset").glob("shard-*.tar")):
        with tarfile.open(shard) as tar:
            for m in tar.getmembers():
                f = tar.extractfile(m)
                assert f is not None
                members[m.name] = f.read()
    assert {n.split(".")[0] for n in members} == videos
    for asset_id in videos:
        assert members[f"{asset_id}.video"] == deal.files[asset_id]
        assert (
            json.loads(members[f"{asset_id}.json"])["sha256"]
            == hashlib.sha256(deal.files[asset_id]).hexdigest()
        )
    rows = [json.loads(x) for x in (tmp_path / "metadata.jsonl").read_text().splitlines()]
    assert {r["__key__"] for r in rows} == videos
