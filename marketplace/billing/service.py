"""Payments: start (or resume) the payment of a signed contract, list a contract's payments.

At most one payment of a contract succeeds. Starting a payment hands back the intent already
opened, even after a failure (the payer retries it with another card), while Stripe can still
take it; any other intent is canceled at Stripe before a new one is created. A success that
still arrives for a contract already paid is refunded (billing.webhooks).
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import NamedTuple

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from contracts.models import Contract
from contracts.service import get_contract
from marketplace.accounts.principal import Principal
from marketplace.audit.service import record_event
from marketplace.billing.gateway import Intent, PaymentGateway
from marketplace.billing.models import Payment
from marketplace.core.db import utcnow
from marketplace.core.errors import Forbidden, InvalidState
from marketplace.core.ids import new_id
from marketplace.core.money import check_chargeable

log = logging.getLogger("marketplace.billing")

# Intents whose money is moving or moved: never canceled, never replaced.
_IN_FLIGHT_INTENT_STATUSES = frozenset({"processing", "succeeded"})
# Intent states from which the client can still pay the intent we handed out.
_PAYABLE_INTENT_STATUSES = frozenset(
    {
        "requires_payment_method",
        "requires_confirmation",
        "requires_action",
        "processing",
        "requires_capture",
        "succeeded",  # paid; the webhook is on its way
    }
)


class PaymentStart(NamedTuple):
    payment: Payment
    client_secret: str
    reused: bool


def idempotency_key_for(payment_id: str) -> str:
    """Stripe's idempotency key for creating this payment's intent (its retries reuse it)."""
    return f"clearcut-payment-{payment_id}"


def start_payment(
    session: Session,
    payer: Principal,
    contract_id: str,
    *,
    gateway: PaymentGateway,
    today: date | None = None,
    now: datetime | None = None,
) -> PaymentStart:
    """Create the PaymentIntent of a signed contract, or hand back the one still open."""
    now = now or utcnow()
    today = today or now.date()
    # The lock serializes payment starts per contract (SQLite: BEGIN IMMEDIATE already does).
    contract = get_contract(session, payer, contract_id, lock=True)
    if not (payer.is_developer and payer.organization_id == contract.developer_id):
        raise Forbidden("only the licensee pays for a contract")
    status = contract.current_status(today)
    if status != "signed":
        raise InvalidState(f"only a signed contract can be paid; this one is {status}")
    if contract.payment_status in ("paid", "refunded"):
        raise InvalidState(f"this contract is already {contract.payment_status}")
    if contract.amount_cents <= 0:
        raise InvalidState("this contract has nothing to pay")
    # Brokering makes no such deal; a guard for contracts made before it refused them.
    check_chargeable(contract.amount_cents, field="amount_cents", what="the contract's price")
    # A failed payment's intent can still be paid at Stripe (the payer retries it with another
    # card), so it stays a candidate: paying a second intent beside it would pay twice.
    candidates = session.scalars(
        select(Payment)
        .where(Payment.contract_id == contract.id, Payment.status.in_(("pending", "failed")))
        .order_by(Payment.created_at.desc(), Payment.id.desc())
    ).all()
    resumed: tuple[Payment, Intent] | None = None
    for candidate in candidates:
        intent = gateway.retrieve_intent(candidate.intent_id)
        if resumed is None and _can_still_pay(candidate, intent):
            resumed = candidate, intent
        else:
            # An older one (left by a version that opened a new intent after a failure), or
            # one that cannot pay this contract: made unpayable before anything else is used.
            _abandon(session, payer, candidate, contract, intent, gateway=gateway, now=now)
    if resumed is not None:
        payment, intent = resumed
        if payment.status == "failed":
            _reopen(session, payer, payment, contract, intent_status=intent.status, now=now)
        return PaymentStart(payment, intent.client_secret, reused=True)
    payment, client_secret = _create(session, payer, contract, gateway, now)
    return PaymentStart(payment, client_secret, reused=False)


def _can_still_pay(payment: Payment, intent: Intent) -> bool:
    return (
        intent.status in _PAYABLE_INTENT_STATUSES
        and intent.amount == payment.amount_cents
        and intent.currency == payment.currency
    )


def _create(
    session: Session, payer: Principal, contract: Contract, gateway: PaymentGateway, now: datetime
) -> tuple[Payment, str]:
    payment_id = new_id("pay")
    intent = gateway.create_intent(
        amount_cents=contract.amount_cents,
        currency=contract.currency,
        metadata={"contract_id": contract.id, "payment_id": payment_id},
        idempotency_key=idempotency_key_for(payment_id),
    )
    payment = Payment(
        id=payment_id,
        contract_id=contract.id,
        amount_cents=contract.amount_cents,
        currency=contract.currency,
        status="pending",
        intent_id=intent.id,
        created_by=payer.user_id,
        created_at=now,
    )
    session.add(payment)
    contract.payment_status = "pending"
    session.flush()
    record_event(
        session,
        payer,
        "payment.created",
        object_id=payment.id,
        organization_id=contract.studio_id,
        parties=[contract.developer_id],
        data={
            "contract_id": contract.id,
            "amount_cents": payment.amount_cents,
            "currency": payment.currency,
            "intent_id": intent.id,
            "contract_payment_status": "pending",
        },
        at=now,
    )
    # The client secret is not stored: it goes to the payer only, and is re-read from Stripe.
    return payment, intent.client_secret


def _reopen(
    session: Session,
    payer: Principal,
    payment: Payment,
    contract: Contract,
    *,
    intent_status: str,
    now: datetime,
) -> None:
    """Open a failed payment again: its intent is the one to retry (another card)."""
    payment.status = "pending"
    contract.payment_status = "pending"
    session.flush()
    record_event(
        session,
        payer,
        "payment.reopened",
        object_id=payment.id,
        organization_id=contract.studio_id,
        parties=[contract.developer_id],
        data={
            "contract_id": contract.id,
            "intent_status": intent_status,
            "contract_payment_status": "pending",
        },
        at=now,
    )


def _abandon(
    session: Session,
    payer: Principal,
    payment: Payment,
    contract: Contract,
    intent: Intent,
    *,
    gateway: PaymentGateway,
    now: datetime,
) -> None:
    """Close a payment that will not be used: its intent canceled at Stripe, so never paid."""
    if intent.status in _IN_FLIGHT_INTENT_STATUSES:
        # Too late to cancel: the webhook is on its way, and refunds it if it pays twice.
        log.warning("payment %s: intent %s is %s, left to its webhook", *_ids(payment, intent))
        return
    canceled_at_stripe = intent.status != "canceled"
    if canceled_at_stripe:
        gateway.cancel_intent(intent.id, idempotency_key=f"clearcut-cancel-{payment.id}")
    was_pending = payment.status == "pending"
    payment.status = "canceled"
    payment.failed_at = payment.failed_at or now
    payment.failure_message = f"the payment intent was {intent.status}; canceled"
    if was_pending and contract.payment_status == "pending":
        contract.payment_status = "unpaid"
    session.flush()
    record_event(
        session,
        payer,
        "payment.canceled",
        object_id=payment.id,
        organization_id=contract.studio_id,
        parties=[contract.developer_id],
        data={
            "contract_id": contract.id,
            "intent_status": intent.status,
            "canceled_at_stripe": canceled_at_stripe,
        },
        at=now,
    )


def _ids(payment: Payment, intent: Intent) -> tuple[str, str, str]:
    return payment.id, intent.id, intent.status


def payments_stmt(session: Session, viewer: Principal, contract_id: str) -> Select[Payment]:
    """A contract's payments, for its parties and operators (404 for anyone else)."""
    contract = get_contract(session, viewer, contract_id)
    return select(Payment).where(Payment.contract_id == contract.id)
