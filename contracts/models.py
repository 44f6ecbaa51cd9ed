"""Contracts, their titles, signatures and usage attestations."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.core.db import Base, created_at_column, id_column

CONTRACT_STATUSES = ("pending_signatures", "signed", "active", "terminated")
PAYMENT_STATUSES = ("unpaid", "pending", "paid", "refunded")
ATTESTATION_KINDS = ("training_run", "evaluation", "deletion")
SIGNER_ROLES = ("studio", "developer", "operator")


class Contract(Base):
    __tablename__ = "contracts"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending_signatures', 'signed', 'active', 'terminated', 'expired')",
            name="status",
        ),
        CheckConstraint(
            "payment_status IN ('unpaid', 'pending', 'paid', 'refunded')", name="payment_status"
        ),
        CheckConstraint("ends_on >= starts_on", name="term"),
        CheckConstraint("bytes_used <= quota_bytes", name="bytes_quota"),
        CheckConstraint("downloads_used <= quota_downloads", name="downloads_quota"),
        Index("ix_contracts_studio_id_id", "studio_id", "id"),
        Index("ix_contracts_developer_id_id", "developer_id", "id"),
    )

    id: Mapped[str] = id_column("ctr")
    offer_id: Mapped[str] = mapped_column(String(40), unique=True, nullable=False)
    request_id: Mapped[str] = mapped_column(String(40), nullable=False)
    studio_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="RESTRICT"), nullable=False
    )
    developer_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="RESTRICT"), nullable=False
    )
    anonymous: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    terms: Mapped[dict[str, Any]] = mapped_column(nullable=False)
    title_ids: Mapped[list[str]] = mapped_column(nullable=False)
    uses: Mapped[list[str]] = mapped_column(nullable=False)
    territories: Mapped[list[str]] = mapped_column(nullable=False)
    exclusive: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    starts_on: Mapped[date] = mapped_column(Date, nullable=False)
    ends_on: Mapped[date] = mapped_column(Date, nullable=False)
    amount_cents: Mapped[int] = mapped_column(BigInteger, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    content_seconds: Mapped[float] = mapped_column(nullable=False, default=0.0)
    quota_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    quota_downloads: Mapped[int] = mapped_column(Integer, nullable=False)
    bytes_used: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    downloads_used: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    document: Mapped[str] = mapped_column(Text, nullable=False)
    document_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False, default="pending_signatures")
    payment_status: Mapped[str] = mapped_column(String(10), nullable=False, default="unpaid")
    created_at: Mapped[datetime] = created_at_column()
    signed_at: Mapped[datetime | None] = mapped_column()
    activated_at: Mapped[datetime | None] = mapped_column()
    terminated_at: Mapped[datetime | None] = mapped_column()
    termination_reason: Mapped[str | None] = mapped_column(Text)

    def current_status(self, today: date) -> str:
        """`expired` is stored by a scheduled job (expire_contracts), and derived from the end
        date until it has run."""
        if self.status in ("signed", "active") and today > self.ends_on:
            return "expired"
        return self.status


class ContractTitle(Base):
    """One row per contract × title: the exclusivity check and price guidance join on it."""

    __tablename__ = "contract_titles"

    contract_id: Mapped[str] = mapped_column(
        ForeignKey("contracts.id", ondelete="CASCADE"), primary_key=True
    )
    title_id: Mapped[str] = mapped_column(String(40), primary_key=True, index=True)


class Signature(Base):
    __tablename__ = "signatures"
    __table_args__ = (
        UniqueConstraint("contract_id", "role"),
        CheckConstraint("role IN ('studio', 'developer', 'operator')", name="role"),
    )

    id: Mapped[str] = id_column("sig")
    contract_id: Mapped[str] = mapped_column(
        ForeignKey("contracts.id", ondelete="CASCADE"), index=True, nullable=False
    )
    organization_id: Mapped[str] = mapped_column(String(40), nullable=False)
    user_id: Mapped[str] = mapped_column(String(40), nullable=False)
    role: Mapped[str] = mapped_column(String(10), nullable=False)
    document_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    signed_at: Mapped[datetime] = created_at_column()


class Attestation(Base):
    __tablename__ = "attestations"
    __table_args__ = (
        CheckConstraint("kind IN ('training_run', 'evaluation', 'deletion')", name="kind"),
    )

    id: Mapped[str] = id_column("att")
    contract_id: Mapped[str] = mapped_column(
        ForeignKey("contracts.id", ondelete="CASCADE"), index=True, nullable=False
    )
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    model_name: Mapped[str | None] = mapped_column(String(200))
    model_version: Mapped[str | None] = mapped_column(String(100))
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    asset_ids: Mapped[list[str]] = mapped_column(nullable=False, default=list)
    statement: Mapped[str] = mapped_column(Text, nullable=False)
    # The manifest version attested about (migration 0023); NULL before it.
    manifest_sha256: Mapped[str | None] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(40), nullable=False)
    created_at: Mapped[datetime] = created_at_column()


class ContractManifest(Base):
    """A manifest frozen when the contract was signed: what was licensed, byte for byte.

    Version 1 is written by the operator's countersignature (or, for contracts signed before
    migration 0023, by the migration from the assets ready then). Its entries are rows of
    ManifestEntry; `manifest_sha256` is the SHA-256 of their canonical JSON, recomputed and
    checked on every read. The signature is not stored: Ed25519 is deterministic, so signing
    the frozen bytes at read gives the same signature for the same key, and a rotated
    SECRET_KEY leaves every manifest verifiable with the key published now.
    """

    __tablename__ = "contract_manifests"
    __table_args__ = (CheckConstraint("version >= 1", name="version"),)

    contract_id: Mapped[str] = mapped_column(
        ForeignKey("contracts.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    manifest_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    asset_count: Mapped[int] = mapped_column(Integer, nullable=False)
    byte_size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    created_at: Mapped[datetime] = created_at_column()


class ManifestEntry(Base):
    """One asset of a frozen manifest, as it was at signature (not as the catalog is now)."""

    __tablename__ = "manifest_entries"
    __table_args__ = (
        ForeignKeyConstraint(
            ["contract_id", "version"],
            ["contract_manifests.contract_id", "contract_manifests.version"],
            ondelete="CASCADE",
        ),
    )

    contract_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    asset_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    title_id: Mapped[str] = mapped_column(String(40), nullable=False)
    kind: Mapped[str] = mapped_column(String(40), nullable=False)
    byte_size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)

    def as_dict(self) -> dict[str, Any]:
        """The entry as signed: the keys API.md lists for a manifest asset."""
        return {
            "asset_id": self.asset_id,
            "title_id": self.title_id,
            "kind": self.kind,
            "byte_size": self.byte_size,
            "sha256": self.sha256,
        }
