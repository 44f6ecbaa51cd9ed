"""Audit events, the organizations each concerns, the sealed batches and the sealer's lock."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.core.db import Base, id_column

GENESIS_HASH = "0" * 64


class AuditEvent(Base):
    """One audited change, written in the change's own transaction with no lock shared by all
    writers. Its place in the log (`seq`, `prev_hash`, `hash`, `batch_id`, `mac`) is null until
    the sealing job (marketplace.audit.sealing) orders it into a signed batch."""

    __tablename__ = "audit_events"
    __table_args__ = (
        # The sealer's only question: which committed events have no place yet, oldest first.
        Index(
            "ix_audit_events_unsealed",
            "id",
            postgresql_where="seq IS NULL",
            sqlite_where="seq IS NULL",
        ),
    )

    id: Mapped[str] = id_column("evt")
    seq: Mapped[int | None] = mapped_column(Integer, unique=True)
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
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("audit_batches.id"), index=True)
    # HMAC-SHA256 of `hash` under a key derived from the signing key (not in the database):
    # after a rewrite that recomputed every hash, it names the first event changed.
    mac: Mapped[str | None] = mapped_column(String(64))


class AuditEventParty(Base):
    """An organization that may read an event (a contract's event concerns both parties)."""

    __tablename__ = "audit_event_parties"

    event_id: Mapped[str] = mapped_column(
        ForeignKey("audit_events.id", ondelete="CASCADE"), primary_key=True
    )
    organization_id: Mapped[str] = mapped_column(String(40), primary_key=True, index=True)


class AuditBatch(Base):
    """One sealed batch: a Merkle tree over its events' hashes, linked to the previous batch's
    head and signed with the Ed25519 signing key. Published at GET /audit/heads."""

    __tablename__ = "audit_batches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    first_seq: Mapped[int] = mapped_column(Integer, nullable=False)
    # The seq of its last event: the marketplace-wide count of sealed events.
    tree_size: Mapped[int] = mapped_column(Integer, nullable=False)
    merkle_root: Mapped[str] = mapped_column(String(64), nullable=False)
    prev_head: Mapped[str] = mapped_column(String(64), nullable=False)
    sealed_at: Mapped[datetime] = mapped_column(nullable=False)
    key_id: Mapped[str] = mapped_column(String(64), nullable=False)
    head_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    signature: Mapped[str] = mapped_column(String(128), nullable=False)


class AuditChainHead(Base):
    """One row: the last sealed seq and event hash. Only the sealer locks it (FOR UPDATE), so
    one sealer runs at a time; appenders never touch it."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    hash: Mapped[str] = mapped_column(String(64), nullable=False)
