"""Imports run by a worker: a large file over HTTP is answered at once (202) and imported in
the background, with the same all-or-nothing report at the end and its progress meanwhile.

The request stores the file in the object store (workers on other machines read it there),
writes the report `queued` and enqueues the job in the same transaction; the worker imports
it with `import_catalog`, filling that report, and posts its progress (records checked, then
written) where any process can read it (the queue's store: on SQLite the import holds the
database's write lock, so no other connection could write progress there).
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.imports.parse import detect_format
from catalog.imports.service import ImportProgress, _studio_for, import_catalog
from catalog.models import ImportJob
from marketplace.accounts.models import Organization, User
from marketplace.accounts.principal import Principal
from marketplace.audit.service import record_event
from marketplace.core.db import utcnow
from marketplace.core.jobs import ProgressBoard, enqueue
from marketplace.core.storage import ObjectStorage

#: The job that runs a queued import.
IMPORT_JOB = "catalog.import"
_CHUNK = 1024 * 1024
# A running import posts its progress at most this often.
PROGRESS_EVERY_SECONDS = 0.5


def queue_import(
    session: Session,
    principal: Principal,
    stream: IO[bytes],
    *,
    storage: ObjectStorage,
    studio_id: str | None = None,
    filename: str | None = None,
    now: datetime | None = None,
) -> ImportJob:
    """Store the file, write its report `queued`, and enqueue the import (after commit)."""
    studio = _studio_for(session, principal, studio_id)
    started = now or utcnow()
    digest = hashlib.sha256()
    size = 0
    with tempfile.TemporaryFile(prefix="clearcut-import-") as spool:
        head = b""
        while chunk := stream.read(_CHUNK):
            if len(head) < 4096:
                head += chunk[: 4096 - len(head)]
            digest.update(chunk)
            size += len(chunk)
            spool.write(chunk)
        fmt = detect_format(head, filename)
        job = ImportJob(
            studio_id=studio,
            created_by=principal.user_id,
            format=fmt,
            file_sha256=digest.hexdigest(),
            status="queued",
            summary={},
            errors=[],
            created_at=started,
        )
        session.add(job)
        session.flush()
        # The key names the import, never the uploader's file name.
        job.file_key = f"imports/{studio}/{job.id}.{fmt}"
        spool.seek(0)
        storage.put_file(job.file_key, spool)
    enqueue(session, IMPORT_JOB, {"import_id": job.id}, ordering_key=f"catalog-import:{studio}")
    record_event(
        session,
        principal,
        "catalog.import.queued",
        object_id=job.id,
        organization_id=studio,
        data={"format": fmt, "file_sha256": job.file_sha256, "byte_size": size},
    )
    session.flush()
    return job


def run_queued_import(
    session: Session,
    storage: ObjectStorage,
    board: ProgressBoard | None,
    import_id: str,
) -> ImportJob | None:
    """Import a queued file into its report (a worker's job); a report already finished is
    left as it is (the job ran before), a missing one is None."""
    job = session.get(ImportJob, import_id)
    if job is None or job.status in ("succeeded", "failed") or job.file_key is None:
        return job
    principal = _importer(session, job)
    progress = _poster(board, import_id)
    with tempfile.TemporaryDirectory(prefix="clearcut-import-") as workdir:
        path = Path(workdir) / "upload"
        with path.open("w+b") as copy:
            for chunk in storage.read_chunks(job.file_key):
                copy.write(chunk)
            copy.seek(0)
            return import_catalog(
                session,
                principal,
                copy,
                studio_id=job.studio_id,
                filename=f"upload.{job.format}",
                progress=progress,
                into=job,
            )


def fail_queued_import(session: Session, import_id: str, message: str) -> None:
    """Record a queued import refused as a whole (its studio gone, say): failed, with why."""
    job = session.get(ImportJob, import_id)
    if job is None or job.status in ("succeeded", "failed"):
        return
    job.status, job.finished_at = "failed", utcnow()
    job.errors = [{"row": None, "field": None, "message": message}]
    job.summary = {"records": {}, "results": {}, "errors_total": 1}
    record_event(
        session,
        None,
        "catalog.import.failed",
        object_id=job.id,
        organization_id=job.studio_id,
        data={"reason": message},
    )
    session.flush()


def progress_of(board: ProgressBoard | None, job: ImportJob) -> dict[str, Any] | None:
    """What a queued or running import has done so far (None once finished, or before)."""
    if board is None or job.status not in ("queued", "running"):
        return None
    return board.read(f"import:{job.id}")


def _importer(session: Session, job: ImportJob) -> Principal | None:
    """Who asked for the import, as a principal (the audit records them); None if gone."""
    if job.created_by is None:
        return None
    row = session.execute(
        select(User.id, User.organization_id, User.role, Organization.kind)
        .join(Organization, Organization.id == User.organization_id)
        .where(User.id == job.created_by)
    ).one_or_none()
    if row is None:
        return None
    user_id, organization_id, role, kind = row
    return Principal(user_id, organization_id, kind, role)


def _poster(board: ProgressBoard | None, import_id: str) -> ImportProgress | None:
    if board is None:
        return None
    done: dict[str, int] = {}
    last = [0.0]

    def post(phase: str, advance: int, total: int) -> None:
        done[phase] = done.get(phase, 0) + advance
        now = time.monotonic()
        if now - last[0] >= PROGRESS_EVERY_SECONDS or done[phase] >= total:
            last[0] = now
            board.publish(f"import:{import_id}", _progress(phase, done[phase], total))

    return post


def _progress(phase: str, done: int, total: int) -> Mapping[str, Any]:
    # "check" advances by bytes of the file read, "write" by records written.
    unit = "bytes" if phase == "check" else "records"
    return {"phase": phase, "done": done, "total": total, "unit": unit}


__all__ = [
    "IMPORT_JOB",
    "fail_queued_import",
    "progress_of",
    "queue_import",
    "run_queued_import",
]
