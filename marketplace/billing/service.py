"""Payments: start (or resume) the payment of a signed contract, list a contract's payments."""

from __future__ import annotations

from datetime import date, datetime
from typing import NamedTuple

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from contracts.models import Contract
from contracts.service import get_contract
from marketplace.accounts.principal import Principal
from marketplace.audit.service import record_event
from marketplace.billing.gateway import PaymentGateway
from marketplace.billing.models import Payment
from marketplace.core.db import utcnow
from marketplace.core.errors import Forbidden, InvalidState
from marketplace.core.ids import new_id
from marketplace.core.money import check_chargeable

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
    open_payment = session.scalars(
        select(Payment).where(Payment.contract_id == contract.id, Payment.status == "pending")
    ).one_or_none()
    if open_payment is not None:
        intent = gateway.retrieve_intent(open_payment.intent_id)
        if intent.status in _PAYABLE_INTENT_STATUSES:
            return PaymentStart(open_payment, intent.client_secret, reused=True)
        _cancel(session, payer, open_payment, contract, intent_status=intent.status, now=now)
    payment, client_secret = _create(session, payer, contract, gateway, now)
    return PaymentStart(payment, client_secret, reused=False)


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


def _cancel(
    session: Session,
    payer: Principal,
    payment: Payment,
    contract: Contract,
    *,
    intent_status: str,
    now: datetime,
) -> None:
    """Close an open payment whose intent can no longer be paid (canceled at Stripe)."""
    payment.status = "canceled"
    payment.failed_at = now
    payment.failure_message = f"the payment intent is {intent_status}"
    session.flush()
    record_event(
        session,
        payer,
        "payment.canceled",
        object_id=payment.id,
        organization_id=contract.studio_id,
        parties=[contract.developer_id],
        data={"contract_id": contract.id, "intent_status": intent_status},
        at=now,
    )


def payments_stmt(session: Session, viewer: Principal, contract_id: str) -> Select[Payment]:
    """A contract's payments, for its parties and operators (404 for anyone else)."""
    contract = get_contract(session, viewer, contract_id)
    return select(Payment).where(Payment.contract_id == contract.id)
