"""Rebuilding the titles' full-text index from the titles themselves.

The database keeps the index as titles change (migrations 0005, 0009, 0010): nothing here runs
in normal operation. On SQLite, the index is a contentless FTS5 table keyed by `titles.rowid`,
and a VACUUM may renumber the rowids of a table without an INTEGER PRIMARY KEY, which would
leave the index pointing at the wrong titles: `marketplace catalog reindex` rebuilds it after
one. On PostgreSQL the vector is a generated column of each row; nothing can drift, but its GIN
indexes take new entries through a pending list (migration 0011) that every search scans in
full: `settle_title_index` merges it into the index, as the catalog import does before it
commits and `marketplace catalog reindex` does on PostgreSQL.

The facet tokens must be spelled exactly as migration 0010's triggers spell them and as
catalog.search.query asks for them; tests/catalog/test_search.py checks all three agree.
"""

from __future__ import annotations

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from marketplace.core.db import is_postgres

__all__ = ["TITLE_GIN_INDEXES", "reindex_titles", "settle_title_index"]

TITLE_GIN_INDEXES = ("ix_fts_titles_search_vector", "ix_fts_titles_search_vector_listed")
# gin_clean_pending_list needs the index's owner (or a superuser); a role that only writes rows
# leaves the merge to autovacuum rather than fail the transaction it runs in.
_SETTLE = text(
    "SELECT coalesce(sum(gin_clean_pending_list(c.oid)), 0) FROM pg_class AS c"
    " WHERE c.relname IN :names AND c.relkind = 'i'"
    " AND c.relnamespace = to_regnamespace(current_schema())"
    " AND pg_has_role(c.relowner, 'USAGE')"
).bindparams(bindparam("names", expanding=True))

_MARKER = "char(57344)"  # U+E000, see migration 0010
_PRIMARY = (
    "CASE WHEN instr(titles.original_language, '-') > 0"
    " THEN substr(titles.original_language, 1, instr(titles.original_language, '-') - 1)"
    " ELSE titles.original_language END"
)
# Built from the constants above only; no value ever comes from input.
_FACETS = (
    f"ifnull((SELECT group_concat({_MARKER} || 'g' || lower(hex(value)), ' ')"  # noqa: S608
    " FROM json_each(titles.genres)), '')"
    " || CASE WHEN titles.original_language IS NULL THEN '' ELSE"
    f" ' ' || {_MARKER} || 'l' || lower(hex(titles.original_language))"
    f" || ' ' || {_MARKER} || 'f' || lower(hex({_PRIMARY})) END"
)
_SQLITE_REINDEX = (
    "INSERT INTO titles_fts(titles_fts) VALUES ('delete-all')",
    "INSERT INTO titles_fts(rowid, name, synopsis, facets)"  # noqa: S608
    f" SELECT titles.rowid, titles.name, titles.synopsis, {_FACETS} FROM titles",
)


def reindex_titles(session: Session) -> int | None:
    """Rebuild the full-text index of every title in the session's transaction; return the
    number of titles indexed, or None on PostgreSQL, where there is nothing to rebuild."""
    if is_postgres(session):
        return None
    for statement in _SQLITE_REINDEX:
        session.execute(text(statement))
    return int(session.execute(text("SELECT count(*) FROM titles")).scalar_one())


def settle_title_index(session: Session) -> int | None:
    """Merge the pending entries of the titles' GIN indexes into the indexes (PostgreSQL), in
    the session's transaction; return the pending pages merged, or None on SQLite (FTS5 has
    no pending list). Indexes the current role does not own are left to autovacuum."""
    if not is_postgres(session):
        return None
    merged = session.execute(_SETTLE, {"names": list(TITLE_GIN_INDEXES)}).scalar_one()
    return int(merged)
