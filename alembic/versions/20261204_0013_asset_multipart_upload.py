"""assets.upload_id: the store's multipart upload of an asset past one PUT's 5 GiB

A feature film's master is often larger than the 5 GiB one presigned PUT may carry on S3. Such
an asset is uploaded in parts: `POST /assets/{id}/upload-parts` starts a multipart upload in the
store (its id kept here until the upload is completed) and signs a URL for each part;
`POST /assets/{id}/complete` assembles the parts. NULL for every asset uploaded with one PUT.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 17:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("assets", sa.Column("upload_id", sa.String(length=1024), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("assets") as batch:
        batch.drop_column("upload_id")
