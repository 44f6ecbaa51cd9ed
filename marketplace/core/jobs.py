"""Jobs: work done outside a request, recorded in the database and run by workers.

The database row is the truth; the queue (marketplace.worker, on huey) only says "look at job
N now". So:

- **Transactional outbox.** `enqueue` writes the job in the caller's transaction: it exists if
  and only if the change that asked for it committed. The unit of work hands it to the queue
  after the commit; a job whose hand-off was lost (the process died in between) is handed
  over again by the sweep.
- **At least once, effect once.** A worker claims a job with one conditional UPDATE (queued,
  or running with its lease run out), runs the handler in a unit of work and marks the job
  succeeded *in that same unit of work*: the handler's writes and "done" commit together. A
  worker killed mid-job commits nothing; its lease runs out and the sweep hands the job over
  again. Handlers must be idempotent for what they do outside the database.
- **Retries with backoff**, then a visible `failed` state with the error and the attempts.
- **In order per object**: jobs sharing an `ordering_key` run one at a time, oldest first.
- **Once per period**: a scheduled job's `key` names its period; the unique key lets one
  scheduler in one process win, however many workers run a schedule.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Index,
    Integer,
    String,
    Text,
    and_,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, aliased, mapped_column

from marketplace.core.db import Base, utcnow

log = logging.getLogger("marketplace.jobs")

JOB_STATUSES = ("queued", "running", "succeeded", "failed")
#: How long a claimed job is a worker's before another may take it over (renewed while it runs).
LEASE_SECONDS = 60
#: Attempts before a job is left `failed`.
DEFAULT_MAX_ATTEMPTS = 5
#: Delay before attempt n+1: BASE × 4^(n-1), capped (5 s, 20 s, 80 s, 320 s, …, 1 h).
BACKOFF_BASE_SECONDS = 5.0
BACKOFF_CAP_SECONDS = 3600.0
# A queued job not claimed this long after it was due is handed to the queue again (its
# hand-off after commit may have been lost).
REDISPATCH_AFTER_SECONDS = 30


class Job(Base):
    """One piece of background work and its outcome."""

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint("status IN ('queued', 'running', 'succeeded', 'failed')", name="status"),
        Index("ix_jobs_status_run_after", "status", "run_after"),
        Index("ix_jobs_ordering_key_id", "ordering_key", "id"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    name: Mapped[str] = mapped_column(String(80))
    args: Mapped[dict[str, Any]] = mapped_column()
    # Unique when set: the same work asked for twice (a period's schedule, an asset's check)
    # is one job.
    key: Mapped[str | None] = mapped_column(String(200), unique=True)
    ordering_key: Mapped[str | None] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(20), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=DEFAULT_MAX_ATTEMPTS)
    last_error: Mapped[str | None] = mapped_column(Text)
    run_after: Mapped[datetime] = mapped_column(default=utcnow)
    lease_expires_at: Mapped[datetime | None] = mapped_column()
    dispatched_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()

    @property
    def public_id(self) -> str:
        return f"job_{self.id}"


class ProgressBoard(Protocol):
    """Where a running job posts its progress for any process to read."""

    def publish(self, key: str, value: Mapping[str, Any]) -> None: ...

    def read(self, key: str) -> dict[str, Any] | None: ...


class JobQueue(ProgressBoard, Protocol):
    """Where job ids go to be run: huey in a worker, or a list in a unit test; its store also
    carries running jobs' progress."""

    def dispatch(self, job_id: int, *, delay_seconds: float = 0.0) -> None: ...


# session.info key: (job id, delay in seconds) to hand to the queue once the session's
# transaction commits; a job due later is handed over with its delay.
AFTER_COMMIT = "clearcut_jobs_after_commit"


def enqueue(
    session: Session,
    name: str,
    args: Mapping[str, Any] | None = None,
    *,
    key: str | None = None,
    ordering_key: str | None = None,
    run_after: datetime | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    now: datetime | None = None,
) -> int | None:
    """Record a job in the caller's transaction; the unit of work dispatches it after commit.

    With a `key` already taken, nothing is added and None is returned: that work is asked for
    already (or done, for a period's schedule)."""
    now = now or utcnow()
    values = {
        "name": name,
        "args": dict(args or {}),
        "key": key,
        "ordering_key": ordering_key,
        "status": "queued",
        "attempts": 0,
        "max_attempts": max_attempts,
        "run_after": run_after or now,
        "created_at": now,
    }
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(Job).values(**values).on_conflict_do_nothing().returning(Job.id)
    job_id = session.execute(stmt).scalar_one_or_none()
    if job_id is not None:
        delay = max(0.0, ((run_after or now) - now).total_seconds())
        session.info.setdefault(AFTER_COMMIT, []).append((job_id, delay))
    return job_id


def pending_dispatch(session: Session) -> list[tuple[int, float]]:
    """Take the ids (and delays) of the jobs this session enqueued (its unit of work
    dispatches them)."""
    return session.info.pop(AFTER_COMMIT, [])


def claim(session: Session, job_id: int, *, now: datetime, lease_seconds: float) -> Job | None:
    """Take a job to run, or None if it is not due, done, another worker's, or must wait for an
    earlier job of its ordering key. One conditional UPDATE: two workers never both win."""
    earlier = aliased(Job)
    blocked = exists().where(
        earlier.ordering_key == Job.ordering_key,
        earlier.id < Job.id,
        earlier.status.in_(("queued", "running")),
    )
    result = session.execute(
        update(Job)
        .where(
            Job.id == job_id,
            Job.run_after <= now,
            or_(
                Job.status == "queued",
                and_(Job.status == "running", Job.lease_expires_at < now),
            ),
            or_(Job.ordering_key.is_(None), ~blocked),
        )
        .values(
            status="running",
            attempts=Job.attempts + 1,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            started_at=now,
        )
        .returning(Job.id)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    if result is None:
        return None
    return session.get(Job, job_id, populate_existing=True)


def renew_lease(session: Session, job_id: int, *, now: datetime, lease_seconds: float) -> bool:
    """Extend a running job's lease; False if it is no longer running (taken over, done)."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == "running")
        .values(lease_expires_at=now + timedelta(seconds=lease_seconds))
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def mark_succeeded(session: Session, job: Job, *, now: datetime) -> None:
    """In the handler's own unit of work: its writes and "done" commit together."""
    job.status, job.finished_at, job.lease_expires_at, job.last_error = "succeeded", now, None, None
    session.flush()


def backoff_seconds(attempts: int) -> float:
    """Delay before the next attempt after `attempts` failed ones."""
    return min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 4 ** max(0, attempts - 1))


def record_failure(
    session: Session,
    job_id: int,
    error: BaseException,
    *,
    now: datetime,
    max_attempts: int | None = None,
    backoff: Callable[[int], float] = backoff_seconds,
) -> float | None:
    """After a failed attempt (the handler's unit of work rolled back): queue the job again
    after its backoff (the handler's schedule, if it has one) and return the delay, or leave
    it `failed` and return None. The job's own limit applies, or the handler's
    (`max_attempts`) where lower."""
    job = session.get(Job, job_id, populate_existing=True)
    if job is None:
        return None
    text = "".join(traceback.format_exception_only(type(error), error)).strip()[:2000]
    job.last_error, job.lease_expires_at = text, None
    limit = min(job.max_attempts, max_attempts or job.max_attempts)
    if job.attempts >= limit:
        job.status, job.finished_at = "failed", now
        session.flush()
        log.error("job %s (%s) failed for good: %s", job.id, job.name, text)
        return None
    delay = backoff(job.attempts)
    job.status, job.run_after = "queued", now + timedelta(seconds=delay)
    session.flush()
    log.warning("job %s (%s) failed, attempt %s: %s", job.id, job.name, job.attempts, text)
    return delay


def due_for_dispatch(session: Session, *, now: datetime, limit: int = 500) -> list[int]:
    """Jobs to hand to the queue again: due and queued, not handed over lately; or running
    with their lease run out (the worker died)."""
    stale = now - timedelta(seconds=REDISPATCH_AFTER_SECONDS)
    stmt = (
        select(Job.id)
        .where(
            or_(
                and_(
                    Job.status == "queued",
                    func.coalesce(Job.dispatched_at, Job.run_after) < stale,
                ),
                and_(Job.status == "running", Job.lease_expires_at < now),
            )
        )
        .order_by(Job.id)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def note_dispatched(session: Session, job_ids: Iterable[int], *, now: datetime) -> None:
    ids = list(job_ids)
    if ids:
        session.execute(
            update(Job)
            .where(Job.id.in_(ids))
            .values(dispatched_at=now)
            .execution_options(synchronize_session=False)
        )


def queue_depth(session: Session) -> dict[str, int]:
    """Jobs per status (the queue's depth is `queued` + `running`)."""
    rows = session.execute(select(Job.status, func.count()).group_by(Job.status)).all()
    counts = dict.fromkeys(JOB_STATUSES, 0)
    counts.update({status: int(n) for status, n in rows})
    return counts


@dataclass(frozen=True)
class Handler:
    """What a job of one name runs: `run(uow, args)` in a unit of work."""

    name: str
    run: Callable[[Any, dict[str, Any]], None]
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    # Delay before the next attempt after n failed ones (webhook deliveries spread theirs over
    # days).
    backoff: Callable[[int], float] = backoff_seconds
