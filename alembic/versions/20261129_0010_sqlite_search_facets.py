"""title search: genre and language in SQLite's full-text index, as 0009 did for PostgreSQL

A developer's narrow search ("lighthouse" in drama, in English) listed every title whose words
match from FTS5 (4,600 of 100,000 on the benchmark), then read each one's row and genres to
test the filters: 15 ms. With the genre and language as tokens of a third FTS5 column, FTS5
intersects the three lists itself and only the 200 titles that match all of them are read
(about 2 ms).

The table also gets a prefix index for prefixes of one to four characters: the last word of a
search matches as a prefix, and "the"* had to merge the lists of every word starting with
"the" for each query and each window of a broad walk (3 ms a window; now 0.15 ms). The index
grows from 11 to 43 MB for 100,000 titles.

The table becomes contentless (`content=''`): an external-content table reads its columns from
`titles` when rebuilt, and `titles` has no column of facet tokens; a view computing them cannot
serve either, since FTS5 cannot read a view that calls json_each. The triggers supply every value,
as before. The migration fills the table from scratch with `_REINDEX`, as
`marketplace catalog reindex` (catalog/search/index.py) does after a VACUUM, which may renumber
the rowids of `titles` (the replacement of 0005's 'rebuild').

The tokens, for catalog.search.query to ask for:
- `\\ue000g<hex>`: a genre, as the hexadecimal of its UTF-8 bytes (a genre may hold any
  character, and a token only letters and digits);
- `\\ue000l<hex>`: a language tag, exactly;
- `\\ue000f<hex>`: the tag's language alone (`es` of `es-419`), so a bare language finds its
  regional and script variants with one token, not a prefix query.
U+E000 is a private-use character: FTS5's unicode61 tokenizer keeps it inside a token (category
Co), while catalog.search.query's words are letters and digits only (Python's `\\w` excludes Co), so
no word nor any word's prefix ever matches a facet, and word queries need no column filter
(which costs a broad search about 0.7 ms a window).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 08:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TOKENIZE = "tokenize='unicode61 remove_diacritics 0'"


def _facets(row: str) -> str:
    """The facet tokens of `row` (new, old or titles), space-separated, as SQL."""
    marker = "char(57344)"  # U+E000
    language = f"{row}.original_language"
    primary = (
        f"CASE WHEN instr({language}, '-') > 0"
        f" THEN substr({language}, 1, instr({language}, '-') - 1) ELSE {language} END"
    )
    genres = (
        f"(SELECT group_concat({marker} || 'g' || lower(hex(value)), ' ')"
        f" FROM json_each({row}.genres))"
    )
    # hex(NULL) is '', not NULL: a title without a language gets no language tokens at all.
    tags = (
        f"CASE WHEN {language} IS NULL THEN '' ELSE"
        f" ' ' || {marker} || 'l' || lower(hex({language}))"
        f" || ' ' || {marker} || 'f' || lower(hex({primary})) END"
    )
    return f"ifnull({genres}, '') || {tags}"


def _insert(row: str) -> str:
    return (
        "INSERT INTO titles_fts(rowid, name, synopsis, facets)"
        f" VALUES ({row}.rowid, {row}.name, {row}.synopsis, {_facets(row)});"
    )


def _delete(row: str) -> str:
    # A contentless table forgets a row only when given exactly the values it indexed.
    return (
        "INSERT INTO titles_fts(titles_fts, rowid, name, synopsis, facets)"
        f" VALUES ('delete', {row}.rowid, {row}.name, {row}.synopsis, {_facets(row)});"
    )


_REINDEX = (
    "INSERT INTO titles_fts(titles_fts) VALUES ('delete-all')",
    "INSERT INTO titles_fts(rowid, name, synopsis, facets)"
    f" SELECT titles.rowid, titles.name, titles.synopsis, {_facets('titles')} FROM titles",
)

_DROP_0005 = (
    "DROP TRIGGER IF EXISTS titles_fts_after_update",
    "DROP TRIGGER IF EXISTS titles_fts_after_delete",
    "DROP TRIGGER IF EXISTS titles_fts_after_insert",
    "DROP TABLE IF EXISTS titles_fts",
)

_UP = (
    *_DROP_0005,
    "CREATE VIRTUAL TABLE titles_fts USING fts5(name, synopsis, facets, content='',"
    f" prefix='1 2 3 4', {_TOKENIZE})",
    f"CREATE TRIGGER titles_fts_after_insert AFTER INSERT ON titles BEGIN {_insert('new')} END",
    f"CREATE TRIGGER titles_fts_after_delete AFTER DELETE ON titles BEGIN {_delete('old')} END",
    "CREATE TRIGGER titles_fts_after_update"
    " AFTER UPDATE OF name, synopsis, genres, original_language ON titles"
    f" BEGIN {_delete('old')} {_insert('new')} END",
    *_REINDEX,
)

# Migration 0005's table and triggers, as they were.
_DOWN = (
    *_DROP_0005,
    "CREATE VIRTUAL TABLE titles_fts USING fts5(name, synopsis,"
    f" content='titles', content_rowid='rowid', {_TOKENIZE})",
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
    "INSERT INTO titles_fts(titles_fts) VALUES ('rebuild')",
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for statement in _UP:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for statement in _DOWN:
        op.execute(statement)
