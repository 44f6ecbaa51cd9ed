"""What workers do: the handlers of each job name, and the schedules that enqueue the
marketplace's own work. Both are plain lists given to the worker (run.py); nothing registers
itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from catalog.checksums import assets_awaiting_verification, read_back, record_verdict
from catalog.imports.queued import IMPORT_JOB, fail_queued_import, run_queued_import
from catalog.models import Asset
from contracts.service import expire_contracts
from marketplace.brokering.service import expire_offers
from marketplace.core.errors import DomainError
from marketplace.core.jobs import Handler, enqueue
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
)
