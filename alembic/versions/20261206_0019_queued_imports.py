"""catalog_imports: `queued` and `running` for imports run by a worker, and their file's key

A large file over HTTP is stored in the object store and imported by a worker; its report
exists from the start (`queued`, then `running`) and ends `succeeded` or `failed` as before.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 07:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("catalog_imports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("file_key", sa.String(length=1024), nullable=True))
        batch_op.drop_constraint(batch_op.f("ck_catalog_imports_status"), type_="check")
        batch_op.create_check_constraint(
            batch_op.f("ck_catalog_imports_status"),
            "status IN ('queued', 'running', 'succeeded', 'failed')",
        )


def downgrade() -> None:
    # An import not finished has no place in the old schema: it is recorded as failed.
    op.execute("UPDATE catalog_imports SET status = 'failed' WHERE status IN ('queued', 'running')")
    with op.batch_alter_table("catalog_imports", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_catalog_imports_status"), type_="check")
        batch_op.create_check_constraint(
            batch_op.f("ck_catalog_imports_status"), "status IN ('succeeded', 'failed')"
        )
        batch_op.drop_column("file_key")
