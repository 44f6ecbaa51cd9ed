"""One delivery attempt, as the `webhooks.deliver` job runs it: read what to send in a short
transaction, sign it, post it with no transaction open, then record the outcome. A success
commits with the job; a failure is recorded in a transaction of its own (the job's rolls back)
and raised, so the job is retried on the delivery's schedule."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session
from standardwebhooks import Webhook

from marketplace.core.runtime import UnitOfWork
from marketplace.webhooks.crypto import SecretBox
from marketplace.webhooks.sender import Outcome, post_webhook
from marketplace.webhooks.service import (
    DELIVERY_ATTEMPTS,
    Prepared,
    prepare_attempt,
    record_attempt,
)

Poster = Callable[..., Outcome]


class DeliveryFailed(RuntimeError):
    """The receiver did not answer 2xx in time; the job retries."""


def signed_headers(prepared: Prepared, now: datetime) -> dict[str, str]:
    """Standard Webhooks headers: the message id, the attempt's time, and one signature per
    secret in use (two during a rotation's grace period), space-separated."""
    signatures = [
        Webhook(s).sign(prepared.message_id, now, prepared.body) for s in prepared.secrets
    ]
    return {
        "webhook-id": prepared.message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": " ".join(signatures),
    }


def attempt_delivery(
    *,
    unit_of_work: Callable[[], UnitOfWork],
    session: Session,
    box: SecretBox,
    clock: Callable[[], datetime],
    production: bool,
    delivery_id: str,
    attempt: int,
    post: Poster = post_webhook,
) -> Outcome | None:
    """Attempt one delivery; `session` is the job's own (a success commits with it)."""
    with unit_of_work() as uow:
        prepared = prepare_attempt(uow.session, box, delivery_id, now=clock())
    if prepared is None:
        return None
    now = clock()
    outcome = post(
        prepared.url, prepared.body, signed_headers(prepared, now), production=production
    )
    if outcome.ok:
        record_attempt(
            session,
            delivery_id,
            status=outcome.status,
            duration_ms=outcome.duration_ms,
            error=None,
            now=now,
            final=False,
        )
        return outcome
    with unit_of_work() as uow:
        record_attempt(
            uow.session,
            delivery_id,
            status=outcome.status,
            duration_ms=outcome.duration_ms,
            error=outcome.error,
            now=now,
            final=attempt >= DELIVERY_ATTEMPTS,
        )
    raise DeliveryFailed(
        f"delivery {delivery_id}: "
        + (f"HTTP {outcome.status}" if outcome.status is not None else outcome.error or "no answer")
    )
