"""The sealing job: it seals what waits, keeps itself going every 2 seconds, and the minute's
schedule restarts it without ever running two chains."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from config import Settings
from marketplace.audit.keys import AuditKeys
from marketplace.audit.models import AuditEvent
from marketplace.audit.sealing import verify_log
from marketplace.audit.service import record_event
from marketplace.bootstrap import build_runtime
from marketplace.core.jobs import Job
from marketplace.core.queue import ListQueue
from marketplace.core.runtime import Runtime
from marketplace.core.storage.fake import InMemoryStorage
from marketplace.worker.run import fire
from marketplace.worker.runner import JobRunner
from marketplace.worker.tasks import HANDLERS, SCHEDULES, seal_key
from tests.helpers import bound_sessions

T0 = datetime(2026, 12, 8, 12, 0, 0, 500000, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def queue() -> ListQueue:
    return ListQueue()


@pytest.fixture
def runtime(
    settings: Settings, connection: Connection, queue: ListQueue, clock: Clock, payments: Any
) -> Iterator[Runtime]:
    yield build_runtime(
        settings,
        session_factory=bound_sessions(connection),
        storage=InMemoryStorage("seal"),
        payments=payments,
        queue=queue,
        clock=clock,
    )


def _seal_jobs(session: Session) -> list[Job]:
    session.expire_all()
    return list(session.scalars(select(Job).where(Job.name == "audit.seal").order_by(Job.id)))


def test_the_seal_job_seals_and_asks_for_its_next_run(
    runtime: Runtime, session: Session, queue: ListQueue, clock: Clock, audit_keys: AuditKeys
) -> None:
    runner = JobRunner(runtime, {h.name: h for h in HANDLERS})
    for i in range(3):
        record_event(session, None, "probe", object_id=f"x{i}", organization_id="org_a")
    session.commit()
    schedule = next(s for s in SCHEDULES if s.job == "audit.seal")
    first = fire(runtime, schedule)
    assert first is not None and runner.run(first) == "succeeded"

    assert all(e.seq for e in session.scalars(select(AuditEvent)))
    assert verify_log(session, audit_keys).ok
    queued = [j for j in _seal_jobs(session) if j.status == "queued"]
    assert len(queued) == 1
    assert queued[0].key == seal_key((clock.now + timedelta(seconds=2)).timestamp())
    assert queued[0].run_after == clock.now + timedelta(seconds=2)
    assert queue.dispatched[-1] == (queued[0].id, 2.0)  # handed over with its delay

    # The minute's schedule fires while the chain is alive: it seals, but starts no second chain.
    clock.now += timedelta(minutes=1)
    again = fire(runtime, schedule)
    assert again is not None and runner.run(again) == "succeeded"
    assert len([j for j in _seal_jobs(session) if j.status == "queued"]) == 1

    clock.now += timedelta(seconds=2)
    assert runner.run(queued[0].id) == "succeeded"
    assert len([j for j in _seal_jobs(session) if j.status == "queued"]) == 1


def test_without_a_signing_key_the_job_fails_visibly(
    settings: Settings, connection: Connection, queue: ListQueue, clock: Clock, payments: Any
) -> None:
    runtime = build_runtime(
        settings.with_overrides(audit_signing_key_file="/nonexistent/key.pem"),
        session_factory=bound_sessions(connection),
        storage=InMemoryStorage("seal"),
        payments=payments,
        queue=queue,
        clock=clock,
    )
    runner = JobRunner(runtime, {h.name: h for h in HANDLERS})
    job_id = fire(runtime, next(s for s in SCHEDULES if s.job == "audit.seal"))
    assert job_id is not None and runner.run(job_id) == "failed"
    with runtime.unit_of_work() as uow:
        job = uow.session.get(Job, job_id)
        assert job is not None and "AUDIT_SIGNING_KEY_FILE" in (job.last_error or "")
