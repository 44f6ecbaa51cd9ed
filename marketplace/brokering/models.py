"""License requests from developers, offers from studios (or operators), and messages."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.core.db import Base, created_at_column, id_column

REQUEST_STATUSES = ("open", "closed")
OFFER_STATUSES = ("open", "accepted", "rejected", "withdrawn", "countered")
PRICING_MODELS = ("flat", "per_hour", "per_gb")
SIDES = ("studio", "developer")


class LicenseRequest(Base):
    __tablename__ = "license_requests"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'closed')", name="status"),
        CheckConstraint('"end" >= start', name="window"),
        Index("ix_license_requests_developer_id_id", "developer_id", "id"),
    )

    id: Mapped[str] = id_column("req")
    developer_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    )
    created_by: Mapped[str] = mapped_column(String(40), nullable=False)
    title_ids: Mapped[list[str]] = mapped_column(nullable=False, default=list)
    criteria: Mapped[dict[str, Any]] = mapped_column(nullable=False, default=dict)
    uses: Mapped[list[str]] = mapped_column(nullable=False)
    territories: Mapped[list[str]] = mapped_column(nullable=False)
    start: Mapped[date] = mapped_column(Date, nullable=False)
    end: Mapped[date] = mapped_column(Date, nullable=False)
    exclusive: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    budget_cents: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    message: Mapped[str | None] = mapped_column(Text)
    anonymous: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    status: Mapped[str] = mapped_column(String(10), nullable=False, default="open")
    created_at: Mapped[datetime] = created_at_column()
    closed_at: Mapped[datetime | None] = mapped_column()


class RequestStudio(Base):
    """A studio that owns a title a request names: such a request reaches these studios (and
    operators) only. A request by criteria alone has none and reaches every studio."""

    __tablename__ = "license_request_studios"
    __table_args__ = (
        Index("ix_license_request_studios_studio_id_request_id", "studio_id", "request_id"),
    )

    request_id: Mapped[str] = mapped_column(
        ForeignKey("license_requests.id", ondelete="CASCADE"), primary_key=True
    )
    studio_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )


class Offer(Base):
    __tablename__ = "offers"
    __table_args__ = (
        CheckConstraint(
            "status IN ('open', 'accepted', 'rejected', 'withdrawn', 'countered', 'expired')",
            name="status",
        ),
        CheckConstraint("pricing_model IN ('flat', 'per_hour', 'per_gb')", name="pricing_model"),
        CheckConstraint("proposed_by IN ('studio', 'developer')", name="proposed_by"),
        CheckConstraint('"end" >= start', name="window"),
        Index("ix_offers_request_id_id", "request_id", "id"),
        Index("ix_offers_studio_id_id", "studio_id", "id"),
    )

    id: Mapped[str] = id_column("ofr")
    request_id: Mapped[str] = mapped_column(
        ForeignKey("license_requests.id", ondelete="CASCADE"), nullable=False
    )
    studio_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    )
    developer_id: Mapped[str] = mapped_column(String(40), nullable=False)
    # Which party's proposal this is; the other party may accept or reject it.
    proposed_by: Mapped[str] = mapped_column(String(10), nullable=False)
    created_by: Mapped[str] = mapped_column(String(40), nullable=False)
    brokered: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    title_ids: Mapped[list[str]] = mapped_column(nullable=False)
    uses: Mapped[list[str]] = mapped_column(nullable=False)
    territories: Mapped[list[str]] = mapped_column(nullable=False)
    start: Mapped[date] = mapped_column(Date, nullable=False)
    end: Mapped[date] = mapped_column(Date, nullable=False)
    exclusive: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    pricing_model: Mapped[str] = mapped_column(String(10), nullable=False)
    amount_cents: Mapped[int] = mapped_column(BigInteger, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    # The price the contract will carry: amount × hours or × GB for metered models.
    total_cents: Mapped[int] = mapped_column(BigInteger, nullable=False)
    content_seconds: Mapped[float] = mapped_column(nullable=False, default=0.0)
    quota_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    quota_downloads: Mapped[int] = mapped_column(Integer, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(nullable=False)
    status: Mapped[str] = mapped_column(String(10), nullable=False, default="open")
    previous_offer_id: Mapped[str | None] = mapped_column(String(40), index=True)
    message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()
    decided_at: Mapped[datetime | None] = mapped_column()

    def current_status(self, now: datetime) -> str:
        """`expired` is stored by a scheduled job (expire_offers), and derived from the clock
        until it has run."""
        if self.status == "open" and now >= self.expires_at:
            return "expired"
        return self.status


class Message(Base):
    """A message in a request's thread with one studio (or with the marketplace when null)."""

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_request_id_id", "request_id", "id"),)

    id: Mapped[str] = id_column("msg")
    request_id: Mapped[str] = mapped_column(
        ForeignKey("license_requests.id", ondelete="CASCADE"), nullable=False
    )
    studio_id: Mapped[str | None] = mapped_column(String(40))
    author_organization_id: Mapped[str] = mapped_column(String(40), nullable=False)
    author_user_id: Mapped[str] = mapped_column(String(40), nullable=False)
    author_kind: Mapped[str] = mapped_column(String(10), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = created_at_column()
