"""payments: `refunded`, refund_id, refunded_at; at most one succeeded payment per contract

A PaymentIntent that succeeds for a contract another payment has already paid is refunded in
full at once (Stripe `Refund(payment_intent=…)`) and recorded `refunded`, with the refund's id;
it writes no payout entry. uq_payments_succeeded_contract_id makes the database refuse a second
`succeeded` payment of one contract, whatever the races.

Before this revision a contract could be paid twice (a failed intent retried at Stripe beside a
second intent). The upgrade stops, naming them, if such contracts exist: refund the extra
payment at Stripe first, then mark it, e.g. `UPDATE payments SET status = 'refunded',
refund_id = 're_…', refunded_at = now() WHERE id = 'pay_…'` (and remove its payout entry).
A downgrade with refunded payments stops too: the old schema cannot hold them.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SUCCEEDED = sa.text("status = 'succeeded'")


def upgrade() -> None:
    twice = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT contract_id FROM payments WHERE status = 'succeeded' "
                "GROUP BY contract_id HAVING COUNT(*) > 1 ORDER BY contract_id"
            )
        )
        .scalars()
        .all()
    )
    if twice:
        raise RuntimeError(
            "contracts paid more than once: "
            + ", ".join(twice)
            + "; refund the extra payments and mark them 'refunded' first (see this revision)"
        )
    with op.batch_alter_table("payments") as batch:
        batch.add_column(sa.Column("refunded_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("refund_id", sa.String(length=255), nullable=True))
        batch.drop_constraint(op.f("ck_payments_status"), type_="check")
        batch.create_check_constraint(
            op.f("ck_payments_status"),
            "status IN ('pending', 'succeeded', 'failed', 'canceled', 'refunded')",
        )
        batch.create_index(
            "uq_payments_succeeded_contract_id",
            ["contract_id"],
            unique=True,
            sqlite_where=_SUCCEEDED,
            postgresql_where=_SUCCEEDED,
        )


def downgrade() -> None:
    refunded = (
        op.get_bind()
        .execute(sa.text("SELECT COUNT(*) FROM payments WHERE status = 'refunded'"))
        .scalar_one()
    )
    if refunded:
        raise RuntimeError(f"{refunded} refunded payments: the schema before 0016 cannot hold them")
    with op.batch_alter_table("payments") as batch:
        batch.drop_index("uq_payments_succeeded_contract_id")
        batch.drop_constraint(op.f("ck_payments_status"), type_="check")
        batch.create_check_constraint(
            op.f("ck_payments_status"), "status IN ('pending', 'succeeded', 'failed', 'canceled')"
        )
        batch.drop_column("refund_id")
        batch.drop_column("refunded_at")
