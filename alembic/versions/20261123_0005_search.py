"""title search: full-text index over titles(name, synopsis), kept by the database itself

SQLite: an FTS5 external-content table `titles_fts` over `titles.rowid`, kept in step by
AFTER INSERT/UPDATE/DELETE triggers. PostgreSQL: a stored generated `tsvector` column
`titles.search_vector` with a GIN index (without a pending list). Either way no application
code (service, bulk importer, raw SQL) has to maintain the index.

Both use no stemming and no stop words ('simple' / unicode61): titles are multilingual, and an
English stemmer would mangle French or Japanese names while dropping words such as "The" or
"Who" that titles are made of. Both fold case and neither folds accents, so the two dialects
match the same words.

Caution for later migrations: a batch (copy-and-move) rebuild of `titles` on SQLite drops these
triggers and renumbers rowids; such a migration must recreate the triggers and run
`INSERT INTO titles_fts(titles_fts) VALUES('rebuild')` (tests/catalog/test_search.py checks
that the triggers exist at head). The same rebuild is needed after a VACUUM, which may renumber
the rowids of a table without an INTEGER PRIMARY KEY.

Revision ID: 0005
Revises: 0002
Create Date: 2026-11-23 21:40:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SQLITE_UP = (
    """
    CREATE VIRTUAL TABLE titles_fts USING fts5(
        name, synopsis,
        content='titles', content_rowid='rowid',
        tokenize='unicode61 remove_diacritics 0'
    )
    """,
    """
    CREATE TRIGGER titles_fts_after_insert AFTER INSERT ON titles BEGIN
        INSERT INTO titles_fts(rowid, name, synopsis) VALUES (new.rowid, new.name, new.synopsis);
    END
    """,
    """
    CREATE TRIGGER titles_fts_after_delete AFTER DELETE ON titles BEGIN
        INSERT INTO titles_fts(titles_fts, rowid, name, synopsis)
        VALUES ('delete', old.rowid, old.name, old.synopsis);
    END
    """,
    """
    CREATE TRIGGER titles_fts_after_update AFTER UPDATE OF name, synopsis ON titles BEGIN
        INSERT INTO titles_fts(titles_fts, rowid, name, synopsis)
        VALUES ('delete', old.rowid, old.name, old.synopsis);
        INSERT INTO titles_fts(rowid, name, synopsis) VALUES (new.rowid, new.name, new.synopsis);
    END
    """,
    # Index whatever rows the table already holds.
    "INSERT INTO titles_fts(titles_fts) VALUES ('rebuild')",
)

_SQLITE_DOWN = (
    "DROP TRIGGER IF EXISTS titles_fts_after_update",
    "DROP TRIGGER IF EXISTS titles_fts_after_delete",
    "DROP TRIGGER IF EXISTS titles_fts_after_insert",
    "DROP TABLE IF EXISTS titles_fts",
)

_POSTGRES_UP = (
    """
    ALTER TABLE titles ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
        to_tsvector('simple'::regconfig, coalesce(name, '') || ' ' || coalesce(synopsis, ''))
    ) STORED
    """,
    # fastupdate off: new rows go into the index at once, not into a pending list that every
    # search must then scan in full (up to gin_pending_list_limit, 4 MB: some 5 ms a query after
    # a bulk import of 100,000 titles) until a vacuum merges it. Inserts pay a little instead.
    "CREATE INDEX ix_fts_titles_search_vector ON titles USING gin (search_vector) "
    "WITH (fastupdate = off)",
    # Developers' word searches find listed titles only (catalog.search.query): their own index is
    # half the size and spares intersecting the matches with the visibility index. The query
    # must say 'listed' as a literal for any plan, prepared ones included, to use it.
    "CREATE INDEX ix_fts_titles_search_vector_listed ON titles USING gin (search_vector) "
    "WITH (fastupdate = off) WHERE visibility = 'listed'",
)

_POSTGRES_DOWN = (
    "DROP INDEX IF EXISTS ix_fts_titles_search_vector_listed",
    "DROP INDEX IF EXISTS ix_fts_titles_search_vector",
    "ALTER TABLE titles DROP COLUMN IF EXISTS search_vector",
)


def _run(statements: Sequence[str]) -> None:
    for statement in statements:
        op.execute(statement)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        _run(_SQLITE_UP)
    elif dialect == "postgresql":
        _run(_POSTGRES_UP)
    else:
        raise NotImplementedError(f"no full-text search for the {dialect} dialect")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        _run(_SQLITE_DOWN)
    elif dialect == "postgresql":
        _run(_POSTGRES_DOWN)
