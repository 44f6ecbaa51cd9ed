"""The delivery log: one row per download granted."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.core.db import Base, created_at_column, id_column


class Download(Base):
    """A presigned download handed to a licensee: who got which asset, when, for how long.

    The URL itself is never stored: it is a bearer credential, shown once. Asset and title ids
    are plain columns, not foreign keys, so the record outlives a studio deleting the title.
    """

    __tablename__ = "downloads"
    __table_args__ = (
        CheckConstraint("byte_size >= 0", name="byte_size"),
        Index("ix_downloads_contract_id_id", "contract_id", "id"),
    )

    id: Mapped[str] = id_column("dl")
    contract_id: Mapped[str] = mapped_column(
        ForeignKey("contracts.id", ondelete="RESTRICT"), nullable=False
    )
    asset_id: Mapped[str] = mapped_column(String(40), nullable=False)
    title_id: Mapped[str] = mapped_column(String(40), nullable=False)
    organization_id: Mapped[str] = mapped_column(String(40), nullable=False)
    user_id: Mapped[str] = mapped_column(String(40), nullable=False)
    byte_size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = created_at_column()
    expires_at: Mapped[datetime] = mapped_column(nullable=False)
