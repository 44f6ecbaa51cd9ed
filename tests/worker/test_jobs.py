"""Jobs: written in the caller's transaction and handed to the queue after commit, claimed once,
retried with backoff, left visibly failed, run in order per object, scheduled once per period;
and the marketplace's own work (offers and contracts expiring) done without anyone reading."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from config import Settings
from marketplace.app import create_app
from marketplace.audit.models import AuditEvent
from marketplace.bootstrap import build_runtime
from marketplace.brokering.models import Offer
from marketplace.core.jobs import Handler, Job, backoff_seconds, claim, enqueue
from marketplace.core.queue import ListQueue
from marketplace.core.runtime import Runtime
from marketplace.core.storage.fake import InMemoryStorage
from marketplace.worker.run import fire
from marketplace.worker.runner import JobContext, JobRunner
from marketplace.worker.tasks import HANDLERS, Schedule
from tests.deals import cleared_title, offer_body, post, request_body, signed_contract
from tests.helpers import bound_sessions, problem
from tests.world import World

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


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
    """A runtime on the test's transaction, with a queue that records and a fixed clock."""
    runtime = build_runtime(
        settings,
        session_factory=bound_sessions(connection),
        storage=InMemoryStorage("jobs"),
        payments=payments,
        queue=queue,
        clock=clock,
    )
    yield runtime


def jobs(session: Session) -> list[Job]:
    session.expire_all()
    return list(session.scalars(select(Job).order_by(Job.id)))


class TestOutbox:
    def test_a_job_is_queued_only_once_its_transaction_commits(
        self, runtime: Runtime, queue: ListQueue, session: Session
    ) -> None:
        with runtime.unit_of_work() as uow:
            job_id = enqueue(uow.session, "offers.expire")
            assert queue.dispatched == []  # not before the commit
        assert queue.dispatched == [(job_id, 0.0)]
        with pytest.raises(RuntimeError), runtime.unit_of_work() as uow:
            enqueue(uow.session, "offers.expire")
            raise RuntimeError("the change failed")
        assert len(queue.dispatched) == 1 and len(jobs(session)) == 1  # nothing of the failure

    def test_the_same_key_is_one_job(self, runtime: Runtime, session: Session) -> None:
        with runtime.unit_of_work() as uow:
            first = enqueue(uow.session, "assets.verify", {"asset_id": "a"}, key="k")
            again = enqueue(uow.session, "assets.verify", {"asset_id": "a"}, key="k")
        assert first is not None and again is None
        assert len(jobs(session)) == 1


def recorder(calls: list[Any], *, fail_times: int = 0) -> Handler:
    """A handler whose effect is an audit event in the job's unit of work."""

    def run(ctx: JobContext, args: dict[str, Any]) -> None:
        from marketplace.audit.service import record_event

        calls.append((ctx.job_id, ctx.attempt, args))
        record_event(ctx.uow.session, None, "test.effect", object_id=None, organization_id=None)
        if ctx.attempt <= fail_times:
            raise ValueError(f"attempt {ctx.attempt} fails")

    return Handler("test.record", run, max_attempts=3)


def effects(session: Session) -> int:
    session.expire_all()
    return len(list(session.scalars(select(AuditEvent).where(AuditEvent.action == "test.effect"))))


class TestRunner:
    def test_a_job_runs_once_and_its_effect_commits_with_done(
        self, runtime: Runtime, session: Session
    ) -> None:
        calls: list[Any] = []
        runner = JobRunner(runtime, {"test.record": recorder(calls)})
        with runtime.unit_of_work() as uow:
            job_id = enqueue(uow.session, "test.record", {"n": 1})
        assert job_id is not None
        assert runner.run(job_id) == "succeeded"
        assert runner.run(job_id) == "skipped"  # delivered twice, run once
        assert calls == [(job_id, 1, {"n": 1})] and effects(session) == 1
        [job] = jobs(session)
        assert (job.status, job.attempts, job.finished_at) == ("succeeded", 1, T0)

    def test_a_failure_rolls_back_its_effect_and_retries_with_backoff(
        self, runtime: Runtime, session: Session, queue: ListQueue, clock: Clock
    ) -> None:
        calls: list[Any] = []
        runner = JobRunner(runtime, {"test.record": recorder(calls, fail_times=1)})
        with runtime.unit_of_work() as uow:
            job_id = enqueue(uow.session, "test.record")
        assert job_id is not None
        assert runner.run(job_id) == "retrying"
        assert effects(session) == 0  # the failed attempt's writes are gone
        assert queue.dispatched[-1] == (job_id, backoff_seconds(1))
        assert runner.run(job_id) == "skipped"  # not due before its backoff
        clock.advance(seconds=backoff_seconds(1))
        assert runner.run(job_id) == "succeeded"
        assert effects(session) == 1
        [job] = jobs(session)
        assert job.attempts == 2 and job.last_error is None

    def test_backoff_grows_and_is_capped(self) -> None:
        delays = [backoff_seconds(n) for n in range(1, 9)]
        assert delays == sorted(delays) and delays[0] == 5.0 and delays[1] == 20.0
        assert delays[-1] == 3600.0

    def test_a_job_given_up_is_failed_with_its_error_for_operators(
        self,
        runtime: Runtime,
        session: Session,
        clock: Clock,
        client: Any,
        world: World,
    ) -> None:
        runner = JobRunner(runtime, {"test.record": recorder([], fail_times=99)})
        with runtime.unit_of_work() as uow:
            job_id = enqueue(uow.session, "test.record")
        assert job_id is not None
        outcomes = []
        for _ in range(3):
            outcomes.append(runner.run(job_id))
            clock.advance(hours=2)
        assert outcomes == ["retrying", "retrying", "failed"]
        listed = client.get("/api/v1/jobs?status=failed", headers=world["operator"].headers)
        assert listed.status_code == 200
        [item] = listed.get_json()["items"]
        assert item["id"] == f"job_{job_id}" and item["attempts"] == 3
        assert item["last_error"] == "ValueError: attempt 3 fails"
        one = client.get(f"/api/v1/jobs/job_{job_id}", headers=world["operator"].headers)
        assert one.get_json()["status"] == "failed"
        problem(client.get("/api/v1/jobs", headers=world["studio_a"].headers), 403, "forbidden")
        metrics = client.get("/metrics").get_data(as_text=True)
        assert 'clearcut_jobs{status="failed"} 1' in metrics

    def test_a_job_without_a_handler_fails_visibly(
        self, runtime: Runtime, session: Session, clock: Clock
    ) -> None:
        runner = JobRunner(runtime, {})
        with runtime.unit_of_work() as uow:
            job_id = enqueue(uow.session, "nobody.knows", max_attempts=1)
        assert job_id is not None and runner.run(job_id) == "failed"
        assert "no handler" in (jobs(session)[0].last_error or "")

    def test_two_claims_one_winner_and_a_dead_workers_lease_runs_out(
        self, runtime: Runtime, clock: Clock
    ) -> None:
        with runtime.unit_of_work() as uow:
            job_id = enqueue(uow.session, "test.record")
        assert job_id is not None
        with runtime.unit_of_work() as uow:
            assert claim(uow.session, job_id, now=clock(), lease_seconds=60) is not None
        with runtime.unit_of_work() as uow:
            assert claim(uow.session, job_id, now=clock(), lease_seconds=60) is None
        clock.advance(seconds=61)  # the first worker died: its lease ran out
        with runtime.unit_of_work() as uow:
            taken = claim(uow.session, job_id, now=clock(), lease_seconds=60)
            assert taken is not None and taken.attempts == 2

    def test_jobs_of_one_object_run_in_order(self, runtime: Runtime, session: Session) -> None:
        calls: list[Any] = []
        runner = JobRunner(runtime, {"test.record": recorder(calls)})
        with runtime.unit_of_work() as uow:
            first = enqueue(uow.session, "test.record", {"n": 1}, ordering_key="ofr_1")
            second = enqueue(uow.session, "test.record", {"n": 2}, ordering_key="ofr_1")
            other = enqueue(uow.session, "test.record", {"n": 3}, ordering_key="ofr_2")
        assert first and second and other
        assert runner.run(second) == "skipped"  # delivered first, but must wait for `first`
        assert runner.run(other) == "succeeded"
        assert runner.run(first) == "succeeded"
        assert runner.run(second) == "succeeded"
        assert [c[2]["n"] for c in calls] == [3, 1, 2]


class TestSchedules:
    def test_a_schedule_fires_once_per_period_however_many_workers(
        self, runtime: Runtime, session: Session, clock: Clock, queue: ListQueue
    ) -> None:
        schedule = Schedule("offers.expire")
        assert fire(runtime, schedule) is not None
        clock.advance(seconds=20)
        assert fire(runtime, schedule) is None  # a second worker's scheduler, same minute
        clock.advance(minutes=1)
        assert fire(runtime, schedule) is not None
        assert [j.key for j in jobs(session)] == [
            "offers.expire@2026-12-06T12:00",
            "offers.expire@2026-12-06T12:01",
        ]


def handlers() -> dict[str, Handler]:
    return {h.name: h for h in HANDLERS}


class TestMarketplaceJobs:
    def test_an_offer_expires_with_its_event_while_nobody_reads_it(
        self, runtime: Runtime, session: Session, client: Any, world: World, clock: Clock
    ) -> None:
        title = cleared_title(session, world["studio_a"].org_id)
        session.commit()
        request = post(
            client, "/api/v1/license-requests", world["developer_x"].headers,
            request_body([title.id]),
        )  # fmt: skip
        expires = datetime.now(UTC) + timedelta(hours=1)
        offer = post(
            client,
            f"/api/v1/license-requests/{request['id']}/offers",
            world["studio_a"].headers,
            offer_body([title.id], expires_at=expires.isoformat()),
        )
        clock.now = expires - timedelta(seconds=1)
        runner = JobRunner(runtime, handlers())
        with runtime.unit_of_work() as uow:
            early = enqueue(uow.session, "offers.expire")
        assert early is not None and runner.run(early) == "succeeded"
        assert session.get(Offer, offer["id"], populate_existing=True).status == "open"  # type: ignore[union-attr]
        clock.now = expires + timedelta(seconds=30)
        with runtime.unit_of_work() as uow:
            due = enqueue(uow.session, "offers.expire")
        assert due is not None and runner.run(due) == "succeeded"
        stored = session.get(Offer, offer["id"], populate_existing=True)
        assert stored is not None and stored.status == "expired"
        [event] = session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "offer.expired", AuditEvent.object_id == offer["id"]
            )
        )
        assert event.at == clock.now
        # Both parties see it, as they see the offer.
        for who in ("studio_a", "developer_x"):
            seen = client.get(
                f"/api/v1/audit-events?object_id={offer['id']}&action=offer.expired",
                headers=world[who].headers,
            ).get_json()["items"]
            assert len(seen) == 1
        # Run again: nothing more happens.
        with runtime.unit_of_work() as uow:
            again = enqueue(uow.session, "offers.expire")
        assert again is not None and runner.run(again) == "succeeded"
        assert len(list(session.scalars(select(AuditEvent).where(
            AuditEvent.action == "offer.expired")))) == 1  # fmt: skip

    def test_a_contract_past_its_end_expires_with_its_event(
        self, runtime: Runtime, session: Session, client: Any, world: World, clock: Clock
    ) -> None:
        from contracts.models import Contract

        title = cleared_title(session, world["studio_a"].org_id)
        session.commit()
        contract = signed_contract(client, world, [title.id])
        ends = datetime.fromisoformat(contract["ends_on"]).date()
        clock.now = datetime(ends.year, ends.month, ends.day, 23, 0, tzinfo=UTC)
        runner = JobRunner(runtime, handlers())
        with runtime.unit_of_work() as uow:
            on_last_day = enqueue(uow.session, "contracts.expire")
        assert on_last_day is not None and runner.run(on_last_day) == "succeeded"
        assert session.get(Contract, contract["id"], populate_existing=True).status == "signed"  # type: ignore[union-attr]
        clock.advance(days=1)
        with runtime.unit_of_work() as uow:
            after = enqueue(uow.session, "contracts.expire")
        assert after is not None and runner.run(after) == "succeeded"
        stored = session.get(Contract, contract["id"], populate_existing=True)
        assert stored is not None and stored.status == "expired"
        events = session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "contract.expired", AuditEvent.object_id == contract["id"]
            )
        ).all()
        assert len(events) == 1 and events[0].data["was"] == "signed"
        shown = client.get(
            f"/api/v1/contracts/{contract['id']}", headers=world["developer_x"].headers
        ).get_json()
        assert shown["status"] == "expired"


def test_the_web_app_hands_jobs_to_its_runtimes_queue(
    settings: Settings, connection: Connection, queue: ListQueue
) -> None:
    app = create_app(
        settings,
        session_factory=bound_sessions(connection),
        storage=InMemoryStorage("x"),
        queue=queue,
    )
    assert app.extensions["clearcut"].runtime.queue is queue
