"""The import's second pass: write the checked records, in batches, as the catalog services would.

Rows are the ones the services write (ids as `new_id` makes them, `root_id`, `title_genres` and
`rights_terms` beside their titles and grants, `studio_id` on assets, grants and consents), only
written in bulk: PostgreSQL takes new rows through COPY, SQLite through multi-row INSERTs. A
record that already exists (same studio and external id; a credit by title, talent and role) is
compared with what is stored: unchanged ones are not written again, changed ones are updated in
place. Only the keys the studio may have are looked up (`Check.existing_keys`; a credit, of a
title it had), and a batch of assets or credits that are all new (most of a first import, or of
a new season) is built and written column by column.

On PostgreSQL most new records of a first import never reach this pass: `catalog.imports.stream`
writes them while the file is being checked, and this pass writes the rest (`NewRows` builds
the rows of new records for both).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import Table, delete, exists, select, text
from sqlalchemy.orm import Session

from catalog.assets import storage_key_for
from catalog.imports.check import Check, ExistingTitle, Spill
from catalog.imports.parse import Record, is_plain_file_name
from catalog.imports.write import BulkWriter, Columns, Row, json_text
from catalog.media import refresh_titles_media
from catalog.models import (
    Asset,
    Consent,
    Credit,
    RightsGrant,
    RightsTerm,
    Talent,
    Title,
    TitleGenre,
)
from marketplace.core.ids import IdPool, new_ids

Progress = Callable[[int], None]

_TITLES = cast(Table, Title.__table__)
_GENRES = cast(Table, TitleGenre.__table__)
_ASSETS = cast(Table, Asset.__table__)
_GRANTS = cast(Table, RightsGrant.__table__)
_TERMS = cast(Table, RightsTerm.__table__)
_TALENT = cast(Table, Talent.__table__)
_CREDITS = cast(Table, Credit.__table__)
_CONSENTS = cast(Table, Consent.__table__)

TITLE_COLUMNS = (
    "id", "studio_id", "external_id", "eidr_id", "kind", "parent_id", "root_id", "name",
    "original_language", "genres", "release_year", "synopsis", "visibility", "own_seconds",
    "content_seconds", "max_height", "created_at", "updated_at",
)  # fmt: skip
# The descriptive fields an import may change on an existing title (kind, parent: never).
TITLE_FIELDS = (
    "eidr_id", "name", "original_language", "genres", "release_year", "synopsis", "visibility",
)  # fmt: skip
ASSET_COLUMNS = (
    "id", "title_id", "studio_id", "external_id", "kind", "storage_key", "byte_size", "sha256",
    "duration_seconds", "width", "height", "fps", "codec", "language", "status", "created_at",
    "ready_at",
)  # fmt: skip
ASSET_FIELDS = (
    "title_id", "kind", "storage_key", "byte_size", "sha256", "duration_seconds", "width",
    "height", "fps", "codec", "language",
)  # fmt: skip
# Changing any of these means the stored object is no longer the one that was verified.
ASSET_CONTENT = slice(ASSET_FIELDS.index("storage_key"), ASSET_FIELDS.index("sha256") + 1)
GRANT_COLUMNS = (
    "id", "title_id", "studio_id", "external_id", "territories", "start", "end",
    "permitted_uses", "exclusive_available", "created_at",
)  # fmt: skip
GRANT_FIELDS = (
    "title_id", "territories", "start", "end", "permitted_uses", "exclusive_available",
)  # fmt: skip
TALENT_COLUMNS = ("id", "studio_id", "external_id", "name", "external_ids", "created_at")
TALENT_FIELDS = ("name", "external_ids")
CONSENT_COLUMNS = (
    "id", "talent_id", "studio_id", "external_id", "attributes", "permitted_uses",
    "territories", "start", "end", "created_at",
)  # fmt: skip
CONSENT_FIELDS = ("talent_id", "attributes", "permitted_uses", "territories", "start", "end")
CREDIT_COLUMNS = ("id", "title_id", "talent_id", "role", "created_at")
GENRE_COLUMNS = ("title_id", "genre")
TERM_COLUMNS = ("grant_id", "territory", "use", "title_id")

# Keeps IN lists well under SQLite's bound-parameter limit.
_LOOKUP_CHUNK = 2000
# Distinct JSON lists NewRows keeps the text of (see `NewRows.json_list`).
JSON_LISTS_KEPT = 10_000
# New rows of a kind past which its tables' planner statistics are refreshed (PostgreSQL).
ANALYZE_AFTER_ROWS = 10_000


# By record type: its tables, and the columns the importer's lookups filter them on.
_LOOKUP_COLUMNS: dict[str, tuple[tuple[Table, tuple[str, ...]], ...]] = {
    "title": ((_TITLES, ("id", "studio_id")), (_GENRES, ("title_id",))),
    "asset": ((_ASSETS, ("studio_id", "external_id")),),
    "rights": ((_GRANTS, ("studio_id", "external_id")), (_TERMS, ("grant_id",))),
    "talent": ((_TALENT, ("id", "studio_id")),),
    "credit": ((_CREDITS, ("title_id",)),),
    "consent": ((_CONSENTS, ("studio_id", "external_id")),),
}


def _chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for i in range(0, len(values), _LOOKUP_CHUNK):
        yield values[i : i + _LOOKUP_CHUNK]


@dataclass
class Tally:
    """How many records of one type were created, updated, and found unchanged."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged}


def _stored(name: str, value: Any) -> Any:
    """A stored value in the spill's terms, to compare with."""
    if isinstance(value, date):
        return value.isoformat()
    if name in ("duration_seconds", "fps") and value is not None:
        return float(value)
    return value


def kinds_in_catalog(session: Session, studio_id: str) -> dict[str, bool]:
    """Whether the studio has any assets, rights grants, consents, credits (by record type)."""
    conditions = {
        "asset": _ASSETS.c.studio_id == studio_id,
        "rights": _GRANTS.c.studio_id == studio_id,
        "consent": _CONSENTS.c.studio_id == studio_id,
        "credit": _CREDITS.c.title_id.in_(
            select(_TITLES.c.id).where(_TITLES.c.studio_id == studio_id)
        ),
    }
    return {
        kind: bool(session.execute(select(exists().where(condition))).scalar())
        for kind, condition in conditions.items()
    }


class NewRows:
    """The rows new records become, ids included, as the catalog services would write them."""

    def __init__(self, studio_id: str, check: Check, now: Any) -> None:
        self.studio_id = studio_id
        self.check = check
        self.now = now  # in the form the database stores (BulkWriter.now)
        self.mint = IdPool()
        # Every title and talent id by external id, the studio's and (once given) the file's.
        self.title_ids = {key: title.id for key, title in check.existing_titles.items()}
        self.talent_ids = dict(check.existing_talent)
        self._json_lists: dict[tuple[str, ...], str] = {}

    def plan_ids(self) -> None:
        """Give an id to each title and talent of the file that has none yet."""
        for ids, keys, prefix in (
            (self.title_ids, self.check.titles, "ttl"),
            (self.talent_ids, self.check.talent, "tal"),
        ):
            for external_id in keys:
                if external_id not in ids:
                    ids[external_id] = self.mint(prefix)

    def root_under(self, parent: str) -> str:
        """The root id a child of `parent` carries: the top of the parent's hierarchy."""
        in_file = self.check.titles.get(parent)
        if in_file is not None:
            if in_file.parent is None:
                return self.title_ids[parent]
            return self.root_under(in_file.parent)
        title: ExistingTitle = self.check.existing_titles[parent]
        return title.root_id or title.id

    def json_list(self, values: list[str]) -> str:
        """`json_text` of a list of strings, remembered: lists of codes recur from row to row.

        Territories, uses, attributes and genres come from small vocabularies, so most rows
        repeat a list an earlier row had, and a dictionary lookup costs a tenth of encoding it.
        The text depends on the strings alone, so a list equal to an earlier one gets its text.
        """
        key = tuple(values)
        text = self._json_lists.get(key)
        if text is None:
            if len(self._json_lists) >= JSON_LISTS_KEPT:
                self._json_lists.clear()  # memory stays bounded whatever the file holds
            text = self._json_lists[key] = json_text(values)
        return text

    def talent(self, talent_id: str, record: Record) -> Row:
        _, external_id, name, external_ids = record
        return (talent_id, self.studio_id, external_id, name, json_text(external_ids), self.now)

    def title(self, title_id: str, record: Record) -> tuple[Row, list[tuple[str, str]]]:
        """The title's row, and its `title_genres` rows."""
        _, external_id, eidr, kind, parent, name, language, genres, year, synopsis, vis = record
        parent_id = root_id = None
        if parent is not None:
            parent_id, root_id = self.title_ids[parent], self.root_under(parent)
        now = self.now
        row = (
            title_id, self.studio_id, external_id, eidr, kind, parent_id, root_id, name,
            language, self.json_list(genres), year, synopsis, vis, 0.0, 0.0, None, now, now,
        )  # fmt: skip
        return row, [(title_id, genre) for genre in genres]

    def asset(self, record: Record) -> Row:
        _, external_id, title_ext, kind, file_name, *fields = record
        title_id, asset_id = self.title_ids[title_ext], self.mint("ast")
        key = self.asset_key(title_id, asset_id, file_name)
        return (
            asset_id, title_id, self.studio_id, external_id, kind, key, *fields, "pending",
            self.now, None,
        )  # fmt: skip

    def asset_key(self, title_id: str, asset_id: str, file_name: str | None) -> str:
        """The storage key of a new asset (`catalog.assets.storage_key_for`)."""
        if file_name is not None and is_plain_file_name(file_name):
            # What storage_key_for makes of it, without its regular expressions.
            return f"{storage_key_for(self.studio_id, title_id, asset_id, None)}/{file_name}"
        return storage_key_for(self.studio_id, title_id, asset_id, file_name)

    def asset_columns(self, batch: Sequence[Record]) -> Columns:
        """The rows `asset` makes of a batch of records, column by column.

        For a batch that is all new, as most of a first import: a few passes in C make the
        columns (`SqliteInserter.insert_columns` lays them out), in half the time that building
        and then flattening a tuple for each row takes.
        """
        (
            _, external_ids, title_exts, kinds, file_names, sizes, shas, durations, widths,
            heights, fps, codecs, languages,
        ) = zip(*batch, strict=True)  # fmt: skip
        count = len(batch)
        title_ids = list(map(self.title_ids.__getitem__, title_exts))
        asset_ids = new_ids("ast", count)
        keys = list(map(self.asset_key, title_ids, asset_ids, file_names))
        return [
            asset_ids, title_ids, [self.studio_id] * count, external_ids, kinds, keys, sizes,
            shas, durations, widths, heights, fps, codecs, languages, ["pending"] * count,
            [self.now] * count, [None] * count,
        ]  # fmt: skip

    def grant(self, record: Record) -> tuple[Row, list[tuple[str, str, str, str]]]:
        """The grant's row, and its `rights_terms` rows."""
        _, external_id, title_ext, territories, start, end, uses, exclusive = record
        title_id, grant_id = self.title_ids[title_ext], self.mint("rgt")
        row = (
            grant_id, title_id, self.studio_id, external_id, self.json_list(territories), start,
            end, self.json_list(uses), exclusive, self.now,
        )  # fmt: skip
        return row, [(grant_id, t, u, title_id) for t in territories for u in uses]

    def consent(self, record: Record) -> Row:
        _, external_id, talent_ext, attributes, uses, territories, start, end = record
        return (
            self.mint("cns"), self.talent_ids[talent_ext], self.studio_id, external_id,
            self.json_list(attributes), self.json_list(uses), self.json_list(territories), start,
            end, self.now,
        )  # fmt: skip

    def credit(self, title_id: str, talent_id: str, role: str) -> Row:
        return (self.mint("crd"), title_id, talent_id, role, self.now)

    def credit_columns(self, batch: Sequence[Record]) -> Columns:
        """The rows `credit` makes of a batch of records, column by column (see `asset_columns`)."""
        _, titles, people, roles = zip(*batch, strict=True)
        count = len(batch)
        return [
            new_ids("crd", count),
            list(map(self.title_ids.__getitem__, titles)),
            list(map(self.talent_ids.__getitem__, people)),
            roles,
            [self.now] * count,
        ]


@dataclass
class Apply:
    """Write one checked file into one studio's catalog."""

    session: Session
    studio_id: str
    check: Check
    now: datetime
    progress: Progress | None = None
    tallies: dict[str, Tally] = field(default_factory=dict)
    refresh: set[str] = field(default_factory=set)
    # Given when records were already written (catalog.imports.stream), with their ids.
    new_rows: NewRows | None = None
    # Statements run through the session so far (see `run`).
    _statements: int = field(default=0, init=False)

    def run(self) -> dict[str, dict[str, int]]:
        """Apply every spilled record; return the tallies by record type."""
        connection = self.session.connection()
        self.writer = BulkWriter(connection, self.now)
        if self.new_rows is None:
            self.new_rows = NewRows(self.studio_id, self.check, self.writer.now)
        self.new_rows.plan_ids()
        self.make = self.new_rows
        self.title_ids = self.new_rows.title_ids
        self.talent_ids = self.new_rows.talent_ids
        spill = self.check.spill
        steps: list[tuple[str, Callable[[list[Record]], None]]] = [
            ("talent", self._talent),
            ("title0", self._titles),
            ("title1", self._titles),
            ("title2", self._titles),
            ("asset", self._assets),
            ("rights", self._grants),
            ("consent", self._consents),
            ("credit", self._credits),
        ]
        self._has = kinds_in_catalog(self.session, self.studio_id)
        # Genres and rights terms wait in a spill of their own, so that the titles and grants
        # stream through one COPY each; they follow once their parents are all written (on
        # SQLite too: a table's inserts are cheaper one table at a time, its pages at hand).
        self.derived = Spill(spill.directory, ("genres", "terms"))
        try:
            for stream, step in steps:
                for batch in spill.batches(stream):
                    statements = self._statements
                    step(batch)
                    # The importer pauses the cyclic collector; the few cycles a batch's
                    # statements leave are all young, and a young collection costs little.
                    # Little, but not nothing (it walks the batch's records, 2 ms): a batch
                    # that ran none, as on a first import, leaves no cycles to collect.
                    if self._statements != statements:
                        gc.collect(0)
                    if self.progress is not None:
                        self.progress(len(batch))
            self.derived.close()
            for stream, table, columns in (
                ("genres", _GENRES, GENRE_COLUMNS),
                ("terms", _TERMS, TERM_COLUMNS),
            ):
                for rows in self.derived.batches(stream):
                    self.writer.insert(table, columns, rows)
            self.writer.flush()
        except BaseException as exc:
            self.writer.abort(exc)
            raise
        self._analyze()
        if self.refresh:
            refresh_titles_media(self.session, self.refresh)
        return {kind: tally.as_dict() for kind, tally in sorted(self.tallies.items())}

    def _analyze(self) -> None:
        # PostgreSQL plans by table statistics, which autovacuum refreshes only a while after a
        # bulk load: until then a re-import's lookups by external id scan the whole studio.
        # Only the columns those lookups filter on: it takes a third of the time, and leaves
        # the table's count of changes alone, so autovacuum still analyzes it all soon after.
        if not self.writer.postgres:
            return
        for kind, tables in _LOOKUP_COLUMNS.items():
            tally = self.tallies.get(kind)
            if tally is not None and tally.created >= ANALYZE_AFTER_ROWS:
                for table, columns in tables:
                    self._execute(text(f"ANALYZE {table.name} ({', '.join(columns)})"))

    def _execute(self, stmt: Any) -> Any:
        """Run a statement (ending any open COPY first)."""
        self._statements += 1
        self.writer.flush()
        return self.session.execute(stmt)

    def _update(self, table: Table, changes: list[dict[str, Any]]) -> None:
        """Update rows by id (`BulkWriter.update`)."""
        if changes:
            self._statements += 1
            self.writer.update(table, changes)

    def _tally(self, kind: str) -> Tally:
        tally = self.tallies.get(kind)
        if tally is None:
            tally = self.tallies[kind] = Tally()
        return tally

    def _lookup(
        self, table: Table, columns: Iterable[str], key: Any, values: Sequence[Any]
    ) -> dict[Any, Any]:
        """Map key → stored row, for the given key values (chunked IN lists)."""
        found: dict[Any, Any] = {}
        cols = [table.c[name] for name in columns]
        for chunk in _chunks(values):
            for row in self._execute(select(key, *cols).where(key.in_(chunk))):
                found[row[0]] = row[1:]
        return found

    # --- talent ---------------------------------------------------------------------------

    def _talent(self, batch: list[Record]) -> None:
        tally = self._tally("talent")
        known = self.check.existing_talent
        stored = self._lookup(
            _TALENT, TALENT_FIELDS, _TALENT.c.id, [known[r[1]] for r in batch if r[1] in known]
        )
        rows, changes = [], []
        for record in batch:
            _, external_id, name, external_ids = record
            talent_id = self.talent_ids[external_id]
            current = stored.get(talent_id)
            if current is None:
                rows.append(self.make.talent(talent_id, record))
                tally.created += 1
            elif tuple(current) != (name, external_ids):
                changes.append({"id": talent_id, "name": name, "external_ids": external_ids})
                tally.updated += 1
            else:
                tally.unchanged += 1
        self.writer.insert(_TALENT, TALENT_COLUMNS, rows)
        self._update(_TALENT, changes)

    # --- titles ---------------------------------------------------------------------------

    def _titles(self, batch: list[Record]) -> None:
        tally = self._tally("title")
        existing = self.check.existing_titles
        stored = self._lookup(
            _TITLES,
            TITLE_FIELDS,
            _TITLES.c.id,
            [existing[r[1]].id for r in batch if r[1] in existing],
        )
        rows: list[Row] = []
        genre_rows: list[tuple[str, str]] = []
        changes: list[dict[str, Any]] = []
        regenre: list[str] = []
        for record in batch:
            _, external_id, eidr, _, _, name, language, genres, year, synopsis, vis = record
            title_id = self.title_ids[external_id]
            current = stored.get(title_id)
            if current is None:
                row, genre_rows_of_title = self.make.title(title_id, record)
                rows.append(row)
                genre_rows.extend(genre_rows_of_title)
                tally.created += 1
                continue
            wanted = (eidr, name, language, genres, year, synopsis, vis)
            if tuple(current) == wanted:
                tally.unchanged += 1
                continue
            changes.append({"id": title_id, **dict(zip(TITLE_FIELDS, wanted, strict=True))})
            changes[-1]["updated_at"] = self.now
            if current[3] != genres:
                regenre.append(title_id)
                genre_rows.extend((title_id, genre) for genre in genres)
            tally.updated += 1
        self.writer.insert(_TITLES, TITLE_COLUMNS, rows)
        self._update(_TITLES, changes)
        for chunk in _chunks(regenre):
            self._execute(delete(TitleGenre).where(TitleGenre.title_id.in_(chunk)))
        for row in genre_rows:
            self.derived.add("genres", row)

    # --- assets ---------------------------------------------------------------------------

    def _assets(self, batch: list[Record]) -> None:
        tally = self._tally("asset")
        stored = self._stored_by_external_id("asset", _ASSETS, ("status", *ASSET_FIELDS), batch)
        if not stored:
            # All new, as on a first import: built and written column by column.
            self.writer.insert_columns(_ASSETS, ASSET_COLUMNS, self.make.asset_columns(batch))
            tally.created += len(batch)
            return
        rows, changes = [], []
        for record in batch:
            (
                _,
                external_id,
                title_ext,
                kind,
                file_name,
                size,
                sha,
                duration,
                w,
                h,
                fps,
                codec,
                lang,
            ) = record
            title_id = self.title_ids[title_ext]
            current = stored.get(external_id)
            if current is None:
                rows.append(self.make.asset(record))
                tally.created += 1
                continue
            asset_id, status, *old = current
            old_key = old[2]
            key = old_key
            if _file_name_of(old_key) != file_name:
                key = storage_key_for(self.studio_id, title_id, asset_id, file_name)
            wanted = (title_id, kind, key, size, sha, duration, w, h, fps, codec, lang)
            before = tuple(_stored(n, v) for n, v in zip(ASSET_FIELDS, old, strict=True))
            if before == wanted:
                tally.unchanged += 1
                continue
            change: dict[str, Any] = {
                "id": asset_id,
                **dict(zip(ASSET_FIELDS, wanted, strict=True)),
            }
            if before[ASSET_CONTENT] != wanted[ASSET_CONTENT]:
                # Another object: an upload in parts of the old one cannot make it, and the
                # old one's checked SHA-256 says nothing of it.
                change.update(upload_id=None, sha256_verified_at=None)
            if status == "ready":
                self.refresh.update((old[0], title_id))
                if before[ASSET_CONTENT] != wanted[ASSET_CONTENT]:
                    # Another object than the verified one: it has to be completed again.
                    change.update(status="pending", ready_at=None)
            changes.append(change)
            tally.updated += 1
        self.writer.insert(_ASSETS, ASSET_COLUMNS, rows)
        self._update_mixed(_ASSETS, changes)

    def _update_mixed(self, table: Table, changes: list[dict[str, Any]]) -> None:
        # executemany needs one shape per statement: group the changes by their columns.
        shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for change in changes:
            shapes.setdefault(tuple(change), []).append(change)
        for group in shapes.values():
            self._update(table, group)

    # --- rights ---------------------------------------------------------------------------

    def _grants(self, batch: list[Record]) -> None:
        tally = self._tally("rights")
        stored = self._stored_by_external_id("rights", _GRANTS, GRANT_FIELDS, batch)
        rows: list[Row] = []
        terms: list[tuple[str, str, str, str]] = []
        changes: list[dict[str, Any]] = []
        reterm: list[str] = []
        for record in batch:
            _, external_id, title_ext, territories, start, end, uses, exclusive = record
            title_id = self.title_ids[title_ext]
            current = stored.get(external_id)
            if current is None:
                row, terms_of_grant = self.make.grant(record)
                rows.append(row)
                terms.extend(terms_of_grant)
                tally.created += 1
                continue
            grant_id, *old = current
            wanted = (title_id, territories, start, end, uses, exclusive)
            before = tuple(_stored(n, v) for n, v in zip(GRANT_FIELDS, old, strict=True))
            if before == wanted:
                tally.unchanged += 1
                continue
            changes.append({"id": grant_id, **dict(zip(GRANT_FIELDS, wanted, strict=True))})
            if (before[0], before[1], before[4]) != (title_id, territories, uses):
                reterm.append(grant_id)
                terms.extend((grant_id, t, u, title_id) for t in territories for u in uses)
            tally.updated += 1
        self.writer.insert(_GRANTS, GRANT_COLUMNS, rows)
        self._update(_GRANTS, changes)
        for chunk in _chunks(reterm):
            self._execute(delete(RightsTerm).where(RightsTerm.grant_id.in_(chunk)))
        for term in terms:
            self.derived.add("terms", term)

    def _stored_by_external_id(
        self, kind: str, table: Table, fields: Sequence[str], batch: list[Record]
    ) -> dict[Any, Any]:
        """Map the batch's external ids to (id, *fields) of the studio's stored rows."""
        # Only the keys the studio may have: none, in a batch of new records.
        known = self.check.existing_keys.get(kind)
        keys = [r[1] for r in batch if known is None or r[1] in known]
        if not keys:
            return {}
        found: dict[Any, Any] = {}
        cols = [table.c.id, *(table.c[name] for name in fields)]
        for chunk in _chunks(keys):
            stmt = select(table.c.external_id, *cols).where(
                table.c.studio_id == self.studio_id, table.c.external_id.in_(chunk)
            )
            for row in self._execute(stmt):
                found[row[0]] = row[1:]
        return found

    # --- consents and credits -------------------------------------------------------------

    def _consents(self, batch: list[Record]) -> None:
        tally = self._tally("consent")
        stored = self._stored_by_external_id("consent", _CONSENTS, CONSENT_FIELDS, batch)
        rows, changes = [], []
        for record in batch:
            _, external_id, talent_ext, attributes, uses, territories, start, end = record
            talent_id = self.talent_ids[talent_ext]
            current = stored.get(external_id)
            if current is None:
                rows.append(self.make.consent(record))
                tally.created += 1
                continue
            consent_id, *old = current
            wanted = (talent_id, attributes, uses, territories, start, end)
            if tuple(_stored(n, v) for n, v in zip(CONSENT_FIELDS, old, strict=True)) == wanted:
                tally.unchanged += 1
                continue
            changes.append({"id": consent_id, **dict(zip(CONSENT_FIELDS, wanted, strict=True))})
            tally.updated += 1
        self.writer.insert(_CONSENTS, CONSENT_COLUMNS, rows)
        self._update(_CONSENTS, changes)

    def _credits(self, batch: list[Record]) -> None:
        tally = self._tally("credit")
        existing = self.check.existing_titles
        if not self._has["credit"] or not any(r[1] in existing for r in batch):
            # All new, as on a first import (only a title the studio had can have credits):
            # built and written column by column.
            self.writer.insert_columns(_CREDITS, CREDIT_COLUMNS, self.make.credit_columns(batch))
            tally.created += len(batch)
            return
        resolved = [
            (self.title_ids[title], self.talent_ids[talent], role)
            for _, title, talent, role in batch
        ]
        stored: set[tuple[str, str, str]] = set()
        title_ids = sorted({self.title_ids[r[1]] for r in batch if r[1] in existing})
        for chunk in _chunks(title_ids):
            stmt = select(_CREDITS.c.title_id, _CREDITS.c.talent_id, _CREDITS.c.role).where(
                _CREDITS.c.title_id.in_(chunk)
            )
            stored.update((t, p, r) for t, p, r in self._execute(stmt))
        rows = []
        for credit in resolved:
            if credit in stored:
                tally.unchanged += 1
                continue
            rows.append(self.make.credit(*credit))
            tally.created += 1
        self.writer.insert(_CREDITS, CREDIT_COLUMNS, rows)


def _file_name_of(storage_key: str) -> str | None:
    """The file-name segment of a key made by `storage_key_for`, if it has one."""
    # studios/{studio}/titles/{title}/{asset}[/{file name}]
    parts = storage_key.split("/", 5)
    return parts[5] if len(parts) == 6 else None
