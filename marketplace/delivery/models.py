"""The delivery log: one row per download granted."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Index, Integer, String
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
        CheckConstraint(
            "(first_byte IS NULL AND last_byte IS NULL)"
            " OR (0 <= first_byte AND first_byte <= last_byte)",
            name="byte_range",
        ),
        CheckConstraint("0 <= counted_bytes AND counted_bytes <= byte_size", name="counted_bytes"),
        Index("ix_downloads_contract_id_id", "contract_id", "id"),
        Index("ix_downloads_asset_id_id", "asset_id", "id"),  # migration 0015
    )

    id: Mapped[str] = id_column("dl")
    contract_id: Mapped[str] = mapped_column(
        ForeignKey("contracts.id", ondelete="RESTRICT"), nullable=False
    )
    asset_id: Mapped[str] = mapped_column(String(40), nullable=False)
    title_id: Mapped[str] = mapped_column(String(40), nullable=False)
    organization_id: Mapped[str] = mapped_column(String(40), nullable=False)
    user_id: Mapped[str] = mapped_column(String(40), nullable=False)
    byte_size: Mapped[int] = mapped_column(BigInteger, nullable=False)  # the bytes counted
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)  # of the whole asset
    # A download of a part of the asset (first and last byte, inclusive; migration 0015).
    first_byte: Mapped[int | None] = mapped_column(BigInteger)
    last_byte: Mapped[int | None] = mapped_column(BigInteger)
    # What the grant added to the quota (migration 0023): the parts of one asset count one
    # download and each of its bytes once, so a part may count less than it serves.
    counted_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    counted_download: Mapped[bool] = mapped_column(Boolean, nullable=False)
    manifest_version: Mapped[int | None] = mapped_column(Integer)  # NULL before 0023
    created_at: Mapped[datetime] = created_at_column()
    expires_at: Mapped[datetime] = mapped_column(nullable=False)

    @property
    def byte_range(self) -> dict[str, int] | None:
        """The part of the asset granted, as the API shows it; None for the whole asset."""
        if self.first_byte is None or self.last_byte is None:
            return None
        return {"first_byte": self.first_byte, "last_byte": self.last_byte}
