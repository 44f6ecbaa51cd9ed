"""Title search: who sees which titles, full text over name and synopsis, filters, keyset pages.

The full-text index is kept by the database (migration 0005): an FTS5 external-content table
on SQLite, a generated `tsvector` column with a GIN index on PostgreSQL. Results are always in
id order (ids are time-ordered), never by relevance: a rank must be computed for every match
before the first row can be returned, which makes deep pages as slow as the whole result,
while id order lets page 200 cost what page 1 does. It also keeps the order independent of any
text a caller may not see.

Words matched by many titles and words matched by few need opposite plans. Many ("the": 80% of
100,000 titles): walk the titles in id order and test each, stopping at the page's end; a deep
page costs what page 1 does. Few ("lighthouse" in drama, in English: 0.2%): fetch the
matches, filter and sort them; walking would pass tens of thousands of titles to find a page.
Neither planner chooses well alone: SQLite always starts from the FTS matches, and
PostgreSQL, seeing `ORDER BY id LIMIT`, walks the primary key even when the matches lie far
apart in id order (90 ms instead of 30).
So the number of matches is found first (`probe_statement`): on SQLite a capped count of the
FTS matches (about a millisecond), on PostgreSQL its planner's estimate from the lexeme
statistics (no rows read). Above `BROAD_TEXT_MATCHES` (SQLite: `SQLITE_BROAD_TEXT_MATCHES`)
the page walks the ids. Otherwise it starts from the matches: on PostgreSQL it orders by
`titles.id || ''` (the same order, in a form no index provides) and checks each match's genre
and rights by index probes rather than joining whole tables.

A genre and a language go into the text query itself, so the index intersects them with the
words and only the titles that match all three are read: on PostgreSQL as the `#g:`/`#l:`
lexemes migration 0009 adds to the vector, on SQLite as the facet tokens of migration 0010's
third FTS5 column. The genre and language filters still apply; the facets only narrow what the
index returns (on the benchmark, "lighthouse" in drama in English: 4,600 matches become 200).
The probe counts (or estimates) with the facets too, so a common word in a rare language is
not mistaken for a broad search.

SQLite walks in windows (`fetch_page`): FTS5 cannot test one row against a query cheaply (a
prefix longer than its prefix index's four characters merges the doclists of every word with
that prefix, milliseconds, for each test), and fetching all 80,000 matches of "the" into a
temporary index costs 20 ms. So it takes the next `FIRST_WINDOW` titles in id order, asks
FTS5 only for matches within their rowid range, and keeps the page's titles among them; a
window that yields too few is followed by one four times larger. A page is then about a
millisecond on page 1 and on page 200 alike.

Every statement is built once per shape (which filters are present, which plan, who is
asking) and cached with bound parameters (`_statement`): building and hashing a SQLAlchemy
SELECT of this size costs more than PostgreSQL takes to run it. Rows come back as plain
tuples (`TitleRow`), not ORM objects, for the same reason.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Date,
    Executable,
    Integer,
    Select,
    String,
    and_,
    bindparam,
    case,
    cast,
    column,
    exists,
    func,
    literal_column,
    select,
    table,
)
from sqlalchemy.dialects.postgresql import TSQUERY
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.sql.visitors import InternalTraversal

from catalog.access import PUBLIC_VISIBILITIES
from catalog.models import Title, TitleCoverage, TitleGenre
from marketplace.accounts.principal import Principal
from marketplace.core.db import is_postgres, utcnow
from marketplace.core.errors import BadRequest, Forbidden
from marketplace.core.pagination import DEFAULT_LIMIT, CursorCodec, Page

__all__ = [
    "TitleRow",
    "TitleSearch",
    "fetch_page",
    "fts5_facet",
    "fts5_facets",
    "is_broad",
    "planned_for_their_values",
    "search_statement",
    "search_terms",
    "search_titles",
]

WORLDWIDE = "WW"
LISTED = "listed"
MAX_TERMS = 12
CURSOR_SCOPE = "titles"
# Above this many matches of the words and facets, the page walks the titles in id order
# instead (see above). Measured on the 100,000-title benchmark catalog (bench/search_bench.py)
# with both plans forced. PostgreSQL: "lighthouse" (4,500 matches) with a use and a territory
# takes 30 ms from the matches, whose rights are each probed, and 3.5 ms walking; below 2,000
# both plans cost about the same. SQLite, whose prefix index (migration 0010) makes a window
# cheap even for "the": "the" in Polish (800 matches) takes 4 ms from the matches and 12 ms
# walking, in Swedish (1,600) 7 ms and 3 ms.
BROAD_TEXT_MATCHES = 2000
SQLITE_BROAD_TEXT_MATCHES = 1000
# SQLite's first window of a broad walk, in titles; each further window is four times larger.
# On the benchmark, 256 titles of which 80% match the words fill a 50-title page of titles
# that also pass a use and a territory in one window.
FIRST_WINDOW = 256

# Letters and digits, in any script: what both FTS5's unicode61 tokenizer and PostgreSQL's
# parser treat as word characters. Everything else in `q` separates words, so no user input
# ever reaches either query language as syntax.
_TERM = re.compile(r"[^\W_]+")

_titles = Title.__table__
_parent = _titles.alias("parent")
# The FTS5 table; its hidden column of the same name is the MATCH target.
_titles_fts = table("titles_fts", column("rowid"), column("titles_fts"))

# What a page returns of each title: TitleRow's fields, in its order.
_PAGE_COLUMNS = (
    _titles.c.id,
    _titles.c.studio_id,
    _titles.c.external_id,
    _titles.c.eidr_id,
    _titles.c.kind,
    _titles.c.parent_id,
    _titles.c.name,
    _titles.c.original_language,
    _titles.c.genres,
    _titles.c.release_year,
    _titles.c.synopsis,
    _titles.c.visibility,
    _titles.c.content_seconds,
    _titles.c.max_height,
    _titles.c.created_at,
    _parent.c.visibility.label("parent_visibility"),
)


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


class TitleRow(NamedTuple):
    """One search result: what catalog.presenters.present_title reads of a title, and its
    parent's visibility (None without a parent), which decides whether parent_id is shown."""

    id: str
    studio_id: str
    external_id: str
    eidr_id: str | None
    kind: str
    parent_id: str | None
    name: str
    original_language: str | None
    genres: list[str]
    release_year: int | None
    synopsis: str | None
    visibility: str
    content_seconds: float
    max_height: int | None
    created_at: datetime
    parent_visibility: str | None

    @property
    def content_hours(self) -> float:
        return round(self.content_seconds / 3600.0, 4)


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
) -> Page[TitleRow]:
    """Return one page of the titles `viewer` may see that match `search`, in id order."""
    after = _cursor_after(codec, search.cursor)
    connection = session.connection()
    postgres = is_postgres(session)

    def fetch(stmt: Executable, params: Mapping[str, Any]) -> Sequence[Sequence[Any]]:
        return connection.execute(stmt, params).all()

    with planned_for_their_values(connection.connection.driver_connection):
        rows = fetch_page(
            fetch,
            viewer,
            search,
            postgres=postgres,
            today=today or utcnow().date(),
            after=after,
        )
    hits = [TitleRow(*row) for row in rows]
    next_cursor = None
    if len(hits) > search.limit:
        hits = hits[: search.limit]
        next_cursor = codec.encode(CURSOR_SCOPE, [hits[-1].id])
    return Page(hits, next_cursor)


@contextmanager
def planned_for_their_values(driver_connection: Any) -> Iterator[None]:
    """PostgreSQL (psycopg): run the block's statements unprepared, each planned for its values.

    psycopg prepares a statement on its fifth run on a connection, and PostgreSQL may then keep
    a generic plan, made without the values, whereas a search's best plan depends on how many
    titles its words match: generically planned, "a" in French took 8.3 ms instead of 1.2, and
    "the" in drama with a use 7.5 instead of 2.4 (bench/search_bench.py's sweep). An unprepared
    statement is always planned with its values, and turning preparation off is a setting of
    the client's connection: no round trip, in a transaction or not (`SET LOCAL
    plan_cache_mode` cost one, and needs a transaction). Other statements keep psycopg's
    preparation: for every statement it cost simple lookups their saved planning (`GET /me`
    1.8 -> 2.3 ms with plan_cache_mode forced for the whole session).
    """
    threshold = getattr(driver_connection, "prepare_threshold", None)
    if threshold is None:  # SQLite, or a driver that does not prepare
        yield
        return
    driver_connection.prepare_threshold = None
    try:
        yield
    finally:
        driver_connection.prepare_threshold = threshold


def _cursor_after(codec: CursorCodec, cursor: str | None) -> str | None:
    if not cursor:
        return None
    after = codec.decode(CURSOR_SCOPE, cursor)
    if len(after) != 1 or not isinstance(after[0], str):
        raise BadRequest(
            "cursor is not valid for this list", errors={"cursor": ["Not a valid cursor."]}
        )
    return after[0]


Fetch = Callable[[Executable, Mapping[str, Any]], Sequence[Sequence[Any]]]


def fetch_page(
    fetch: Fetch,
    viewer: Principal,
    search: TitleSearch,
    *,
    postgres: bool,
    today: date,
    after: str | None,
) -> list[Sequence[Any]]:
    """Run a page's statements through `fetch` (statement, parameters → rows); return up to
    limit + 1 rows of `_PAGE_COLUMNS`, in id order, after the title id `after`.

    `fetch` is a SQLAlchemy connection for the API; the benchmark passes the DB-API cursor of
    the same compiled statements, so that both run exactly the same SQL.
    """
    params = _parameters(viewer, search, today=today, after=after, postgres=postgres)
    broad = False
    if search.q:
        facets = search.genre is not None or search.language is not None
        probed = fetch(_probe_statement(postgres, facets), params)[0][0]
        broad = is_broad(probed, postgres=postgres)
    windowed = broad and not postgres
    shape = _shape(viewer, search, postgres=postgres, broad=broad, after=after is not None)
    stmt = _statement(shape._replace(windowed=windowed))
    if not windowed:
        return list(fetch(stmt, params))
    window = _window_statement(shape.scope)
    rows: list[Sequence[Any]] = []
    size = FIRST_WINDOW
    start = after or ""
    while len(rows) <= search.limit:
        low, high, last, count = fetch(window, {**params, "after": start, "window": size})[0]
        if not count:
            break
        more = {"after": start, "last": last, "low": low, "high": high}
        more["limit"] = search.limit + 1 - len(rows)
        rows += fetch(stmt, {**params, **more})
        if count < size:
            break  # the walk reached the last title
        start, size = last, size * 4
    return rows


def search_statement(
    viewer: Principal, search: TitleSearch, *, postgres: bool, today: date
) -> Select[Any]:
    """All the titles `viewer` may see that match `search`, in no order, with their values
    bound: for counting and checking (the benchmark), not for pages (fetch_page)."""
    shape = _shape(viewer, search, postgres=postgres, broad=False, after=False)
    params = _parameters(viewer, search, today=today, after=None, postgres=postgres)
    return _filtered(shape, select(_titles.c.id)).params(params)


def is_broad(probed: Any, *, postgres: bool) -> bool:
    """Read a probe's answer (_probe_statement): do the words match too many titles to fetch?"""
    if postgres:
        # EXPLAIN (FORMAT JSON): one row, one json value, [{"Plan": {"Plan Rows": n, ...}}].
        plan = json.loads(probed) if isinstance(probed, str) else probed
        return float(plan[0]["Plan"]["Plan Rows"]) > BROAD_TEXT_MATCHES
    return int(probed or 0) > SQLITE_BROAD_TEXT_MATCHES


# --- shapes and parameters ---------------------------------------------------------------


class _Shape(NamedTuple):
    """Everything a page's SQL depends on besides bound values: the key of its cache."""

    postgres: bool
    scope: str  # "operator", "developer" or "studio"
    terms: bool
    broad: bool
    windowed: bool  # SQLite's broad walk, a window at a time (fetch_page)
    after: bool
    studio: bool
    kind: bool
    language: str | None  # "tag" (an exact tag) or "family" (a bare language and variants)
    year_min: bool
    year_max: bool
    min_height: bool
    genre: bool
    use: bool
    territory: bool


def _shape(
    viewer: Principal, search: TitleSearch, *, postgres: bool, broad: bool, after: bool
) -> _Shape:
    if search.studio_id is not None and not viewer.is_operator:
        # API.md names it an operator filter. For a developer it would also tell which
        # anonymized titles belong to a studio, which is exactly what anonymity hides.
        raise Forbidden(
            "only operators may filter by studio", errors={"studio_id": ["Operators only."]}
        )
    scope = "operator" if viewer.is_operator else "developer" if viewer.is_developer else "studio"
    language = None
    if search.language is not None:
        language = "tag" if "-" in search.language else "family"
    return _Shape(
        postgres=postgres,
        scope=scope,
        terms=bool(search.q),
        broad=broad,
        windowed=False,
        after=after,
        studio=search.studio_id is not None,
        kind=search.kind is not None,
        language=language,
        year_min=search.release_year_min is not None,
        year_max=search.release_year_max is not None,
        min_height=search.min_height is not None,
        genre=search.genre is not None,
        use=search.permitted_use is not None,
        territory=search.territory is not None,
    )


def _parameters(
    viewer: Principal, search: TitleSearch, *, today: date, after: str | None, postgres: bool
) -> dict[str, Any]:
    params: dict[str, Any] = {
        "viewer_org": viewer.organization_id,
        "after": after,
        "limit": search.limit + 1,
        "probe_cap": SQLITE_BROAD_TEXT_MATCHES + 1,
        "studio_id": search.studio_id,
        "kind": search.kind,
        "language": search.language,
        # A normalized tag is letters, digits and hyphens (catalog/codes.py): no LIKE wildcard.
        "language_family": f"{search.language}-%",
        "year_min": search.release_year_min,
        "year_max": search.release_year_max,
        "min_height": search.min_height,
        "genre": search.genre,
        "today": today,
        "use": search.permitted_use,
        "places": _places(search.territory),
    }
    if search.q:
        terms = search_terms(search.q)
        if postgres:
            params["tsquery"] = _tsquery(terms)
            params["facets"] = _facets(genre=search.genre, language=search.language)
        else:
            facets = fts5_facets(genre=search.genre, language=search.language)
            params["fts_query"] = _fts5_query(terms, facets)
            params["fts_words"] = _fts5_query(terms, facets, prefix=False)
    return params


def _places(territory: str | None) -> list[str]:
    if territory is None or territory == WORLDWIDE:
        return [WORLDWIDE] if territory else []
    return [territory, WORLDWIDE]


# Every word must appear in the name or the synopsis; the last one may be a word's beginning,
# so results follow a query as it is typed ("light" finds "Lighthouse"). Terms are letters and
# digits only (_TERM), so quoting them needs no escaping.


def _tsquery(terms: list[str]) -> str:
    *whole, last = terms
    return " & ".join([*(f"'{t}'" for t in whole), f"'{last}':*"])


def _facets(*, genre: str | None, language: str | None) -> str | None:
    """On PostgreSQL, the genre and language lexemes of migration 0009 as a tsquery, so that
    the GIN index intersects them with the words (the genre and language filters still apply).
    Cast, never parsed: the parser would split `#g:drama` into two words."""
    parts = []
    if genre is not None:
        parts.append(_lexeme(f"#g:{genre}"))
    if language is not None:
        tag = _lexeme(f"#l:{language}")
        # A bare language also finds its regional and script variants, as _filtered says.
        parts.append(tag if "-" in language else f"( {tag} | {_lexeme(f'#l:{language}-')}:* )")
    return " & ".join(parts) or None


def _lexeme(text: str) -> str:
    """`text` as one quoted tsquery lexeme (a genre may hold any printable character)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def fts5_facets(*, genre: str | None, language: str | None) -> list[str]:
    """On SQLite, the genre and language tokens of migration 0010 that a title must have, so
    that FTS5 intersects them with the words (the genre and language filters still apply)."""
    tokens = []
    if genre is not None:
        tokens.append(fts5_facet("g", genre))
    if language is not None:
        # A bare language also finds its regional and script variants, as _filtered says.
        tokens.append(fts5_facet("l" if "-" in language else "f", language))
    return tokens


def fts5_facet(kind: str, value: str) -> str:
    """One facet token as migration 0010 indexes it: U+E000 (which no word can hold), the kind
    (g: genre, l: language tag, f: a tag's language alone) and the value's UTF-8 bytes in hex."""
    return f"\ue000{kind}{value.encode().hex()}"


def _fts5_query(terms: list[str], facets: list[str], *, prefix: bool = True) -> str:
    words = " ".join('"' + t + '"' for t in terms) + ("*" if prefix else "")
    return " ".join([words, *('"' + f + '"' for f in facets)])


# --- statements (built once per shape) ----------------------------------------------------


class _Explain(Executable, ClauseElement):
    """EXPLAIN (FORMAT JSON) of a SELECT: the planner's estimates, without running it."""

    # Cached like any statement: its cache key is the wrapped SELECT's.
    _traverse_internals = [("stmt", InternalTraversal.dp_clauseelement)]

    def __init__(self, stmt: Select[Any]) -> None:
        self.stmt = stmt


@compiles(_Explain, "postgresql")
def _compile_explain(element: _Explain, compiler: SQLCompiler, **kw: Any) -> str:
    return "EXPLAIN (FORMAT JSON) " + compiler.process(element.stmt, **kw)


@lru_cache(maxsize=4)
def _probe_statement(postgres: bool, facets: bool) -> Executable:
    """A statement whose scalar tells how many titles the words and facets (genre, language)
    match, whoever may see them: the figure only picks a plan, it is never shown.

    SQLite: the count of FTS matches, counting no further than SQLITE_BROAD_TEXT_MATCHES + 1; the
    whole words first (a prefix query must merge every word's list that starts with it, 4 ms
    for "the"), the prefix query only when they match too few. PostgreSQL: EXPLAIN of the bare
    text condition (with the facets' lexemes); the planner's row estimate is the answer.
    """
    if postgres:
        match = _tsquery_match(facets=facets)
        return _Explain(select(literal_column("1")).select_from(_titles).where(match))

    def capped(query: str) -> Any:
        matches = (
            select(_titles_fts.c.rowid)
            .where(_titles_fts.c.titles_fts.match(bindparam(query, type_=String)))
            .limit(bindparam("probe_cap", type_=Integer))
        )
        return select(func.count()).select_from(matches.subquery()).scalar_subquery()

    cap = bindparam("probe_cap", type_=Integer)
    return select(case((capped("fts_words") >= cap, cap), else_=capped("fts_query")))


@lru_cache(maxsize=512)
def _statement(shape: _Shape) -> Select[Any]:
    """The one SELECT of a page: titles after `after` in id order, limit + 1, each with its
    parent's visibility."""
    stmt = _filtered(shape, select(*_PAGE_COLUMNS)).outerjoin(
        _parent, _parent.c.id == _titles.c.parent_id
    )
    if shape.after or shape.windowed:
        stmt = stmt.where(_titles.c.id > bindparam("after", type_=String))
    if shape.windowed:
        stmt = stmt.where(_titles.c.id <= bindparam("last", type_=String))
    order: Any = _titles.c.id
    if shape.terms and not shape.broad and shape.postgres:
        # The same order, in a form the primary key cannot provide: PostgreSQL then fetches the
        # few matches from the GIN index and sorts them, instead of walking every id to find
        # them. (On SQLite, `titles.rowid IN (matches)` already does that.)
        order = literal_column("titles.id || ''")
    return stmt.order_by(order).limit(bindparam("limit", type_=Integer))


@lru_cache(maxsize=8)
def _window_statement(scope: str) -> Executable:
    """SQLite's next window of a broad walk: the lowest and highest rowid, the last id and the
    number of the next `window` titles after `after` that the scope lets the viewer see."""
    walk = (
        select(literal_column("titles.rowid").label("r"), _titles.c.id)
        .where(*_scope_conditions(scope, terms=True), _titles.c.id > bindparam("after"))
        .order_by(_titles.c.id)
        .limit(bindparam("window", type_=Integer))
        .subquery()
    )
    return select(func.min(walk.c.r), func.max(walk.c.r), func.max(walk.c.id), func.count())


def _scope_conditions(scope: str, *, terms: bool) -> list[ColumnElement[bool]]:
    """The titles a viewer may see (as catalog.access.visible_titles says), as conditions."""
    if scope == "operator":
        return []
    if scope == "studio":
        return [_titles.c.studio_id == bindparam("viewer_org", type_=String)]
    if terms:
        # An anonymized title's name and synopsis are hidden from developers, so it must not be
        # found through them either: words match listed titles only. Said once, in place of
        # "listed or anonymized": both planners take the product of the two for an estimate
        # (a third of the titles instead of half) and choose worse plans. A literal, not a
        # bound parameter, so that PostgreSQL's partial index of listed titles' words
        # (migration 0005) serves every plan, generic prepared ones included.
        return [_titles.c.visibility == literal_column(f"'{LISTED}'")]
    return [_titles.c.visibility.in_([literal_column(f"'{v}'") for v in PUBLIC_VISIBILITIES])]


def _filtered(shape: _Shape, stmt: Select[Any]) -> Select[Any]:
    """`stmt` FROM titles with the scope and every filter of `shape`, as bound parameters."""
    # Few titles match the words (see the module docstring): filter those few one by one.
    per_row = shape.postgres and shape.terms and not shape.broad
    conditions = _scope_conditions(shape.scope, terms=shape.terms)
    if shape.terms:
        conditions.append(_text_match(shape))
    if shape.studio:
        conditions.append(_titles.c.studio_id == bindparam("studio_id", type_=String))
    if shape.kind:
        conditions.append(_titles.c.kind == bindparam("kind", type_=String))
    if shape.language == "tag":
        conditions.append(_titles.c.original_language == bindparam("language", type_=String))
    elif shape.language == "family":
        # A bare language also finds its regional and script variants ("es" finds "es-419").
        conditions.append(
            (_titles.c.original_language == bindparam("language", type_=String))
            | _titles.c.original_language.like(bindparam("language_family", type_=String))
        )
    if shape.year_min:
        conditions.append(_titles.c.release_year >= bindparam("year_min", type_=Integer))
    if shape.year_max:
        conditions.append(_titles.c.release_year <= bindparam("year_max", type_=Integer))
    if shape.min_height:
        conditions.append(_titles.c.max_height >= bindparam("min_height", type_=Integer))
    if shape.genre:
        conditions.append(
            _exists(
                TitleGenre.title_id == _titles.c.id,
                TitleGenre.genre == bindparam("genre", type_=String),
                per_row=per_row,
            )
        )
    if shape.use or shape.territory:
        conditions.append(_licensable(use=shape.use, territory=shape.territory, per_row=per_row))
    return stmt.select_from(_titles).where(*conditions)


def _text_match(shape: _Shape) -> ColumnElement[bool]:
    if shape.postgres:
        return _tsquery_match(facets=shape.genre or shape.language is not None)
    matching = select(_titles_fts.c.rowid).where(
        _titles_fts.c.titles_fts.match(bindparam("fts_query", type_=String))
    )
    if shape.windowed:
        # Only the window's rowids: FTS5 seeks to them instead of listing every match.
        matching = matching.where(_titles_fts.c.rowid.between(bindparam("low"), bindparam("high")))
    # The unary plus keeps SQLite from driving a broad scan from the matches: it walks an
    # id-ordered index and probes the (materialized, indexed) set of matching rowids.
    rowid: ColumnElement[Any] = literal_column("+titles.rowid" if shape.broad else "titles.rowid")
    return rowid.in_(matching)


def _tsquery_match(*, facets: bool = False) -> ColumnElement[bool]:
    query: ColumnElement[Any] = func.to_tsquery(
        literal_column("'simple'::regconfig"), bindparam("tsquery", type_=String)
    )
    if facets:
        query = query.op("&&")(cast(bindparam("facets", type_=String), TSQUERY))
    vector: ColumnElement[Any] = literal_column("titles.search_vector")
    return vector.bool_op("@@")(query)


def _licensable(*, use: bool, territory: bool, per_row: bool) -> ColumnElement[bool]:
    """A grant on the title or an ancestor, not yet ended, for this use (and place): one probe
    of the title's coverage (migration 0017), its hierarchy already applied."""
    conditions: list[ColumnElement[bool]] = [
        TitleCoverage.title_id == _titles.c.id,
        TitleCoverage.ends_on >= bindparam("today", type_=Date),
    ]
    if use:
        conditions.append(TitleCoverage.use == bindparam("use", type_=String))
    if territory:
        conditions.append(TitleCoverage.territory.in_(bindparam("places", expanding=True)))
    return _exists(*conditions, per_row=per_row)


def _exists(*conditions: ColumnElement[bool], per_row: bool) -> ColumnElement[bool]:
    if not per_row:
        return exists().where(and_(*conditions))
    # OFFSET 0 keeps PostgreSQL from turning EXISTS into a semi-join: it then probes the index
    # for each of the few titles the words matched, instead of hashing every title_genres row
    # of a common genre (or every rights term of a use) to join against them.
    return select(literal_column("1")).where(*conditions).offset(0).exists()
