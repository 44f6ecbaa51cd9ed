"""The payout ledger: what each succeeded payment owes its studio, and the marketplace's fee."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from contracts.models import Contract
from marketplace.accounts.principal import Principal
from marketplace.audit.service import record_event
from marketplace.billing.models import Payment, PayoutEntry
from marketplace.core.errors import Forbidden

BPS_DENOMINATOR = 10_000


@dataclass(frozen=True)
class CurrencyTotals:
    currency: str
    amount_cents: int
    studio_amount_cents: int
    fee_cents: int


def split_amount(amount_cents: int, fee_bps: int) -> tuple[int, int]:
    """Return (studio_amount_cents, fee_cents); the fee rounds down, so the studio never loses."""
    if amount_cents < 0:
        raise ValueError("amount_cents must not be negative")
    if not 0 <= fee_bps <= BPS_DENOMINATOR:
        raise ValueError("fee_bps must be between 0 and 10000")
    # Integer maths only: a float fee would drift by a cent on some amounts.
    fee_cents = amount_cents * fee_bps // BPS_DENOMINATOR
    return amount_cents - fee_cents, fee_cents


def record_payout(
    session: Session, payment: Payment, contract: Contract, *, fee_bps: int, now: datetime
) -> PayoutEntry:
    """Write the ledger entry of a succeeded payment (once: payment_id is unique)."""
    studio_amount_cents, fee_cents = split_amount(payment.amount_cents, fee_bps)
    entry = PayoutEntry(
        contract_id=contract.id,
        studio_id=contract.studio_id,
        payment_id=payment.id,
        amount_cents=payment.amount_cents,
        studio_amount_cents=studio_amount_cents,
        fee_cents=fee_cents,
        fee_bps=fee_bps,
        currency=payment.currency,
        created_at=now,
    )
    session.add(entry)
    session.flush()
    record_event(
        session,
        None,
        "payout.recorded",
        object_id=entry.id,
        organization_id=contract.studio_id,
        data={
            "contract_id": contract.id,
            "payment_id": payment.id,
            "amount_cents": entry.amount_cents,
            "studio_amount_cents": studio_amount_cents,
            "fee_cents": fee_cents,
            "fee_bps": fee_bps,
            "currency": entry.currency,
        },
        at=now,
    )
    return entry


def visible_payouts(
    viewer: Principal,
    *,
    studio_id: str | None = None,
    contract_id: str | None = None,
    currency: str | None = None,
) -> Select[PayoutEntry]:
    """Operators read the whole ledger, a studio its own entries; developers have none (403)."""
    if viewer.is_developer:
        raise Forbidden("the payout ledger is kept for studios and operators")
    stmt = select(PayoutEntry)
    if not viewer.is_operator:
        stmt = stmt.where(PayoutEntry.studio_id == viewer.organization_id)
    if studio_id is not None:
        stmt = stmt.where(PayoutEntry.studio_id == studio_id)
    if contract_id is not None:
        stmt = stmt.where(PayoutEntry.contract_id == contract_id)
    if currency is not None:
        stmt = stmt.where(PayoutEntry.currency == currency)
    return stmt


def payout_totals(session: Session, stmt: Select[PayoutEntry]) -> list[CurrencyTotals]:
    """Sums per currency over every entry `stmt` selects (all pages, not one)."""
    entries = stmt.subquery()
    rows = session.execute(
        select(
            entries.c.currency,
            func.sum(entries.c.amount_cents),
            func.sum(entries.c.studio_amount_cents),
            func.sum(entries.c.fee_cents),
        )
        .group_by(entries.c.currency)
        .order_by(entries.c.currency)
    )
    # PostgreSQL sums BIGINTs as NUMERIC (Decimal): back to exact ints.
    return [
        CurrencyTotals(cur, int(amount), int(studio), int(fee)) for cur, amount, studio, fee in rows
    ]
