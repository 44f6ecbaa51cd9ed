"""users: an email is unique within an organization, not across organizations

An address may belong to several organizations, one user (with its own keys) in each. Before
this revision `uq_users_email` made adding a user with another organization's address a 409
"already exists", which told any owner which addresses other tenants have. Emails are stored
lowercased, so uniqueness within an organization is case-insensitive. `ix_users_email` keeps
lookups by address (bootstrap-operator) indexed.

A downgrade stops, naming them, while an address belongs to more than one organization.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 11:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint(op.f("uq_users_email"), type_="unique")
        batch.create_unique_constraint(
            op.f("uq_users_organization_id_email"), ["organization_id", "email"]
        )
        batch.create_index(op.f("ix_users_email"), ["email"], unique=False)


def downgrade() -> None:
    shared = (
        op.get_bind()
        .execute(
            sa.text("SELECT email FROM users GROUP BY email HAVING COUNT(*) > 1 ORDER BY email")
        )
        .scalars()
        .all()
    )
    if shared:
        raise RuntimeError(
            "addresses in more than one organization: "
            + ", ".join(shared)
            + "; the schema before 0021 allows each address once"
        )
    with op.batch_alter_table("users") as batch:
        batch.drop_index(op.f("ix_users_email"))
        batch.drop_constraint(op.f("uq_users_organization_id_email"), type_="unique")
        batch.create_unique_constraint(op.f("uq_users_email"), ["email"])
