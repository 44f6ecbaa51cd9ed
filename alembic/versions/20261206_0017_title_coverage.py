"""title_coverage: each title's licensable uses × territories, through its ancestors' grants

Search without words walks titles in id order and asks, for each, whether a grant on it or an
ancestor permits a use in a territory. Asked of `rights_terms` as `title_id IN (id, parent_id,
root_id)`, the question has no key PostgreSQL can hash or merge on, and it was asked once per
use for every title (four uses × two places × three ids) whenever no use was named; issue 17
measured `territory=US` at 670 ms and `permitted_use=train&territory=US` without an answer in
300 s at 100,000 titles. This table holds the answer per title, its hierarchy already applied,
so the question is one probe of (title_id, use, territory). `ends_on` is the last day any covering
grant runs, so "not yet ended" stays a comparison with today.

Filled here from the grants already stored; kept by catalog.rights.refresh_title_coverage.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The grants covering each title: its own, its parent's and its root's (at most three deep).
_BACKFILL = """
INSERT INTO title_coverage (title_id, use, territory, ends_on)
SELECT covering.title_id, rights_terms.use, rights_terms.territory, max(covering."end")
FROM (
    SELECT titles.id AS title_id, rights_grants.id AS grant_id, rights_grants."end" AS "end"
    FROM titles JOIN rights_grants ON rights_grants.title_id = titles.id
    UNION ALL
    SELECT titles.id, rights_grants.id, rights_grants."end"
    FROM titles JOIN rights_grants ON rights_grants.title_id = titles.parent_id
    UNION ALL
    SELECT titles.id, rights_grants.id, rights_grants."end"
    FROM titles JOIN rights_grants ON rights_grants.title_id = titles.root_id
        AND titles.root_id <> titles.parent_id
) AS covering
JOIN rights_terms ON rights_terms.grant_id = covering.grant_id
GROUP BY covering.title_id, rights_terms.use, rights_terms.territory
"""


def upgrade() -> None:
    op.create_table(
        "title_coverage",
        sa.Column("title_id", sa.String(length=40), nullable=False),
        sa.Column("use", sa.String(length=30), nullable=False),
        sa.Column("territory", sa.String(length=2), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["title_id"],
            ["titles.id"],
            name=op.f("fk_title_coverage_title_id_titles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("title_id", "use", "territory", name=op.f("pk_title_coverage")),
    )
    op.execute(_BACKFILL)


def downgrade() -> None:
    op.drop_table("title_coverage")
