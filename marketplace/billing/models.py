"""Payments, the payout ledger, and the Stripe events already processed."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.core.db import Base, created_at_column, id_column

PAYMENT_STATUSES = ("pending", "succeeded", "failed", "canceled", "refunded")
WEBHOOK_OUTCOMES = ("processed", "ignored")

# At most one open payment per contract, whatever the races: the database refuses a second.
_OPEN = text("status = 'pending'")
# At most one succeeded payment per contract: another success is refunded (`refunded`).
_SUCCEEDED = text("status = 'succeeded'")


class Payment(Base):
    """One Stripe PaymentIntent for one contract; `pending` until the webhook says how it went.

    `refunded`: the intent succeeded for a contract another payment had already paid, and we
    refunded it in full at once (`refund_id`); it pays nobody.
    """

    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'succeeded', 'failed', 'canceled', 'refunded')", name="status"
        ),
        CheckConstraint("amount_cents > 0", name="amount_positive"),
        Index(
            "uq_payments_open_contract_id",
            "contract_id",
            unique=True,
            sqlite_where=_OPEN,
            postgresql_where=_OPEN,
        ),
        Index(
            "uq_payments_succeeded_contract_id",
            "contract_id",
            unique=True,
            sqlite_where=_SUCCEEDED,
            postgresql_where=_SUCCEEDED,
        ),
    )

    id: Mapped[str] = id_column("pay")
    contract_id: Mapped[str] = mapped_column(
        ForeignKey("contracts.id", ondelete="RESTRICT"), index=True, nullable=False
    )
    amount_cents: Mapped[int] = mapped_column(BigInteger, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    status: Mapped[str] = mapped_column(String(10), nullable=False, default="pending")
    intent_id: Mapped[str] = mapped_column(String(255), unique=True, nullable=False)
    created_by: Mapped[str] = mapped_column(String(40), nullable=False)
    created_at: Mapped[datetime] = created_at_column()
    succeeded_at: Mapped[datetime | None] = mapped_column()
    failed_at: Mapped[datetime | None] = mapped_column()
    failure_message: Mapped[str | None] = mapped_column(Text)
    refunded_at: Mapped[datetime | None] = mapped_column()
    refund_id: Mapped[str | None] = mapped_column(String(255))


class PayoutEntry(Base):
    """What a succeeded payment owes the studio, and the marketplace's fee: one per payment."""

    __tablename__ = "payout_entries"
    __table_args__ = (
        CheckConstraint("studio_amount_cents + fee_cents = amount_cents", name="split"),
        CheckConstraint("fee_cents >= 0 AND studio_amount_cents >= 0", name="non_negative"),
        CheckConstraint("fee_bps >= 0 AND fee_bps <= 10000", name="fee_bps"),
        Index("ix_payout_entries_studio_id_id", "studio_id", "id"),
    )

    id: Mapped[str] = id_column("po")
    contract_id: Mapped[str] = mapped_column(
        ForeignKey("contracts.id", ondelete="RESTRICT"), index=True, nullable=False
    )
    studio_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="RESTRICT"), nullable=False
    )
    payment_id: Mapped[str] = mapped_column(
        ForeignKey("payments.id", ondelete="RESTRICT"), unique=True, nullable=False
    )
    amount_cents: Mapped[int] = mapped_column(BigInteger, nullable=False)
    studio_amount_cents: Mapped[int] = mapped_column(BigInteger, nullable=False)
    fee_cents: Mapped[int] = mapped_column(BigInteger, nullable=False)
    fee_bps: Mapped[int] = mapped_column(Integer, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    created_at: Mapped[datetime] = created_at_column()


class WebhookEvent(Base):
    """A Stripe event id we have handled: the unique constraint makes a replay a no-op."""

    __tablename__ = "webhook_events"
    __table_args__ = (CheckConstraint("outcome IN ('processed', 'ignored')", name="outcome"),)

    id: Mapped[str] = id_column("whk")
    event_id: Mapped[str] = mapped_column(String(255), unique=True, nullable=False)
    type: Mapped[str] = mapped_column(String(100), nullable=False)
    outcome: Mapped[str] = mapped_column(String(10), nullable=False, default="processed")
    received_at: Mapped[datetime] = created_at_column()
