"""Audit events, the organizations each concerns, and the head of the hash chain."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.core.db import Base, id_column

GENESIS_HASH = "0" * 64


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[str] = id_column("evt")
    seq: Mapped[int] = mapped_column(Integer, unique=True, nullable=False)
    at: Mapped[datetime] = mapped_column(nullable=False)
    actor_user_id: Mapped[str | None] = mapped_column(String(40))
    actor_organization_id: Mapped[str | None] = mapped_column(String(40))
    organization_id: Mapped[str | None] = mapped_column(String(40), index=True)
    action: Mapped[str] = mapped_column(String(100), nullable=False)
    object_id: Mapped[str | None] = mapped_column(String(40), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(nullable=False)
    # Random, hashed with the event, never shown to tenants: without it a tenant could confirm a
    # guess at a field hidden from it (who is behind an anonymous request) by recomputing `hash`.
    salt: Mapped[str] = mapped_column(String(32), nullable=False)
    prev_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    hash: Mapped[str] = mapped_column(String(64), nullable=False)


class AuditEventParty(Base):
    """An organization that may read an event (a contract's event concerns both parties)."""

    __tablename__ = "audit_event_parties"

    event_id: Mapped[str] = mapped_column(
        ForeignKey("audit_events.id", ondelete="CASCADE"), primary_key=True
    )
    organization_id: Mapped[str] = mapped_column(String(40), primary_key=True, index=True)


class AuditChainHead(Base):
    """One row: the last seq and hash. Locking it serializes appends; it also anchors the tail."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    hash: Mapped[str] = mapped_column(String(64), nullable=False)
