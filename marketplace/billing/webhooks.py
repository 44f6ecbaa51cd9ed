"""The Stripe webhook: verify the signature, handle each event id once, move payments on."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import stripe
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from contracts.models import Contract
from contracts.service import publish_contract
from marketplace.audit.service import record_event
from marketplace.billing.gateway import PaymentGateway
from marketplace.billing.models import Payment, WebhookEvent
from marketplace.billing.payouts import record_payout
from marketplace.core.db import utcnow
from marketplace.core.errors import BadRequest

log = logging.getLogger("marketplace.billing")

#: How far a signed event's timestamp may be from our clock, either way (Stripe's own default
#: for old events; a future one is refused as well: a clock that far off cannot be trusted).
SIGNATURE_TOLERANCE = timedelta(minutes=5)


@dataclass(frozen=True)
class WebhookReceipt:
    event_id: str
    type: str
    outcome: str  # processed | ignored | duplicate


def verify_event(
    payload: bytes,
    signature: str | None,
    secret: str,
    *,
    now: datetime | None = None,
    tolerance: timedelta = SIGNATURE_TOLERANCE,
) -> dict[str, Any]:
    """Return the event Stripe signed, as plain data; BadRequest when the signature fails or
    its timestamp is more than `tolerance` before or after `now`."""
    if not signature:
        raise BadRequest("the Stripe-Signature header is missing")
    try:
        # tolerance=0: the library only refuses old timestamps, against its own clock; the
        # window is checked below, both ways, against ours.
        event = stripe.Webhook.construct_event(payload, signature, secret, tolerance=0)
    except stripe.SignatureVerificationError:
        raise BadRequest("the Stripe-Signature header does not match this payload") from None
    except (ValueError, AttributeError, TypeError):
        # Signed, but not UTF-8 JSON holding an object: the library trips on a list or a number.
        raise BadRequest("the webhook payload is not a JSON event") from None
    _check_timestamp(signature, now or utcnow(), tolerance)
    data: dict[str, Any] = event.to_dict()
    if not isinstance(data.get("id"), str) or not isinstance(data.get("type"), str):
        raise BadRequest("the webhook payload is not a Stripe event")
    return data


def _check_timestamp(signature: str, now: datetime, tolerance: timedelta) -> None:
    """Refuse a signature made too long ago (a replay) or too far ahead (a wrong clock)."""
    # The signature matched, so the header holds a `t=` integer (the first, as Stripe reads it).
    signed_at = next(
        int(v) for k, _, v in (i.partition("=") for i in signature.split(",")) if k == "t"
    )
    skew = datetime.fromtimestamp(signed_at, UTC) - now
    if abs(skew) > tolerance:
        when = "ahead of" if skew > timedelta(0) else "behind"
        raise BadRequest(
            f"the Stripe-Signature timestamp is {abs(skew.total_seconds()):.0f} s {when} our "
            f"clock; more than {tolerance.total_seconds():.0f} s either way is refused"
        )


def receive_webhook(
    session: Session,
    payload: bytes,
    signature: str | None,
    *,
    secret: str,
    fee_bps: int,
    gateway: PaymentGateway,
    now: datetime | None = None,
) -> WebhookReceipt:
    """Verify a Stripe event and apply it, once per event id; replays change nothing."""
    now = now or utcnow()
    event = verify_event(payload, signature, secret, now=now)
    event_id, event_type = event["id"], event["type"]
    record = _claim(session, event_id, event_type)
    if record is None:
        return WebhookReceipt(event_id, event_type, "duplicate")
    intent = (event.get("data") or {}).get("object") or {}
    match event_type:
        case "payment_intent.succeeded":
            handled = _payment_succeeded(
                session, event_id, intent, fee_bps=fee_bps, gateway=gateway, now=now
            )
        case "payment_intent.payment_failed":
            handled = _payment_failed(session, event_id, intent, now=now)
        case _:
            handled = False
    record.outcome = "processed" if handled else "ignored"
    session.flush()
    return WebhookReceipt(event_id, event_type, record.outcome)


def _claim(session: Session, event_id: str, event_type: str) -> WebhookEvent | None:
    """Insert the event id, or return None when it was handled already.

    A concurrent delivery of the same event waits on the unique index (PostgreSQL) or the
    write lock (SQLite) until the first commits, then fails here and reports a duplicate.
    """
    record = WebhookEvent(event_id=event_id, type=event_type[:100])
    try:
        with session.begin_nested():
            session.add(record)
            session.flush()
    except IntegrityError:
        return None
    return record


def _locked(session: Session, intent: dict[str, Any]) -> tuple[Payment, Contract] | None:
    """The payment of this intent and its contract, both locked (contract first, as elsewhere)."""
    intent_id = intent.get("id")
    if not isinstance(intent_id, str):
        return None
    ids = session.execute(
        select(Payment.id, Payment.contract_id).where(Payment.intent_id == intent_id)
    ).one_or_none()
    if ids is None:
        # Not ours (another integration on the account), or its request rolled back.
        log.info("stripe event for an unknown payment intent %s ignored", intent_id)
        return None
    payment_id, contract_id = ids
    contract = session.scalars(
        select(Contract)
        .where(Contract.id == contract_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    payment = session.scalars(
        select(Payment)
        .where(Payment.id == payment_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    return payment, contract


def _payment_succeeded(
    session: Session,
    event_id: str,
    intent: dict[str, Any],
    *,
    fee_bps: int,
    gateway: PaymentGateway,
    now: datetime,
) -> bool:
    found = _locked(session, intent)
    if found is None:
        return False
    payment, contract = found
    if payment.status in ("succeeded", "refunded"):
        return False
    if intent.get("amount") != payment.amount_cents or (
        str(intent.get("currency", "")).lower() != payment.currency
    ):
        log.error(
            "payment %s: the succeeded intent's amount or currency differs from ours; not applied",
            payment.id,
        )
        return False
    paid_by = _paid_by(session, payment, contract)
    if paid_by is not None:
        _refund(session, event_id, payment, contract, paid_by, gateway=gateway, now=now)
        return True
    # A failed (or canceled) payment can still succeed: the payer retried the same intent.
    payment.status = "succeeded"
    payment.succeeded_at = now
    payment.failure_message = None
    contract.payment_status = "paid"
    activated = contract.status == "signed"
    if activated:
        contract.status = "active"
        contract.activated_at = now
    session.flush()
    parties = [contract.developer_id]
    record_event(
        session,
        None,
        "payment.succeeded",
        object_id=payment.id,
        organization_id=contract.studio_id,
        parties=parties,
        data={
            "contract_id": contract.id,
            "event_id": event_id,
            "amount_cents": payment.amount_cents,
            "currency": payment.currency,
            "contract_payment_status": "paid",
        },
        at=now,
    )
    record_payout(session, payment, contract, fee_bps=fee_bps, now=now)
    if activated:
        record_event(
            session,
            None,
            "contract.activated",
            object_id=contract.id,
            organization_id=contract.studio_id,
            parties=parties,
            data={"payment_id": payment.id},
            at=now,
        )
        publish_contract(session, "contract.activated", contract, now)
    elif contract.status != "active":
        log.warning(
            "payment %s succeeded for contract %s, which is %s: refund by hand",
            payment.id,
            contract.id,
            contract.status,
        )
    return True


def _paid_by(session: Session, payment: Payment, contract: Contract) -> str | None:
    """The other payment that already paid this contract, if any (the contract is locked)."""
    other = session.scalars(
        select(Payment.id)
        .where(
            Payment.contract_id == contract.id,
            Payment.status == "succeeded",
            Payment.id != payment.id,
        )
        .limit(1)
    ).first()
    if other is None and contract.payment_status in ("paid", "refunded"):
        return "the contract's payment"  # paid outside this table: never twice either
    return other


def _refund(
    session: Session,
    event_id: str,
    payment: Payment,
    contract: Contract,
    paid_by: str,
    *,
    gateway: PaymentGateway,
    now: datetime,
) -> None:
    """Give back a second success in full at once: a contract is paid by one payment only.

    Stripe failing makes the webhook a 502: the event is not recorded, and Stripe sends it
    again. The idempotency key keeps its retries (and ours) to one refund.
    """
    refund_id = gateway.refund_intent(
        payment.intent_id,
        metadata={"contract_id": contract.id, "payment_id": payment.id, "paid_by": paid_by},
        idempotency_key=f"clearcut-refund-{payment.id}",
    )
    log.warning(
        "payment %s succeeded for contract %s, already paid by %s: refunded (%s)",
        payment.id,
        contract.id,
        paid_by,
        refund_id,
    )
    payment.status = "refunded"
    payment.succeeded_at = now
    payment.refunded_at = now
    payment.refund_id = refund_id
    payment.failure_message = None
    session.flush()
    record_event(
        session,
        None,
        "payment.refunded",
        object_id=payment.id,
        organization_id=contract.studio_id,
        parties=[contract.developer_id],
        data={
            "contract_id": contract.id,
            "event_id": event_id,
            "amount_cents": payment.amount_cents,
            "currency": payment.currency,
            "refund_id": refund_id,
            "reason": "the contract was already paid",
            "paid_by": paid_by,
            "contract_payment_status": contract.payment_status,
        },
        at=now,
    )


def _payment_failed(
    session: Session, event_id: str, intent: dict[str, Any], *, now: datetime
) -> bool:
    found = _locked(session, intent)
    if found is None:
        return False
    payment, contract = found
    # Only an open payment fails; a late failure after a success (events arrive in any
    # order) or a second failure changes nothing.
    if payment.status != "pending":
        return False
    error = intent.get("last_payment_error") or {}
    payment.status = "failed"
    payment.failed_at = now
    payment.failure_message = str(error.get("message") or "the payment failed")[:1000]
    # This was the contract's only open payment (uq_payments_open_contract_id).
    if contract.payment_status == "pending":
        contract.payment_status = "unpaid"
    session.flush()
    record_event(
        session,
        None,
        "payment.failed",
        object_id=payment.id,
        organization_id=contract.studio_id,
        parties=[contract.developer_id],
        data={
            "contract_id": contract.id,
            "event_id": event_id,
            "code": error.get("code"),
            "contract_payment_status": contract.payment_status,
        },
        at=now,
    )
    return True
