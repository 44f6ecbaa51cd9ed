"""Title search: who sees which titles, full text over name and synopsis, filters, keyset pages.

The full-text index is kept by the database (migration 0005): an FTS5 external-content table
on SQLite, a generated `tsvector` column with a GIN index on PostgreSQL. Results are always in
id order (ids are time-ordered), never by relevance: a rank must be computed for every match
before the first row can be returned, which makes deep pages as slow as the whole result,
while id order lets page 200 cost what page 1 does. It also keeps the order independent of any
text a caller may not see.

Words matched by many titles and words matched by few need opposite plans. Many ("the": 80% of
100,000 titles): walk the titles in id order and test each, stopping at the page's end; a deep
page costs what page 1 does. Few ("lighthouse": 5%): fetch the matches, filter and sort them;
walking would pass tens of thousands of titles to find a page. Neither planner chooses well
alone: SQLite always starts from the FTS matches, and PostgreSQL, seeing `ORDER BY id LIMIT`,
walks the primary key even when the matches lie far apart in id order (90 ms instead of 30).
So the number of matches is found first (`text_match_probe`): on SQLite a capped count of the
FTS matches (about a millisecond), on PostgreSQL its planner's estimate from the lexeme
statistics (no rows read). Above `BROAD_TEXT_MATCHES` the page walks the ids (on SQLite,
`+titles.rowid` keeps it from starting at the matches). Otherwise it starts from the matches:
on PostgreSQL it orders by `titles.id || ''` (the same order, in a form no index provides) and
checks each match's genre and rights by index probes rather than joining whole tables.

A page is one statement (`page_statement`): the titles with their parent's visibility, which
the presenter needs to decide whether `parent_id` may be shown.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Executable,
    Select,
    column,
    exists,
    func,
    literal_column,
    select,
    table,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

from catalog.access import visible_titles
from catalog.coverage import ALL_USES
from catalog.models import RightsGrant, RightsTerm, Title, TitleGenre
from marketplace.accounts.principal import Principal
from marketplace.core.db import is_postgres, utcnow
from marketplace.core.errors import BadRequest, Forbidden
from marketplace.core.pagination import DEFAULT_LIMIT, CursorCodec, Page

__all__ = [
    "TitleHit",
    "TitleSearch",
    "is_broad",
    "page_statement",
    "search_statement",
    "search_terms",
    "search_titles",
    "text_match_probe",
]

WORLDWIDE = "WW"
LISTED = "listed"
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

_parent = aliased(Title, name="parent")

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


class TitleHit(NamedTuple):
    """One search result: the title, and its parent's visibility (None without a parent)."""

    title: Title
    parent_visibility: str | None


def search_titles(
    session: Session,
    viewer: Principal,
    search: TitleSearch,
    *,
    codec: CursorCodec,
    today: date | None = None,
) -> Page[TitleHit]:
    """Return one page of the titles `viewer` may see that match `search`, in id order."""
    postgres = is_postgres(session)
    after = _cursor_after(codec, search.cursor)
    probe = text_match_probe(search, postgres=postgres)
    broad = probe is not None and is_broad(session.execute(probe).scalar(), postgres=postgres)
    stmt = page_statement(
        viewer,
        search,
        postgres=postgres,
        today=today or utcnow().date(),
        after=after,
        broad_text=broad,
    )
    rows = session.execute(stmt).all()
    hits = [TitleHit(row[0], row[1]) for row in rows]
    next_cursor = None
    if len(hits) > search.limit:
        hits = hits[: search.limit]
        next_cursor = codec.encode(CURSOR_SCOPE, [hits[-1].title.id])
    return Page(hits, next_cursor)


def _cursor_after(codec: CursorCodec, cursor: str | None) -> str | None:
    if not cursor:
        return None
    after = codec.decode(CURSOR_SCOPE, cursor)
    if len(after) != 1 or not isinstance(after[0], str):
        raise BadRequest(
            "cursor is not valid for this list", errors={"cursor": ["Not a valid cursor."]}
        )
    return after[0]


def text_match_probe(search: TitleSearch, *, postgres: bool) -> Executable | None:
    """With words to find: a statement whose scalar tells how many titles they match.

    SQLite: SELECT the count of FTS matches, counting no further than BROAD_TEXT_MATCHES + 1.
    PostgreSQL: EXPLAIN the bare text condition; the planner's row estimate is the answer.
    Either way, whatever the titles' visibility: the figure only picks a plan, never shown.
    """
    if not search.q:
        return None
    terms = search_terms(search.q)
    if postgres:
        only_text: Select[Any] = (
            select(literal_column("1")).select_from(Title).where(_tsquery_match(terms))
        )
        return _Explain(only_text)
    capped = select(_titles_fts.c.rowid).where(_fts5_match(terms)).limit(BROAD_TEXT_MATCHES + 1)
    return select(func.count()).select_from(capped.subquery())


def is_broad(probed: Any, *, postgres: bool) -> bool:
    """Read a probe's answer (text_match_probe): do the words match too many titles to fetch?"""
    if postgres:
        # EXPLAIN (FORMAT JSON): one row, one json value, [{"Plan": {"Plan Rows": n, ...}}].
        plan = json.loads(probed) if isinstance(probed, str) else probed
        return float(plan[0]["Plan"]["Plan Rows"]) > BROAD_TEXT_MATCHES
    return int(probed or 0) > BROAD_TEXT_MATCHES


class _Explain(Executable, ClauseElement):
    """EXPLAIN (FORMAT JSON) of a SELECT: the planner's estimates, without running it."""

    inherit_cache = False  # compiled each time: it has no selected columns to cache

    def __init__(self, stmt: Select[Any]) -> None:
        self.stmt = stmt


@compiles(_Explain, "postgresql")
def _compile_explain(element: _Explain, compiler: SQLCompiler, **kw: Any) -> str:
    return "EXPLAIN (FORMAT JSON) " + compiler.process(element.stmt, **kw)


def page_statement(
    viewer: Principal,
    search: TitleSearch,
    *,
    postgres: bool,
    today: date,
    after: str | None,
    broad_text: bool,
) -> Select[Any]:
    """The one SELECT of a page: titles after `after` in id order, limit + 1, each with its
    parent's visibility (see text_match_probe for `broad_text`)."""
    stmt = (
        search_statement(viewer, search, postgres=postgres, today=today, broad_text=broad_text)
        .add_columns(_parent.visibility)
        .outerjoin(_parent, _parent.id == Title.parent_id)
    )
    if after is not None:
        stmt = stmt.where(Title.id > after)
    order: Any = Title.id
    if search.q and not broad_text and postgres:
        # The same order, in a form the primary key cannot provide: PostgreSQL then fetches the
        # few matches from the GIN index and sorts them, instead of walking every id to find
        # them. (On SQLite, search_statement's `titles.rowid IN (matches)` already does that.)
        order = literal_column("titles.id || ''")
    return stmt.order_by(order).limit(search.limit + 1)


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
    stmt = visible_titles(viewer)
    # Few titles match the words (see the module docstring): filter those few one by one.
    per_row = postgres and bool(search.q) and not broad_text
    conditions: list[ColumnElement[bool]] = []
    if search.q:
        terms = search_terms(search.q)
        if viewer.is_developer:
            # An anonymized title's name and synopsis are hidden from developers, so it must
            # not be found through them either: words match listed titles only. Said once,
            # in place of "listed or anonymized": both planners take the product of the two
            # for an estimate (a third of the titles instead of half) and choose worse plans.
            # A literal, not a bound parameter, so that PostgreSQL's partial index of listed
            # titles' words (migration 0005) serves every plan, generic prepared ones included.
            stmt = select(Title).where(Title.visibility == literal_column(f"'{LISTED}'"))
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
            _exists(
                TitleGenre.title_id == Title.id, TitleGenre.genre == search.genre, per_row=per_row
            )
        )
    if search.permitted_use is not None or search.territory is not None:
        conditions.append(
            _licensable(search.permitted_use, search.territory, today, per_row=per_row)
        )
    return stmt.where(*conditions)


# Every word must appear in the name or the synopsis; the last one may be a word's beginning,
# so results follow a query as it is typed ("light" finds "Lighthouse").


def _matches(terms: list[str], *, postgres: bool, broad: bool) -> ColumnElement[bool]:
    if postgres:
        return _tsquery_match(terms)
    matching = select(_titles_fts.c.rowid).where(_fts5_match(terms))
    # The unary plus keeps SQLite from driving the scan from the matches: it walks an
    # id-ordered index and probes the (materialized, indexed) set of matching rowids.
    rowid: ColumnElement[Any] = literal_column("+titles.rowid" if broad else "titles.rowid")
    return rowid.in_(matching)


def _tsquery_match(terms: list[str]) -> ColumnElement[bool]:
    # Terms are letters and digits only (_TERM), so quoting them needs no escaping.
    *whole, last = terms
    tsquery = " & ".join([*(f"'{t}'" for t in whole), f"'{last}':*"])
    query = func.to_tsquery(literal_column("'simple'::regconfig"), tsquery)
    vector: ColumnElement[Any] = literal_column("titles.search_vector")
    return vector.bool_op("@@")(query)


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


def _licensable(
    use: str | None, territory: str | None, today: date, *, per_row: bool
) -> ColumnElement[bool]:
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
    return _exists(*conditions, per_row=per_row)


def _exists(*conditions: ColumnElement[bool], per_row: bool) -> ColumnElement[bool]:
    if not per_row:
        return exists().where(*conditions)
    # OFFSET 0 keeps PostgreSQL from turning EXISTS into a semi-join: it then probes the index
    # for each of the few titles the words matched, instead of hashing every title_genres row
    # of a common genre (or every rights term of a use) to join against them.
    return select(literal_column("1")).where(*conditions).offset(0).exists()
