"""Title search: who sees which titles, full text over name and synopsis, filters, keyset pages.

The full-text index is kept by the database (migration 0005): an FTS5 external-content table
on SQLite, a generated `tsvector` column with a GIN index on PostgreSQL. Results are always in
id order (ids are time-ordered), never by relevance: a rank must be computed for every match
before the first row can be returned, which makes deep pages as slow as the whole result,
while id order lets page 200 cost what page 1 does. It also keeps the order independent of any
text a caller may not see.

SQLite's planner cannot tell a word found in 40% of titles from one found in ten, and always
starts from the FTS matches: every match is fetched, filtered and sorted before the first row
comes back (150 ms for "the" over 100,000 titles). So a capped count of the matches is taken
first (`text_match_probe`, about a millisecond); above `BROAD_TEXT_MATCHES` the query instead
walks the titles in id order and checks each against the set of matching rowids, stopping at
the page's end. PostgreSQL's planner makes that choice itself from its statistics.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    column,
    exists,
    func,
    literal_column,
    select,
    table,
)
from sqlalchemy.orm import Session

from catalog.access import visible_titles
from catalog.coverage import ALL_USES
from catalog.models import RightsGrant, RightsTerm, Title, TitleGenre
from marketplace.accounts.principal import Principal
from marketplace.core.db import is_postgres, utcnow
from marketplace.core.errors import BadRequest, Forbidden
from marketplace.core.pagination import DEFAULT_LIMIT, CursorCodec, Page, SortKey, paginate

__all__ = [
    "TitleSearch",
    "search_statement",
    "search_terms",
    "search_titles",
    "text_match_probe",
]

WORLDWIDE = "WW"
MAX_TERMS = 12
CURSOR_SCOPE = "titles"
# Above this many FTS matches, SQLite walks the titles in id order instead (see above). Tuned
# on the 100,000-title benchmark (bench/search_bench.py): up to 5% of the catalog, fetching and
# sorting the matches costs less than walking past titles that fail the other filters.
BROAD_TEXT_MATCHES = 5000

# Letters and digits, in any script: what both FTS5's unicode61 tokenizer and PostgreSQL's
# parser treat as word characters. Everything else in `q` separates words, so no user input
# ever reaches either query language as syntax.
_TERM = re.compile(r"[^\W_]+")

# The FTS5 table; its hidden column of the same name is the MATCH target.
_titles_fts = table("titles_fts", column("rowid"), column("titles_fts"))


@dataclass(frozen=True)
class TitleSearch:
    """What `GET /titles` asks for; codes are already normalized (see catalog/codes.py)."""

    q: str | None = None
    genre: str | None = None
    language: str | None = None
    kind: str | None = None
    release_year_min: int | None = None
    release_year_max: int | None = None
    min_height: int | None = None
    permitted_use: str | None = None
    territory: str | None = None
    studio_id: str | None = None
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None


def search_terms(q: str) -> list[str]:
    """Split a free-text query into lower-case words; refuse one with no word or too many."""
    # lower(), not casefold(): both indexes fold case one character at a time ("ß" stays "ß").
    terms = [term.lower() for term in _TERM.findall(q)]
    if not terms:
        raise BadRequest(
            "q has no words to search for", errors={"q": ["Must contain a letter or digit."]}
        )
    if len(terms) > MAX_TERMS:
        raise BadRequest(
            f"q has more than {MAX_TERMS} words",
            errors={"q": [f"Must contain at most {MAX_TERMS} words."]},
        )
    return terms


def search_titles(
    session: Session,
    viewer: Principal,
    search: TitleSearch,
    *,
    codec: CursorCodec,
    today: date | None = None,
) -> Page[Title]:
    """Return one page of the titles `viewer` may see that match `search`, in id order."""
    postgres = is_postgres(session)
    probe = text_match_probe(search, postgres=postgres)
    broad = probe is not None and (session.scalar(probe) or 0) > BROAD_TEXT_MATCHES
    stmt = search_statement(
        viewer, search, postgres=postgres, today=today or utcnow().date(), broad_text=broad
    )
    return paginate(
        session,
        stmt,
        keys=[SortKey(Title.id)],
        limit=search.limit,
        cursor=search.cursor,
        codec=codec,
        scope=CURSOR_SCOPE,
    )


def text_match_probe(search: TitleSearch, *, postgres: bool) -> Select[Any] | None:
    """On SQLite with words to find: SELECT how many titles match, counting no further than
    BROAD_TEXT_MATCHES + 1 (whatever their visibility; the count is never shown)."""
    if postgres or not search.q:
        return None
    capped = (
        select(_titles_fts.c.rowid)
        .where(_fts5_match(search_terms(search.q)))
        .limit(BROAD_TEXT_MATCHES + 1)
    )
    return select(func.count()).select_from(capped.subquery())


def search_statement(
    viewer: Principal,
    search: TitleSearch,
    *,
    postgres: bool,
    today: date,
    broad_text: bool = False,
) -> Select[Any]:
    """Build the filtered, scoped SELECT of titles (no order or limit: paginate() adds them).

    `broad_text`: on SQLite, the words match many titles (see text_match_probe), so walk the
    titles in id order rather than fetch every match.
    """
    if search.studio_id is not None and not viewer.is_operator:
        # API.md names it an operator filter. For a developer it would also tell which
        # anonymized titles belong to a studio, which is exactly what anonymity hides.
        raise Forbidden(
            "only operators may filter by studio", errors={"studio_id": ["Operators only."]}
        )
    conditions: list[ColumnElement[bool]] = []
    if search.q:
        terms = search_terms(search.q)
        if viewer.is_developer:
            # An anonymized title's name and synopsis are hidden from developers, so it must
            # not be found through them either: words match listed titles only.
            conditions.append(Title.visibility == "listed")
        conditions.append(_matches(terms, postgres=postgres, broad=broad_text))
    if search.studio_id is not None:
        conditions.append(Title.studio_id == search.studio_id)
    if search.kind is not None:
        conditions.append(Title.kind == search.kind)
    if search.language is not None:
        conditions.append(_language(search.language))
    if search.release_year_min is not None:
        conditions.append(Title.release_year >= search.release_year_min)
    if search.release_year_max is not None:
        conditions.append(Title.release_year <= search.release_year_max)
    if search.min_height is not None:
        conditions.append(Title.max_height >= search.min_height)
    if search.genre is not None:
        conditions.append(
            exists().where(TitleGenre.title_id == Title.id, TitleGenre.genre == search.genre)
        )
    if search.permitted_use is not None or search.territory is not None:
        conditions.append(_licensable(search.permitted_use, search.territory, today))
    return visible_titles(viewer).where(*conditions)


# Every word must appear in the name or the synopsis; the last one may be a word's beginning,
# so results follow a query as it is typed ("light" finds "Lighthouse").


def _matches(terms: list[str], *, postgres: bool, broad: bool) -> ColumnElement[bool]:
    if postgres:
        *whole, last = terms
        tsquery = " & ".join([*(f"'{t}'" for t in whole), f"'{last}':*"])
        query = func.to_tsquery(literal_column("'simple'::regconfig"), tsquery)
        vector: ColumnElement[Any] = literal_column("titles.search_vector")
        return vector.bool_op("@@")(query)
    matching = select(_titles_fts.c.rowid).where(_fts5_match(terms))
    # The unary plus keeps SQLite from driving the scan from the matches: it walks an
    # id-ordered index and probes the (materialized, indexed) set of matching rowids.
    rowid: ColumnElement[Any] = literal_column("+titles.rowid" if broad else "titles.rowid")
    return rowid.in_(matching)


def _fts5_match(terms: list[str]) -> ColumnElement[bool]:
    # Terms are letters and digits only (_TERM), so quoting them needs no escaping.
    *whole, last = terms
    quoted = [*('"' + t + '"' for t in whole), '"' + last + '"*']
    return _titles_fts.c.titles_fts.match(" ".join(quoted))


def _language(language: str) -> ColumnElement[bool]:
    if "-" in language:
        return Title.original_language == language
    # A bare language also finds its regional and script variants ("es" finds "es-419"). The
    # tag is normalized letters only (catalog/codes.py), so it carries no LIKE wildcard.
    return (Title.original_language == language) | Title.original_language.like(f"{language}-%")


def _licensable(use: str | None, territory: str | None, today: date) -> ColumnElement[bool]:
    """A grant on the title or an ancestor, not yet ended, for this use in this territory."""
    conditions: list[ColumnElement[bool]] = [
        # Ancestors are within {parent_id, root_id}: the hierarchy is at most three deep.
        RightsTerm.title_id.in_([Title.id, Title.parent_id, Title.root_id]),
        RightsGrant.id == RightsTerm.grant_id,
        RightsGrant.end >= today,
    ]
    # Always constrain `use`, the leading column of the (use, territory, title_id) index.
    conditions.append(RightsTerm.use.in_([use] if use is not None else ALL_USES))
    if territory is not None:
        places = [territory] if territory == WORLDWIDE else [territory, WORLDWIDE]
        conditions.append(RightsTerm.territory.in_(places))
    return exists().where(*conditions)
