"""assets.sha256_verified_at: when the stored bytes were found to have the declared SHA-256

An asset uploaded with one PUT has its SHA-256 checked by the store (it is signed into the URL)
and reported at completion. An asset uploaded in parts has each part's checked, but S3 keeps no
SHA-256 of an object made of parts: NULL until `marketplace catalog verify-assets` has read the
object back and hashed it.

Backfill: ready assets of at most 5 GiB went up in one PUT, so their SHA-256 was checked when
they became ready; larger ready ones went up in parts and are left NULL, to be verified.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 19:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SINGLE_PUT_MAX_BYTES = 5 * 1024**3  # catalog.assets.SINGLE_PUT_MAX_BYTES when this was written


def upgrade() -> None:
    op.add_column(
        "assets", sa.Column("sha256_verified_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.execute(
        sa.text(
            "UPDATE assets SET sha256_verified_at = ready_at"
            " WHERE status = 'ready' AND byte_size <= :single_put_max"
        ).bindparams(single_put_max=SINGLE_PUT_MAX_BYTES)
    )


def downgrade() -> None:
    with op.batch_alter_table("assets") as batch:
        batch.drop_column("sha256_verified_at")
