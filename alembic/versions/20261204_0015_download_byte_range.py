"""downloads.first_byte, last_byte: a download of a part of an asset

A licensee may ask for a download of a byte range of an asset (to resume a broken download of
a large master without being counted its bytes twice, or to fetch one in parallel pieces): the
grant counts that range's bytes, and its URL is signed for that range only. NULL for a download
of the whole asset, as every download before this revision.

ix_downloads_asset_id_id: `GET /downloads?asset_id=` (a studio's trace of one asset's
deliveries across contracts), in id order.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 19:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("downloads") as batch:
        batch.add_column(sa.Column("first_byte", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("last_byte", sa.BigInteger(), nullable=True))
        batch.create_check_constraint(
            op.f("ck_downloads_byte_range"),
            "(first_byte IS NULL AND last_byte IS NULL)"
            " OR (0 <= first_byte AND first_byte <= last_byte)",
        )
    op.create_index(op.f("ix_downloads_asset_id_id"), "downloads", ["asset_id", "id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_downloads_asset_id_id"), table_name="downloads")
    with op.batch_alter_table("downloads") as batch:
        batch.drop_constraint(op.f("ck_downloads_byte_range"), type_="check")
        batch.drop_column("last_byte")
        batch.drop_column("first_byte")
