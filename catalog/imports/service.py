"""Bulk import of a studio's catalog from CSV or JSON Lines: all or nothing, and idempotent.

One file holds titles, assets, rights grants, talent, credits and consents, keyed by external id
(`catalog.imports.parse` describes the format). An import runs in the caller's transaction:

1. `catalog.imports.check` reads the file once, streaming, and validates every record and the
   references between them, reporting every bad row (not just the first);
2. only if there is none, `catalog.imports.apply` writes the records in bulk, creating what is new,
   updating what changed, and leaving alone what did not.

On PostgreSQL, `catalog.imports.stream` writes the records that are certainly new during step 1,
inside a savepoint that a bad row rolls back: the server writes while Python checks.

Either way one report (`ImportJob`) and one audit event record the import. A failed import
writes nothing else, so re-running a corrected file starts from the same catalog.

Decisions where API.md is silent:
- Records are upserted, never deleted: a record missing from the file stays in the catalog.
- A record replaces the fields of the one it updates: an optional field the file leaves empty
  becomes empty (a title's `visibility` becomes `private`), so the same file always gives the
  same catalog whatever was edited in between.
- A title's `kind` and parent are fixed at creation, as on `PATCH /titles/{id}`: changing them
  is a row error.
- Imported assets start `pending`. An asset's object lives under the server-chosen key of
  `catalog.assets.storage_key_for`; the file's `storage_key` (or `filename`) only gives its last
  segment. An asset whose size, checksum or file name changes goes back to `pending`.
- Memory stays flat as the file grows: the file is read as a stream (twice at most), checked
  records wait in a spill on disk, and only titles and talent are held by external id.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import io
import shutil
import sqlite3
import tempfile
from array import array
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import psycopg
from sqlalchemy import Select, false, func, literal_column, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from catalog.access import acting_studio
from catalog.imports.apply import ANALYZE_AFTER_ROWS, Apply
from catalog.imports.check import Check, ExistingTitle, KeyFilter, Spill
from catalog.imports.parse import ReadRow, detect_format, read_records
from catalog.imports.stream import Stream
from catalog.models import Asset, Consent, ImportJob, RightsGrant, Talent, Title
from catalog.rights import refresh_title_coverage
from catalog.search.index import settle_title_index
from marketplace.accounts.models import Organization
from marketplace.accounts.principal import Principal
from marketplace.audit.service import record_event
from marketplace.core.db import utcnow
from marketplace.core.errors import Conflict, NotFound, ValidationFailed

__all__ = ["ImportProgress", "get_import", "import_catalog", "visible_imports"]

# (phase, advance, total): phase `check` counts bytes read, phase `write` records written.
ImportProgress = Callable[[str, int, int], None]

_READ_CHUNK = 1024 * 1024
# A KeyFilter's keys come in this many rows (so none is large, however many keys there are).
_KEY_ROWS = 64


class _Tap(io.RawIOBase):
    """Reads a byte stream through, hashing it and reporting progress as it goes."""

    def __init__(self, raw: IO[bytes], on_read: Callable[[bytes], None] | None) -> None:
        self.raw = raw
        self.on_read = on_read

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.raw.read(len(buffer))
        size = len(data)
        buffer[:size] = data
        if self.on_read is not None and size:
            self.on_read(data)
        return size


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for a bulk load.

    An import allocates millions of short-lived records that form no cycles (reference counting
    frees them), while the collector would keep re-scanning every live object: pausing it saves
    about a quarter of the time. It is paused process-wide and resumed at the end, so other
    threads' cycles are collected then.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def visible_imports(viewer: Principal) -> Select[ImportJob]:
    """Select the import reports `viewer` may read: its studio's, or all for operators."""
    stmt = select(ImportJob)
    if viewer.is_operator:
        return stmt
    if viewer.is_studio:
        return stmt.where(ImportJob.studio_id == viewer.organization_id)
    return stmt.where(false())


def get_import(session: Session, viewer: Principal, import_id: str) -> ImportJob:
    """Return one import report `viewer` may read, or raise NotFound."""
    job = session.scalars(visible_imports(viewer).where(ImportJob.id == import_id)).one_or_none()
    if job is None:
        raise NotFound(f"import {import_id} not found")
    return job


def _studio_for(session: Session, principal: Principal | None, studio_id: str | None) -> str:
    if principal is not None:
        return acting_studio(session, principal, studio_id)
    # No principal: a trusted local caller (the CLI, demo seeding) naming the studio itself.
    kind = session.scalar(select(Organization.kind).where(Organization.id == studio_id))
    if studio_id is None or kind != "studio":
        raise ValidationFailed(
            f"{studio_id} is not a studio", errors={"studio_id": ["Not a studio organization."]}
        )
    return studio_id


def import_catalog(
    session: Session,
    principal: Principal | None,
    stream: IO[bytes],
    *,
    studio_id: str | None = None,
    filename: str | None = None,
    progress: ImportProgress | None = None,
    now: datetime | None = None,
    into: ImportJob | None = None,
) -> ImportJob:
    """Import a CSV or JSON Lines file into a studio's catalog; return the report.

    `principal` None is a trusted local caller (CLI, demo seeding), which must name the studio.
    `into` is the report of a queued import (catalog.imports.queued), filled in place.
    """
    studio = _studio_for(session, principal, studio_id)
    started = now or utcnow()
    # Two imports into one studio queue here (PostgreSQL; SQLite has one writer anyway). NO KEY
    # UPDATE still lets other requests insert rows that reference the studio meanwhile.
    session.execute(
        select(Organization.id).where(Organization.id == studio).with_for_update(key_share=True)
    )
    with tempfile.TemporaryDirectory(prefix="clearcut-import-") as workdir:
        source = _seekable(stream, Path(workdir))
        fmt = detect_format(_peek(source), filename)
        check = Check(
            existing_titles=_existing_titles(session, studio),
            existing_talent=_existing_talent(session, studio),
            existing_keys=_existing_keys(session, studio),
            spill=Spill(Path(workdir)),
        )
        digest = hashlib.sha256()
        total = _size(source)

        def on_read(data: bytes) -> None:
            digest.update(data)
            if progress is not None:
                progress("check", len(data), total)

        tallies: dict[str, dict[str, int]] = {}
        with _gc_paused(), _streaming(session, studio, check, started) as early:
            try:
                check.feed(_records(source, fmt, on_read))
                check.finish(lambda: _records(source, fmt, None))
            finally:
                check.spill.close()
            if not check.errors.total:
                tallies = _apply(session, studio, check, early, started, progress)
    return _report(
        session, principal, studio, fmt, digest.hexdigest(), check, tallies, started, into
    )


@contextlib.contextmanager
def _streaming(
    session: Session, studio: str, check: Check, started: datetime
) -> Iterator[Stream | None]:
    """On PostgreSQL, write new records while the file is checked (`catalog.imports.stream`)."""
    if session.connection().dialect.name != "postgresql":
        # SQLite writes in this very thread: writing early would only slow the check down.
        yield None
        return
    early = Stream(session, studio, check, started)
    try:
        yield early
    finally:
        early.close()


def _apply(
    session: Session,
    studio: str,
    check: Check,
    early: Stream | None,
    started: datetime,
    progress: ImportProgress | None,
) -> dict[str, dict[str, int]]:
    total = sum(check.spill.counts.values())
    advance = None if progress is None else (lambda n: progress("write", n, total))
    try:
        if early is None:
            tallies = Apply(session, studio, check, started, advance).run()
        else:
            early.finish()
            tallies = Apply(
                session, studio, check, started, advance, tallies=early.tallies, new_rows=early.rows
            ).run()
        # Titles and grants written in bulk: recompute what each title is licensable for
        # (catalog.rights.refresh_title_coverage), in the database, once for the studio.
        if any(
            tallies.get(kind, {}).get(change, 0)
            for kind in ("title", "rights")
            for change in ("created", "updated")
        ):
            refresh_title_coverage(session, studio_id=studio)
            created = sum(tallies.get(kind, {}).get("created", 0) for kind in ("title", "rights"))
            if created >= ANALYZE_AFTER_ROWS and session.get_bind().dialect.name == "postgresql":
                # Search plans by this table's statistics; a bulk load leaves none until
                # autovacuum comes by (a walk probing coverage unplanned: 20x slower).
                session.execute(text("ANALYZE title_coverage"))
        # PostgreSQL: the new titles wait in the GIN indexes' pending list, which every search
        # would scan in full until autovacuum merged it; merge it now, in bulk.
        settle_title_index(session)
        return tallies
    # The last two from the DB-API connections: COPY, and SQLite's multi-row INSERTs.
    except (IntegrityError, psycopg.IntegrityError, sqlite3.IntegrityError) as exc:
        # Only a concurrent writer can get here (the file was checked against the catalog).
        raise Conflict(
            "the catalog changed while the import was being written; run the import again"
        ) from exc


def _report(
    session: Session,
    principal: Principal | None,
    studio: str,
    fmt: str,
    sha256: str,
    check: Check,
    tallies: dict[str, dict[str, int]],
    started: datetime,
    into: ImportJob | None = None,
) -> ImportJob:
    status = "failed" if check.errors.total else "succeeded"
    errors = check.errors.report()
    fields: dict[str, Any] = {
        "studio_id": studio,
        "format": fmt,
        "file_sha256": sha256,
        "status": status,
        "rows_total": check.rows_total,
        "rows_ok": check.rows_ok,
        "summary": {
            "records": dict(sorted(check.counts.items())),
            "results": tallies,
            "errors_total": check.errors.total,
        },
        "errors": errors,
        "finished_at": utcnow(),
    }
    if into is None:
        job = ImportJob(
            created_by=principal.user_id if principal is not None else None,
            created_at=started,
            **fields,
        )
        session.add(job)
    else:
        job = into
        for name, value in fields.items():
            setattr(job, name, value)
    session.flush()
    record_event(
        session,
        principal,
        f"catalog.import.{status}",
        object_id=job.id,
        organization_id=studio,
        data={
            "format": fmt,
            "file_sha256": sha256,
            "rows_total": job.rows_total,
            "rows_ok": job.rows_ok,
            "errors": check.errors.total,
            "created": {kind: t["created"] for kind, t in tallies.items()},
            "updated": {kind: t["updated"] for kind, t in tallies.items()},
        },
    )
    return job


def _existing_titles(session: Session, studio: str) -> dict[str, ExistingTitle]:
    stmt = select(Title.external_id, Title.id, Title.kind, Title.parent_id, Title.root_id).where(
        Title.studio_id == studio
    )
    return {
        external_id: ExistingTitle(title_id, kind, parent_id, root_id)
        for external_id, title_id, kind, parent_id, root_id in session.execute(stmt)
    }


def _existing_keys(session: Session, studio_id: str) -> dict[str, KeyFilter]:
    """The studio's asset, rights grant and consent external ids, as `KeyFilter`s by type.

    They come joined by newlines, thousands in a row, which Python splits and hashes in a call
    or two: a row (or an array element) for each key costs twice the time. A key holding a
    newline comes out in pieces, which can only make a new key taken for a known one (a key in
    an import file has no control characters), never the other way round.
    """
    postgres = session.connection().dialect.name == "postgresql"
    filters = {}
    for kind, model in (("asset", Asset), ("rights", RightsGrant), ("consent", Consent)):
        # Any spread of the rows into groups will do: a hash of the id, or SQLite's rowid.
        part = func.hashtext(model.id) if postgres else literal_column("rowid")
        stmt = (
            select(func.aggregate_strings(model.external_id, "\n"))
            .where(model.studio_id == studio_id, model.external_id.is_not(None))
            .group_by(part.op("&")(_KEY_ROWS - 1))
        )
        hashes = array("q")
        for joined in session.scalars(stmt):
            hashes.extend(map(hash, joined.split("\n")))
        filters[kind] = KeyFilter(hashes)
    return filters


def _existing_talent(session: Session, studio: str) -> dict[str, str]:
    stmt = select(Talent.external_id, Talent.id).where(
        Talent.studio_id == studio, Talent.external_id.is_not(None)
    )
    return {
        external_id: talent_id
        for external_id, talent_id in session.execute(stmt)
        if external_id is not None
    }


def _seekable(stream: IO[bytes], workdir: Path) -> IO[bytes]:
    """The stream itself if it can be read twice, else a copy of it on disk."""
    if stream.seekable():
        stream.seek(0)
        return stream
    copy = (workdir / "upload").open("w+b")
    shutil.copyfileobj(stream, copy, _READ_CHUNK)
    copy.seek(0)
    return copy


def _peek(stream: IO[bytes]) -> bytes:
    head = stream.read(4096)
    stream.seek(0)
    return head


def _size(stream: IO[bytes]) -> int:
    end = stream.seek(0, io.SEEK_END)
    stream.seek(0)
    return end


def _records(
    source: IO[bytes], fmt: str, on_read: Callable[[bytes], None] | None
) -> Iterator[ReadRow]:
    source.seek(0)
    buffered = io.BufferedReader(_Tap(source, on_read), _READ_CHUNK)
    yield from read_records(buffered, fmt)
