"""`marketplace pull`: every licensed file, granted in batches, fetched in parallel, verified.

The manifest is checked against the published Ed25519 key first; files are then granted in
batches (ranged grants for the parts of large files, and for what is left of a partial file
after a kill), downloaded by `parallel` threads, and each checked against the manifest's
SHA-256. A journal beside the data makes a second run resume: verified files are not granted
again, partial ones continue with a range grant (which the service does not count twice).
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import urllib3

from clearcut_client.api import Api, ApiError
from clearcut_client.journal import Journal
from clearcut_client.lineage import write_lineage
from clearcut_client.manifest import verify_manifest

MiB = 1024 * 1024
CHUNK = 1 * MiB
PROGRESS_EVERY = 8 * MiB  # how often a part's progress is journaled
MAX_ATTEMPTS = 4
BATCH_BYTES = 4 * 1024 * MiB  # URLs live minutes: grant no more than this ahead at a time


class PullError(Exception):
    """The pull cannot go on (bad manifest, quota, another pull in the folder)."""


@dataclass
class Options:
    contract_id: str
    dest: Path
    api_url: str
    api_key: str
    parallel: int = 8
    only: frozenset[str] | None = None
    max_bytes: int | None = None
    fmt: str = "files"
    part_size: int = 64 * MiB
    batch_size: int = 500
    progress: IO[str] | None = sys.stderr
    shard_bytes: int = 1024 * MiB


@dataclass
class Result:
    verified: list[str] = field(default_factory=list)  # paths, relative to dest
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, why)
    skipped: int = 0  # past --max-bytes
    granted: int = 0
    lineage: Path | None = None

    @property
    def ok(self) -> bool:
        return not self.failed


@dataclass
class _Task:
    entry: dict[str, Any]
    part: int  # -1: the file in one piece (whole, or the rest of a partial file)
    first: int
    last: int  # inclusive; first > last: nothing to fetch, only to verify
    whole: bool  # granted without a range


class _Progress:
    def __init__(self, files: int, size: int, out: IO[str] | None) -> None:
        self.files_total, self.bytes_total, self.out = files, size, out
        self.files_done = self.bytes_done = 0
        self._lock = threading.Lock()
        self._start = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def add(self, n: int = 0, files: int = 0) -> None:
        with self._lock:
            self.bytes_done += n
            self.files_done += files

    def line(self) -> str:
        elapsed = max(time.monotonic() - self._start, 1e-6)
        rate = self.bytes_done / elapsed
        left = self.bytes_total - self.bytes_done
        eta = f"{left / rate:.0f}s" if rate > 0 else "?"
        return (
            f"{self.files_done}/{self.files_total} files, "
            f"{self.bytes_done / MiB:.1f}/{self.bytes_total / MiB:.1f} MiB, "
            f"{rate / MiB:.1f} MiB/s, ETA {eta}"
        )

    def _run(self) -> None:
        tty = self.out is not None and self.out.isatty()
        while not self._stop.wait(1.0 if tty else 5.0):
            self._print("\r" if tty else "", "" if tty else "\n")

    def _print(self, before: str, after: str) -> None:
        if self.out is not None:
            self.out.write(before + self.line() + after)
            self.out.flush()

    def __enter__(self) -> _Progress:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self._print("\r" if self.out is not None and self.out.isatty() else "", "\n")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class _Puller:
    def __init__(self, opts: Options, api: Api, pool: urllib3.PoolManager) -> None:
        self.opts, self.api, self.pool = opts, api, pool
        self.state = opts.dest / ".clearcut"
        self.data = opts.dest if opts.fmt == "files" else self.state / "objects"
        self.journal = Journal(self.state / "journal.jsonl")
        self.result = Result()
        self._remaining: dict[str, int] = {}  # asset id -> parts not yet written
        self._lock = threading.Lock()
        self.progress: _Progress

    # -- planning -------------------------------------------------------------------------

    def select(self, manifest: dict[str, Any]) -> list[dict[str, Any]]:
        chosen, total = [], 0
        for entry in manifest["assets"]:
            if self.opts.only and entry["kind"] not in self.opts.only:
                continue
            if self.opts.max_bytes is not None and total + entry["byte_size"] > self.opts.max_bytes:
                self.result.skipped += 1
                continue
            total += entry["byte_size"]
            chosen.append(entry)
        return chosen

    def _path(self, entry: dict[str, Any]) -> str:
        """The file's path in the destination, as the grant named it (journaled)."""
        rel = self.journal.files[entry["asset_id"]].path
        if rel is None:
            raise PullError(f"asset {entry['asset_id']} has no grant recorded")
        return rel

    def _partial(self, rel: str) -> Path:
        return self.data / (rel + ".part")

    def plan(self, entry: dict[str, Any]) -> list[_Task]:
        """What is left to do for one file: nothing, verify it, or fetch some ranges.

        A file granted before (a run killed before or while fetching it) is asked for by
        range, whole or what is left of it: the service counts no byte of an asset twice
        through ranges, so the grants that run paid for are not paid again.
        """
        rec = self.journal.files.get(entry["asset_id"])
        size = entry["byte_size"]
        big = size > self.opts.part_size
        parts = list(self._parts(size))
        if rec is None or rec.path is None or rec.failed:
            if rec is not None and rec.path is not None:
                self._partial(rec.path).unlink(missing_ok=True)
            if not big:
                return [_Task(entry, -1, 0, size - 1, whole=True)]
            return [_Task(entry, i, a, b, whole=False) for i, (a, b) in enumerate(parts)]
        final, partial = self.data / rec.path, self._partial(rec.path)
        verified = rec.verified_at and rec.sha256 == entry["sha256"]
        if verified and final.exists() and final.stat().st_size == size:
            return []
        if not big:
            have = min(partial.stat().st_size, size) if partial.exists() else 0
            return [_Task(entry, -1, have, size - 1, whole=False)]
        done = rec.parts_done if partial.exists() else {}
        return [
            _Task(entry, i, a + done.get(i, 0), b, whole=False) for i, (a, b) in enumerate(parts)
        ]

    def _parts(self, size: int) -> Iterator[tuple[int, int]]:
        for first in range(0, size, self.opts.part_size):
            yield first, min(first + self.opts.part_size, size) - 1

    # -- granting ---------------------------------------------------------------------------

    def grant(self, tasks: list[_Task]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for t in tasks:
            item: dict[str, Any] = {"asset_id": t.entry["asset_id"]}
            if not t.whole:
                item["range"] = {"first_byte": t.first, "last_byte": t.last}
            items.append(item)
        try:
            body = self.api.post(f"/contracts/{self.opts.contract_id}/downloads", {"assets": items})
        except ApiError as exc:
            raise PullError(f"grant refused: {exc}") from None
        grants: list[dict[str, Any]] = body["items"]
        for t, g in zip(tasks, grants, strict=True):
            rel = f"{t.entry['title_id']}/{g['filename']}"
            self.journal.write(
                {
                    "event": "grant",
                    "asset_id": t.entry["asset_id"],
                    "grant_id": g["id"],
                    "path": rel,
                    "range": g["range"],
                }
            )
        self.result.granted += len(grants)
        return grants

    # -- fetching ---------------------------------------------------------------------------

    def fetch(self, task: _Task, grant: dict[str, Any] | None) -> None:
        asset_id = task.entry["asset_id"]
        for attempt in range(MAX_ATTEMPTS):
            if task.first > task.last:
                break
            if grant is None:  # a URL expired or a connection broke: the rest, counted once
                [grant] = self.grant([_Task(task.entry, task.part, task.first, task.last, False)])
            try:
                self._stream(task, grant)
                break
            except (urllib3.exceptions.HTTPError, OSError, _BadStatus) as exc:
                grant = None
                if attempt == MAX_ATTEMPTS - 1:
                    self._fail(task.entry, f"download failed: {exc}")
                    return
        if task.part >= 0:
            with self._lock:
                self._remaining[asset_id] -= 1
                last = self._remaining[asset_id] == 0
            if not last:
                return
        self.verify(task.entry)

    def _stream(self, task: _Task, grant: dict[str, Any]) -> None:
        partial = self._partial(self._path(task.entry))
        response = self.pool.request(
            "GET",
            grant["url"],
            headers=grant["headers"],
            preload_content=False,
            retries=False,
            timeout=urllib3.Timeout(connect=10, read=60),
        )
        try:
            if response.status not in (200, 206):
                raise _BadStatus(f"the store answered {response.status}")
            if task.part < 0:
                self._stream_sequential(task, partial, response)
            else:
                self._stream_part(task, partial, response)
        finally:
            response.release_conn()

    def _stream_sequential(self, task: _Task, partial: Path, response: Any) -> None:
        # Appends: the file holds bytes 0..first-1 already (a kill, or a broken connection).
        with partial.open("r+b" if partial.exists() else "wb") as out:
            out.seek(task.first)
            out.truncate()
            for chunk in response.stream(CHUNK):
                out.write(chunk)
                task.first += len(chunk)
                self.progress.add(len(chunk))

    def _stream_part(self, task: _Task, partial: Path, response: Any) -> None:
        asset_id, start = task.entry["asset_id"], list(self._parts(task.entry["byte_size"]))
        part_first = start[task.part][0]
        fd = os.open(partial, os.O_WRONLY)
        try:
            since = 0
            for chunk in response.stream(CHUNK):
                os.pwrite(fd, chunk, task.first)
                task.first += len(chunk)
                since += len(chunk)
                self.progress.add(len(chunk))
                if since >= PROGRESS_EVERY:
                    since = 0
                    self._journal_part(asset_id, task.part, task.first - part_first)
        finally:
            os.close(fd)
        self._journal_part(asset_id, task.part, task.first - part_first)

    def _journal_part(self, asset_id: str, part: int, done: int) -> None:
        self.journal.write({"event": "progress", "asset_id": asset_id, "part": part, "done": done})

    def verify(self, entry: dict[str, Any]) -> None:
        rel = self._path(entry)
        partial, final = self._partial(rel), self.data / rel
        digest = hashlib.sha256()
        size = 0
        with partial.open("rb") as f:
            while block := f.read(4 * MiB):
                digest.update(block)
                size += len(block)
        if size != entry["byte_size"] or digest.hexdigest() != entry["sha256"]:
            os.replace(partial, final.with_name(final.name + ".unverified"))
            self._fail(
                entry,
                f"SHA-256 {digest.hexdigest()} ({size} bytes) is not the manifest's "
                f"{entry['sha256']} ({entry['byte_size']} bytes)",
            )
            return
        os.replace(partial, final)
        self.journal.write(
            {
                "event": "verified",
                "asset_id": entry["asset_id"],
                "sha256": entry["sha256"],
                "at": _now(),
            }
        )
        self.progress.add(files=1)

    def _fail(self, entry: dict[str, Any], why: str) -> None:
        self.journal.write({"event": "failed", "asset_id": entry["asset_id"], "reason": why})
        rel = self.journal.files[entry["asset_id"]].path or entry["asset_id"]
        with self._lock:
            self.result.failed.append((rel, why))

    # -- the run ----------------------------------------------------------------------------

    def run(self, manifest: dict[str, Any]) -> None:
        entries = self.select(manifest)
        plans = [(e, self.plan(e)) for e in entries]
        todo = [(e, ts) for e, ts in plans if ts]
        already = len(entries) - len(todo)
        left = sum(t.last - t.first + 1 for _, ts in todo for t in ts if t.last >= t.first)
        self.progress = _Progress(len(entries), left, self.opts.progress)
        self.progress.files_done = already
        verify_only: list[_Task] = []
        to_grant: list[_Task] = []
        for entry, tasks in todo:
            rec = self.journal.files.get(entry["asset_id"])
            if tasks[0].part >= 0:
                self._remaining[entry["asset_id"]] = len(tasks)
                if rec is not None and rec.path is not None:
                    self._preallocate(self._partial(rec.path), entry["byte_size"])
            for t in tasks:
                (to_grant if t.first <= t.last else verify_only).append(t)
        with self.progress, ThreadPoolExecutor(self.opts.parallel) as pool:
            futures: list[Future[None]] = [pool.submit(self.fetch, t, None) for t in verify_only]
            pending = threading.Semaphore(self.opts.batch_size + self.opts.parallel)
            for batch in self._batches(to_grant):
                for _ in batch:
                    pending.acquire()
                grants = self.grant(batch)
                for t, g in zip(batch, grants, strict=True):
                    self._ensure_partial(t)
                    futures.append(pool.submit(self._released(pending), t, g))
            for f in futures:
                f.result()
        for entry in entries:
            rec = self.journal.files.get(entry["asset_id"])
            if rec is not None and rec.verified_at and rec.path:
                self.result.verified.append(rec.path)

    def _released(self, pending: threading.Semaphore) -> Callable[[_Task, dict[str, Any]], None]:
        def run(task: _Task, grant: dict[str, Any]) -> None:
            try:
                self.fetch(task, grant)
            finally:
                pending.release()

        return run

    def _batches(self, tasks: list[_Task]) -> Iterator[list[_Task]]:
        batch: list[_Task] = []
        size = 0
        for t in tasks:
            n = t.last - t.first + 1
            if batch and (len(batch) >= self.opts.batch_size or size + n > BATCH_BYTES):
                yield batch
                batch, size = [], 0
            batch.append(t)
            size += n
        if batch:
            yield batch

    def _ensure_partial(self, task: _Task) -> None:
        if task.part < 0:
            return
        with self._lock:
            self._preallocate(self._partial(self._path(task.entry)), task.entry["byte_size"])

    @staticmethod
    def _preallocate(partial: Path, size: int) -> None:
        partial.parent.mkdir(parents=True, exist_ok=True)
        if not partial.exists():
            with partial.open("wb") as f:
                f.truncate(size)

    def mkdirs(self, manifest: dict[str, Any]) -> None:
        for title_id in {e["title_id"] for e in manifest["assets"]}:
            (self.data / title_id).mkdir(parents=True, exist_ok=True)


class _BadStatus(Exception):
    pass


def pull(opts: Options) -> Result:
    """Pull, verify and record a contract's licensed files into opts.dest."""
    pool = urllib3.PoolManager(num_pools=8, maxsize=max(opts.parallel * 2, 4), block=False)
    api = Api(opts.api_url, opts.api_key, pool=pool)
    try:
        signing_key = api.get("/manifest-signing-key")
        manifest = api.get(f"/contracts/{opts.contract_id}/manifest")
    except ApiError as exc:
        raise PullError(f"cannot read the manifest: {exc}") from None
    verify_manifest(manifest, signing_key)
    opts.dest.mkdir(parents=True, exist_ok=True)
    puller = _Puller(opts, api, pool)
    header = puller.journal.header
    if header is not None and header["manifest_sha256"] != manifest["manifest_sha256"]:
        raise PullError(
            f"{opts.dest} holds a pull of manifest {header['manifest_sha256']} "
            f"(contract {header['contract_id']}); use another folder"
        )
    if header is None:
        puller.journal.write(
            {
                "event": "start",
                "contract_id": opts.contract_id,
                "manifest_sha256": manifest["manifest_sha256"],
                "manifest_version": manifest.get("version"),
                "at": _now(),
            }
        )
    try:
        puller.mkdirs(manifest)
        puller.run(manifest)
        if opts.fmt == "webdataset" and puller.result.ok:
            from clearcut_client.webdataset import write_shards

            write_shards(opts.dest, puller.data, manifest, puller.journal, opts.shard_bytes)
        policy = api.get(f"/contracts/{opts.contract_id}/policy")
        puller.result.lineage = write_lineage(
            opts.dest, opts, manifest, signing_key, policy, puller.journal, puller.result
        )
    finally:
        puller.journal.close()
    return puller.result
