"""titles' GIN indexes take new entries through a pending list; one redundant index on credits

Migration 0005 turned `fastupdate` off on the two GIN indexes of `titles.search_vector`, so that
no search would scan a pending list. But then every new title inserts each of its lexemes into
the index one by one: COPYing the 100,000 titles of the import benchmark took 16.6 s, against
1.8 s with no secondary index at all, the largest single cost of a bulk import on PostgreSQL
(the import of 2.1 million records ran at 45,000 records/s; with the pending list, 52,000 to
56,000, measured on the same idle machine).

With `fastupdate` on, new entries are appended to a pending list and merged into the index in
bulk whenever the list outgrows `gin_pending_list_limit`, and by (auto)vacuum. A search scans
what is pending in full: with PostgreSQL's default limit of 4 MB, the benchmark's narrow search
took 4.4 ms instead of 1.9. So the limit is 256 kB here (worst case measured: 1.67 ms against
1.58 settled), which costs the bulk import nothing measurable (50,300 records/s against
50,100-56,000 with 4 MB), and the catalog import empties the list before it commits
(catalog.search.index.settle_title_index): a bulk import leaves nothing pending; titles created
one by one leave at most 256 kB until the list fills or autovacuum next visits the table.

`ix_credits_title_id` duplicates the leading column of `uq_credits_title_id_talent_id_role`,
which serves every lookup by title (a title's credits, the cascade when a title is deleted).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 14:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_GIN_INDEXES = ("ix_fts_titles_search_vector", "ix_fts_titles_search_vector_listed")


def upgrade() -> None:
    op.drop_index("ix_credits_title_id", table_name="credits")
    if op.get_bind().dialect.name != "postgresql":
        return
    for index in _GIN_INDEXES:
        op.execute(f"ALTER INDEX {index} SET (fastupdate = on, gin_pending_list_limit = 256)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for index in _GIN_INDEXES:
            # Turning the option off does not merge what is pending (PostgreSQL's documentation):
            # merge it first, or searches would scan it until a vacuum.
            op.execute(f"SELECT gin_clean_pending_list('{index}'::regclass)")
            op.execute(f"ALTER INDEX {index} SET (fastupdate = off)")
            op.execute(f"ALTER INDEX {index} RESET (gin_pending_list_limit)")
    op.create_index("ix_credits_title_id", "credits", ["title_id"])
