"""Titles, assets, rights grants, talent, credits, consents and import reports."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.core.db import Base, created_at_column, id_column, utcnow

TITLE_KINDS = ("film", "series", "season", "episode")
VISIBILITIES = ("private", "anonymized", "listed")
ASSET_KINDS = ("video", "audio", "subtitle", "script", "image")
ASSET_STATUSES = ("pending", "ready")
CREDIT_ROLES = ("cast", "voice", "crew")
# Which kinds a child may be of, by the parent's kind (a film has no children).
CHILD_KINDS = {"series": ("season", "episode"), "season": ("episode",)}


class Title(Base):
    __tablename__ = "titles"
    __table_args__ = (
        UniqueConstraint("studio_id", "external_id"),
        CheckConstraint("kind IN ('film', 'series', 'season', 'episode')", name="kind"),
        CheckConstraint("visibility IN ('private', 'anonymized', 'listed')", name="visibility"),
        Index("ix_titles_visibility_id", "visibility", "id"),
        Index("ix_titles_studio_id_id", "studio_id", "id"),
    )

    id: Mapped[str] = id_column("ttl")
    studio_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    )
    external_id: Mapped[str] = mapped_column(String(200), nullable=False)
    eidr_id: Mapped[str | None] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(10), nullable=False)
    parent_id: Mapped[str | None] = mapped_column(
        ForeignKey("titles.id", ondelete="CASCADE"), index=True
    )
    # The top of the hierarchy (a series for seasons and episodes); ancestors are always
    # within {parent_id, root_id}, since the hierarchy is at most three levels deep.
    root_id: Mapped[str | None] = mapped_column(String(40), index=True)
    name: Mapped[str] = mapped_column(String(500), nullable=False)
    original_language: Mapped[str | None] = mapped_column(String(35), index=True)
    genres: Mapped[list[str]] = mapped_column(nullable=False, default=list)
    release_year: Mapped[int | None] = mapped_column(Integer, index=True)
    synopsis: Mapped[str | None] = mapped_column(Text)
    visibility: Mapped[str] = mapped_column(String(12), nullable=False, default="private")
    # Derived and maintained incrementally when assets become ready or go away:
    # own runtime = the longest ready video rendition; content = own + every descendant's.
    own_seconds: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    content_seconds: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    max_height: Mapped[int | None] = mapped_column(Integer, index=True)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow, onupdate=utcnow)

    @property
    def content_hours(self) -> float:
        return round(self.content_seconds / 3600.0, 4)

    @property
    def ancestor_ids(self) -> list[str]:
        return [i for i in dict.fromkeys((self.parent_id, self.root_id)) if i]


class TitleGenre(Base):
    """One row per (title, genre): portable, indexable genre filtering."""

    __tablename__ = "title_genres"
    __table_args__ = (Index("ix_title_genres_genre_title_id", "genre", "title_id"),)

    title_id: Mapped[str] = mapped_column(
        ForeignKey("titles.id", ondelete="CASCADE"), primary_key=True
    )
    genre: Mapped[str] = mapped_column(String(50), primary_key=True)


class Asset(Base):
    __tablename__ = "assets"
    __table_args__ = (
        UniqueConstraint("studio_id", "external_id"),
        UniqueConstraint("storage_key"),
        CheckConstraint("kind IN ('video', 'audio', 'subtitle', 'script', 'image')", name="kind"),
        CheckConstraint("status IN ('pending', 'ready')", name="status"),
        CheckConstraint("byte_size >= 0", name="byte_size"),
        Index("ix_assets_title_id_id", "title_id", "id"),
    )

    id: Mapped[str] = id_column("ast")
    title_id: Mapped[str] = mapped_column(
        ForeignKey("titles.id", ondelete="CASCADE"), nullable=False
    )
    studio_id: Mapped[str] = mapped_column(String(40), nullable=False)
    external_id: Mapped[str | None] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(10), nullable=False)
    storage_key: Mapped[str] = mapped_column(String(1024), nullable=False)
    byte_size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    fps: Mapped[float | None] = mapped_column(Float)
    codec: Mapped[str | None] = mapped_column(String(50))
    language: Mapped[str | None] = mapped_column(String(35))
    status: Mapped[str] = mapped_column(String(10), nullable=False, default="pending")
    created_at: Mapped[datetime] = created_at_column()
    ready_at: Mapped[datetime | None] = mapped_column()
    # The store's multipart upload, for an asset past one PUT's 5 GiB (migration 0013).
    upload_id: Mapped[str | None] = mapped_column(String(1024))
    # When the stored bytes were last found to have the declared SHA-256: at completion when the
    # store reports the object's SHA-256; for an object made of parts (the store keeps only its
    # parts' checksums) once `catalog.checksums` has read it back (migration 0014).
    sha256_verified_at: Mapped[datetime | None] = mapped_column()


class RightsGrant(Base):
    __tablename__ = "rights_grants"
    __table_args__ = (
        UniqueConstraint("studio_id", "external_id"),
        CheckConstraint('"end" >= start', name="window"),
    )

    id: Mapped[str] = id_column("rgt")
    title_id: Mapped[str] = mapped_column(
        ForeignKey("titles.id", ondelete="CASCADE"), index=True, nullable=False
    )
    studio_id: Mapped[str] = mapped_column(String(40), nullable=False)
    external_id: Mapped[str | None] = mapped_column(String(200))
    territories: Mapped[list[str]] = mapped_column(nullable=False)
    start: Mapped[date] = mapped_column(Date, nullable=False)
    end: Mapped[date] = mapped_column(Date, nullable=False)
    permitted_uses: Mapped[list[str]] = mapped_column(nullable=False)
    exclusive_available: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at: Mapped[datetime] = created_at_column()


class RightsTerm(Base):
    """A grant's territories × uses, one row each: what search filters and joins on."""

    __tablename__ = "rights_terms"
    # Search probes a title's terms for a use, with or without a territory (migration 0012).
    __table_args__ = (
        Index("ix_rights_terms_use_title_id_territory", "use", "title_id", "territory"),
    )

    grant_id: Mapped[str] = mapped_column(
        ForeignKey("rights_grants.id", ondelete="CASCADE"), primary_key=True
    )
    territory: Mapped[str] = mapped_column(String(2), primary_key=True)
    use: Mapped[str] = mapped_column(String(30), primary_key=True)
    title_id: Mapped[str] = mapped_column(String(40), nullable=False)


class TitleCoverage(Base):
    """What a title may be licensed for, through its own grants and its ancestors': one row per
    use × territory, with the last day a grant covers it (`WW` stays `WW`).

    Derived from `rights_grants` and `rights_terms` by `catalog.rights.refresh_title_coverage`,
    which every writer of grants and titles calls. Search asks it whether a title is licensable
    with one probe of this key, instead of joining every term of the title's ancestors
    (docs/search.md).
    """

    __tablename__ = "title_coverage"

    title_id: Mapped[str] = mapped_column(
        ForeignKey("titles.id", ondelete="CASCADE"), primary_key=True
    )
    use: Mapped[str] = mapped_column(String(30), primary_key=True)
    territory: Mapped[str] = mapped_column(String(2), primary_key=True)
    ends_on: Mapped[date] = mapped_column(Date, nullable=False)


class Talent(Base):
    __tablename__ = "talent"
    __table_args__ = (UniqueConstraint("studio_id", "external_id"),)

    id: Mapped[str] = id_column("tal")
    studio_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True, nullable=False
    )
    external_id: Mapped[str | None] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(300), nullable=False)
    external_ids: Mapped[dict[str, Any]] = mapped_column(nullable=False, default=dict)
    created_at: Mapped[datetime] = created_at_column()


class Credit(Base):
    __tablename__ = "credits"
    __table_args__ = (
        UniqueConstraint("title_id", "talent_id", "role"),
        CheckConstraint("role IN ('cast', 'voice', 'crew')", name="role"),
    )

    id: Mapped[str] = id_column("crd")
    # Looked up by title through the unique constraint's leading column (migration 0011).
    title_id: Mapped[str] = mapped_column(
        ForeignKey("titles.id", ondelete="CASCADE"), nullable=False
    )
    talent_id: Mapped[str] = mapped_column(
        ForeignKey("talent.id", ondelete="CASCADE"), index=True, nullable=False
    )
    role: Mapped[str] = mapped_column(String(10), nullable=False)
    created_at: Mapped[datetime] = created_at_column()


class Consent(Base):
    __tablename__ = "consents"
    __table_args__ = (
        UniqueConstraint("studio_id", "external_id"),
        CheckConstraint('"end" >= start', name="window"),
    )

    id: Mapped[str] = id_column("cns")
    talent_id: Mapped[str] = mapped_column(
        ForeignKey("talent.id", ondelete="CASCADE"), index=True, nullable=False
    )
    studio_id: Mapped[str] = mapped_column(String(40), nullable=False)
    external_id: Mapped[str | None] = mapped_column(String(200))
    attributes: Mapped[list[str]] = mapped_column(nullable=False)
    permitted_uses: Mapped[list[str]] = mapped_column(nullable=False)
    territories: Mapped[list[str]] = mapped_column(nullable=False)
    start: Mapped[date] = mapped_column(Date, nullable=False)
    end: Mapped[date] = mapped_column(Date, nullable=False)
    created_at: Mapped[datetime] = created_at_column()


class ImportJob(Base):
    """The report of one bulk import, kept whether it succeeded or failed."""

    __tablename__ = "catalog_imports"
    __table_args__ = (
        CheckConstraint("status IN ('queued', 'running', 'succeeded', 'failed')", name="status"),
    )

    id: Mapped[str] = id_column("imp")
    studio_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True, nullable=False
    )
    created_by: Mapped[str | None] = mapped_column(String(40))
    format: Mapped[str] = mapped_column(String(10), nullable=False)
    file_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    status: Mapped[str] = mapped_column(String(10), nullable=False)
    rows_total: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    rows_ok: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # Counts of created / updated / unchanged records by type, and the first errors.
    summary: Mapped[dict[str, Any]] = mapped_column(nullable=False, default=dict)
    errors: Mapped[list[Any]] = mapped_column(nullable=False, default=list)
    created_at: Mapped[datetime] = created_at_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    # An import run by a worker (a large file over HTTP): where its file waits in the store.
    file_key: Mapped[str | None] = mapped_column(String(1024))
