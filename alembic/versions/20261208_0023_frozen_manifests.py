"""contract_manifests, manifest_entries: manifests frozen at signature; counted grants

A contract's manifest was recomputed on every read from its titles' ready assets, so it
drifted as a studio added or replaced files. It is now written when the contract is signed
(version 1) and read from here. Contracts signed before this revision get version 1 frozen
from the assets ready now, the manifest their licensee could read until today.

downloads.counted_bytes, counted_download: what a grant added to the quota. Parts of one asset
(ranged grants) count one download and each byte once, so a grant may count fewer bytes than
it serves (backfilled: every grant before counted its bytes and one download).
downloads.manifest_version, attestations.manifest_sha256: the manifest version they name.

Numbered 0023 (0022 is taken on another branch); it revises 0021 here, and is re-pointed at
0022 when both merge.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-08 10:00:00.000000
"""

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "contract_manifests",
        sa.Column("contract_id", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("manifest_sha256", sa.String(length=64), nullable=False),
        sa.Column("asset_count", sa.Integer(), nullable=False),
        sa.Column("byte_size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("version >= 1", name=op.f("ck_contract_manifests_version")),
        sa.ForeignKeyConstraint(
            ["contract_id"],
            ["contracts.id"],
            name=op.f("fk_contract_manifests_contract_id_contracts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("contract_id", "version", name=op.f("pk_contract_manifests")),
    )
    op.create_table(
        "manifest_entries",
        sa.Column("contract_id", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("asset_id", sa.String(length=40), nullable=False),
        sa.Column("title_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("byte_size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["contract_id", "version"],
            ["contract_manifests.contract_id", "contract_manifests.version"],
            name=op.f("fk_manifest_entries_contract_id_contract_manifests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "contract_id", "version", "asset_id", name=op.f("pk_manifest_entries")
        ),
    )
    with op.batch_alter_table("downloads") as batch:
        batch.add_column(sa.Column("counted_bytes", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("counted_download", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("manifest_version", sa.Integer(), nullable=True))
    op.execute("UPDATE downloads SET counted_bytes = byte_size, counted_download = true")
    with op.batch_alter_table("downloads") as batch:
        batch.alter_column("counted_bytes", existing_type=sa.BigInteger(), nullable=False)
        batch.alter_column("counted_download", existing_type=sa.Boolean(), nullable=False)
        batch.create_check_constraint(
            op.f("ck_downloads_counted_bytes"), "0 <= counted_bytes AND counted_bytes <= byte_size"
        )
    with op.batch_alter_table("attestations") as batch:
        batch.add_column(sa.Column("manifest_sha256", sa.String(length=64), nullable=True))
    _freeze_signed_contracts()


def _freeze_signed_contracts() -> None:
    """Version 1 for every contract already signed, as the manifest route computed it."""
    bind = op.get_bind()
    contracts = bind.execute(
        sa.text("SELECT id, studio_id FROM contracts WHERE signed_at IS NOT NULL ORDER BY id")
    ).all()
    # Typed, so each dialect binds the datetime as it stores it (SQLite: naive UTC text).
    manifests = sa.table(
        "contract_manifests",
        sa.column("contract_id", sa.String()),
        sa.column("version", sa.Integer()),
        sa.column("manifest_sha256", sa.String()),
        sa.column("asset_count", sa.Integer()),
        sa.column("byte_size", sa.BigInteger()),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    now = datetime.now(UTC)
    if bind.dialect.name == "sqlite":
        now = now.replace(tzinfo=None)
    for contract_id, studio_id in contracts:
        rows = bind.execute(
            sa.text(
                "SELECT a.id, a.title_id, a.kind, a.byte_size, a.sha256 FROM assets a"
                " JOIN titles t ON t.id = a.title_id"
                " WHERE a.status = 'ready' AND a.studio_id = :studio AND ("
                "  t.id IN (SELECT title_id FROM contract_titles WHERE contract_id = :c)"
                "  OR t.parent_id IN (SELECT title_id FROM contract_titles WHERE contract_id = :c)"
                "  OR t.root_id IN (SELECT title_id FROM contract_titles WHERE contract_id = :c))"
                " ORDER BY a.id"
            ),
            {"studio": studio_id, "c": contract_id},
        ).all()
        entries = [
            {"asset_id": r[0], "title_id": r[1], "kind": r[2], "byte_size": r[3], "sha256": r[4]}
            for r in rows
        ]
        canonical = json.dumps(
            {"contract_id": contract_id, "assets": entries},
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
        ).encode("utf-8")
        bind.execute(
            manifests.insert().values(
                contract_id=contract_id,
                version=1,
                manifest_sha256=hashlib.sha256(canonical).hexdigest(),
                asset_count=len(entries),
                byte_size=sum(e["byte_size"] for e in entries),
                created_at=now,
            )
        )
        if entries:
            bind.execute(
                sa.text(
                    "INSERT INTO manifest_entries"
                    " (contract_id, version, asset_id, title_id, kind, byte_size, sha256)"
                    " VALUES (:c, 1, :asset_id, :title_id, :kind, :byte_size, :sha256)"
                ),
                [{"c": contract_id, **e} for e in entries],
            )


def downgrade() -> None:
    with op.batch_alter_table("attestations") as batch:
        batch.drop_column("manifest_sha256")
    with op.batch_alter_table("downloads") as batch:
        batch.drop_constraint(op.f("ck_downloads_counted_bytes"), type_="check")
        batch.drop_column("manifest_version")
        batch.drop_column("counted_download")
        batch.drop_column("counted_bytes")
    op.drop_table("manifest_entries")
    op.drop_table("contract_manifests")
