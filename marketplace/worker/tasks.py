"""What workers do: the handlers of each job name, and the schedules that enqueue the
marketplace's own work. Both are plain lists given to the worker (run.py); nothing registers
itself."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select

from catalog.checksums import assets_awaiting_verification, read_back, record_verdict
from catalog.imports.queued import IMPORT_JOB, fail_queued_import, run_queued_import
from catalog.models import Asset
from contracts.service import expire_contracts
from marketplace.audit.keys import AUDIT_KEYS
from marketplace.audit.sealing import seal_pending
from marketplace.brokering.service import expire_offers
from marketplace.core.errors import DomainError
from marketplace.core.jobs import Handler, Job, enqueue
from marketplace.webhooks.crypto import secret_box
from marketplace.webhooks.deliver import attempt_delivery
from marketplace.webhooks.service import DELIVERY_ATTEMPTS, DELIVERY_JOB, retry_delay
from marketplace.worker.runner import JobContext


def _expire_offers(ctx: JobContext, args: dict[str, Any]) -> None:
    expire_offers(ctx.uow.session, now=ctx.runtime.clock())


def _expire_contracts(ctx: JobContext, args: dict[str, Any]) -> None:
    expire_contracts(ctx.uow.session, today=ctx.runtime.clock().date())


#: Assets queued for checking by one run of the schedule (the next run takes the rest).
VERIFY_BATCH = 500


def _queue_asset_checks(ctx: JobContext, args: dict[str, Any]) -> None:
    """One job per asset whose whole SHA-256 is unchecked; an asset already queued is not
    queued twice (its key names the asset and the upload it checks)."""
    session = ctx.uow.session
    ids = assets_awaiting_verification(session, limit=VERIFY_BATCH)
    ready = dict(session.execute(select(Asset.id, Asset.ready_at).where(Asset.id.in_(ids))).all())
    for asset_id in ids:
        # Keyed by the upload it checks: a new upload of the asset is checked anew.
        ready_at = ready.get(asset_id)
        key = f"assets.verify:{asset_id}:{ready_at.isoformat() if ready_at else '-'}"
        enqueue(session, "assets.verify", {"asset_id": asset_id}, key=key)


def _verify_asset(ctx: JobContext, args: dict[str, Any]) -> None:
    """Read one asset back (hours for a large master: no transaction open meanwhile), then
    record the verdict in the job's own unit of work, so it is recorded once."""
    runtime = ctx.runtime
    snapshot, found = read_back(runtime.unit_of_work, runtime.storage, args["asset_id"])
    if snapshot is not None:
        record_verdict(ctx.uow.session, args["asset_id"], snapshot, found, runtime.clock())


def _import_catalog(ctx: JobContext, args: dict[str, Any]) -> None:
    """A queued import: its report filled in the job's own unit of work. A file refused as a
    whole (its studio gone) fails the import, not the job: retrying would not change it."""
    runtime = ctx.runtime
    try:
        with ctx.uow.session.begin_nested():
            run_queued_import(ctx.uow.session, runtime.storage, runtime.queue, args["import_id"])
    except DomainError as exc:
        fail_queued_import(ctx.uow.session, args["import_id"], exc.detail or exc.title)


#: Seconds between sealing runs: an event waits about this long for its place in the log.
SEAL_PERIOD_SECONDS = 2


def seal_key(epoch_seconds: float) -> str:
    """One sealing job per period, however many runs (or the minute's schedule) ask for it."""
    return f"audit.seal@{int(epoch_seconds // SEAL_PERIOD_SECONDS)}"


def _seal_audit_log(ctx: JobContext, args: dict[str, Any]) -> None:
    """Seal the waiting audit events, then ask for the next run one period later: huey's
    schedules fire at most once a minute, so the job keeps itself going (the minute's schedule
    starts it again if it ever stops). One sealer at a time: seal_pending locks the chain's head
    row, which appenders never touch."""
    runtime = ctx.runtime
    keys = runtime.get(AUDIT_KEYS)
    if keys is None or not keys.can_seal:
        raise RuntimeError("no audit signing key: set AUDIT_SIGNING_KEY_FILE on the workers")
    session, now = ctx.uow.session, runtime.clock()
    seal_pending(session, keys, now=now)
    # Still holding the head's lock: another run that reaches here waits for this one's commit
    # and sees its next run queued, so the minute's schedule never starts a second chain.
    queued = session.scalar(
        select(Job.id).where(Job.name == "audit.seal", Job.status == "queued", Job.id != ctx.job_id)
    )
    if queued is None:
        later = now + timedelta(seconds=SEAL_PERIOD_SECONDS)
        enqueue(session, "audit.seal", key=seal_key(later.timestamp()), run_after=later, now=now)
    # 1,800 runs an hour: keep the jobs table to the last hour's.
    session.execute(
        delete(Job).where(
            Job.name == "audit.seal",
            Job.status == "succeeded",
            Job.finished_at < now - timedelta(hours=1),
        )
    )


def _deliver_webhook(ctx: JobContext, args: dict[str, Any]) -> None:
    """One attempt of one webhook delivery; a non-2xx answer or none fails the job, retried
    on the delivery's schedule (about 3 days)."""
    runtime = ctx.runtime
    attempt_delivery(
        unit_of_work=runtime.unit_of_work,
        session=ctx.uow.session,
        box=secret_box(runtime.settings),
        clock=runtime.clock,
        production=runtime.settings.is_production,
        delivery_id=args["delivery_id"],
        attempt=ctx.attempt,
    )


HANDLERS: tuple[Handler, ...] = (
    Handler("offers.expire", _expire_offers),
    Handler("contracts.expire", _expire_contracts),
    Handler("assets.queue_checks", _queue_asset_checks),
    Handler("assets.verify", _verify_asset, max_attempts=8),
    Handler(IMPORT_JOB, _import_catalog),
    # A failed run is not retried: the next period's run (or the minute's) seals the same events.
    Handler("audit.seal", _seal_audit_log, max_attempts=1),
    Handler(DELIVERY_JOB, _deliver_webhook, max_attempts=DELIVERY_ATTEMPTS, backoff=retry_delay),
)


@dataclass(frozen=True)
class Schedule:
    """A job enqueued once per period (crontab fields, as huey's crontab takes them)."""

    job: str
    minute: str = "*"
    hour: str = "*"


SCHEDULES: tuple[Schedule, ...] = (
    Schedule("offers.expire"),  # every minute: an offer expires within a minute of its time
    Schedule("contracts.expire", minute="*/15"),  # terms end at a day's end
    Schedule("assets.queue_checks", minute="*/10"),
    Schedule("audit.seal"),  # restarts the every-2-seconds chain of seal runs if it stopped
)
