"""Webhook endpoints, the events rendered for each receiving organization, and deliveries."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.core.db import Base, created_at_column, id_column

DELIVERY_STATUSES = ("pending", "succeeded", "failed", "skipped")


class WebhookEndpoint(Base):
    """Where an organization wants events posted, and the secret it verifies them with."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = id_column("whe")
    organization_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True, nullable=False
    )
    url: Mapped[str] = mapped_column(String(2000), nullable=False)
    event_types: Mapped[list[str]] = mapped_column(nullable=False, default=list)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    description: Mapped[str | None] = mapped_column(String(500))
    # Fernet tokens of `whsec_…` secrets (WEBHOOK_SECRET_KEY); never returned after creation.
    secret_encrypted: Mapped[str] = mapped_column(Text, nullable=False)
    # The secret before the last rotation: still signed with until it expires.
    previous_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column()
    consecutive_failures: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    disabled_reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime | None] = mapped_column()


class WebhookMessage(Base):
    """One event as one organization receives it: its body, rendered once for that viewer and
    sent byte for byte on every attempt (its id is the `webhook-id` header). The table is not
    `webhook_events`: that name holds the Stripe events we receive."""

    __tablename__ = "webhook_messages"

    id: Mapped[str] = id_column("evt")
    organization_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True, nullable=False
    )
    type: Mapped[str] = mapped_column(String(80), nullable=False)
    object_id: Mapped[str | None] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = created_at_column()


class WebhookDelivery(Base):
    """One message to one endpoint: its attempts and their outcome."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'succeeded', 'failed', 'skipped')", name="status"),
        UniqueConstraint("message_id", "endpoint_id"),
        Index("ix_webhook_deliveries_endpoint_id_id", "endpoint_id", "id"),
    )

    id: Mapped[str] = id_column("whd")
    message_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_messages.id", ondelete="CASCADE"), nullable=False
    )
    endpoint_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False
    )
    status: Mapped[str] = mapped_column(String(10), nullable=False, default="pending")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    response_status: Mapped[int | None] = mapped_column(Integer)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    last_attempt_at: Mapped[datetime | None] = mapped_column()
    delivered_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = created_at_column()
