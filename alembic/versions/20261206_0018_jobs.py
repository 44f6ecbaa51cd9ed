"""jobs: background work recorded in the database; offers and contracts store `expired`

The `jobs` table holds each job's state (queued, running, succeeded, failed), attempts, last
error, lease and ordering key; the queue (huey) only carries job ids. Offers and contracts may
now be stored `expired` by scheduled jobs, with an audit event at the time (before, `expired`
was only derived when read, and still is until the job has run).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 07:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OFFER_OLD = "status IN ('open', 'accepted', 'rejected', 'withdrawn', 'countered')"
_OFFER_NEW = "status IN ('open', 'accepted', 'rejected', 'withdrawn', 'countered', 'expired')"
_CONTRACT_OLD = "status IN ('pending_signatures', 'signed', 'active', 'terminated')"
_CONTRACT_NEW = "status IN ('pending_signatures', 'signed', 'active', 'terminated', 'expired')"


def _status_check(table: str, condition: str) -> None:
    with op.batch_alter_table(table, schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f(f"ck_{table}_status"), type_="check")
        batch_op.create_check_constraint(batch_op.f(f"ck_{table}_status"), condition)


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=True),
        sa.Column("ordering_key", sa.String(length=80), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("run_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'failed')", name=op.f("ck_jobs_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
        sa.UniqueConstraint("key", name=op.f("uq_jobs_key")),
    )
    op.create_index("ix_jobs_status_run_after", "jobs", ["status", "run_after"], unique=False)
    op.create_index("ix_jobs_ordering_key_id", "jobs", ["ordering_key", "id"], unique=False)
    _status_check("offers", _OFFER_NEW)
    _status_check("contracts", _CONTRACT_NEW)


def downgrade() -> None:
    # Stored `expired` goes back to what reads derived it from.
    op.execute("UPDATE offers SET status = 'open' WHERE status = 'expired'")
    op.execute(
        "UPDATE contracts SET status = CASE WHEN payment_status = 'paid' THEN 'active' "
        "ELSE 'signed' END WHERE status = 'expired'"
    )
    _status_check("contracts", _CONTRACT_OLD)
    _status_check("offers", _OFFER_OLD)
    op.drop_index("ix_jobs_ordering_key_id", table_name="jobs")
    op.drop_index("ix_jobs_status_run_after", table_name="jobs")
    op.drop_table("jobs")
