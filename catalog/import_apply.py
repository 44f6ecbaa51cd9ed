"""The import's second pass: write the checked records, in batches, as the catalog services would.

Rows are the ones the services write (ids from `new_id`, `root_id`, `title_genres` and
`rights_terms` beside their titles and grants, `studio_id` on assets, grants and consents), only
written in bulk: PostgreSQL takes new rows through COPY, SQLite through one executemany per
batch. A record that already exists (same studio and external id; a credit by title, talent and
role) is compared with what is stored: unchanged ones are not written again, changed ones are
updated in place. When the studio has no rows of a kind yet, the lookups are skipped.
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
from catalog.import_check import Check, ExistingTitle, Spill
from catalog.import_parse import Record
from catalog.import_write import BulkWriter, json_text
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
from marketplace.core.ids import new_id

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

# Keeps IN lists well under SQLite's bound-parameter limit.
_LOOKUP_CHUNK = 2000
# New rows of a kind past which its tables' planner statistics are refreshed (PostgreSQL).
ANALYZE_AFTER_ROWS = 10_000


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


@dataclass
class Apply:
    """Write one checked file into one studio's catalog."""

    session: Session
    studio_id: str
    check: Check
    now: datetime
    progress: Progress | None = None
    tallies: dict[str, Tally] = field(default_factory=dict)
    title_ids: dict[str, str] = field(default_factory=dict)
    talent_ids: dict[str, str] = field(default_factory=dict)
    refresh: set[str] = field(default_factory=set)

    def run(self) -> dict[str, dict[str, int]]:
        """Apply every spilled record; return the tallies by record type."""
        connection = self.session.connection()
        self.writer = BulkWriter(connection, self.now)
        self._plan_ids()
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
        self._has = {
            "asset": self._any(_ASSETS.c.studio_id == self.studio_id),
            "rights": self._any(_GRANTS.c.studio_id == self.studio_id),
            "consent": self._any(_CONSENTS.c.studio_id == self.studio_id),
            "credit": self._any(
                _CREDITS.c.title_id.in_(
                    select(_TITLES.c.id).where(_TITLES.c.studio_id == self.studio_id)
                )
            ),
        }
        # Genres and rights terms wait in a spill of their own, so that the titles and grants
        # stream through one COPY each; they follow once their parents are all written.
        self.derived = Spill(spill.directory, ("genres", "terms"))
        try:
            for stream, step in steps:
                for batch in spill.batches(stream):
                    step(batch)
                    # The importer pauses the cyclic collector; the few cycles a batch's
                    # queries leave are all young, and a young collection costs little.
                    gc.collect(0)
                    if self.progress is not None:
                        self.progress(len(batch))
            self.derived.close()
            for stream, table, columns in (
                ("genres", _GENRES, ("title_id", "genre")),
                ("terms", _TERMS, ("grant_id", "territory", "use", "title_id")),
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
        if not self.writer.postgres:
            return
        written = {
            "title": (_TITLES, _GENRES),
            "asset": (_ASSETS,),
            "rights": (_GRANTS, _TERMS),
            "talent": (_TALENT,),
            "credit": (_CREDITS,),
            "consent": (_CONSENTS,),
        }
        for kind, tables in written.items():
            tally = self.tallies.get(kind)
            if tally is not None and tally.created >= ANALYZE_AFTER_ROWS:
                for table in tables:
                    self._execute(text(f"ANALYZE {table.name}"))

    def _execute(self, stmt: Any) -> Any:
        """Run a statement (ending any open COPY first)."""
        self.writer.flush()
        return self.session.execute(stmt)

    def _any(self, condition: Any) -> bool:
        return bool(self._execute(select(exists().where(condition))).scalar())

    def _tally(self, kind: str) -> Tally:
        tally = self.tallies.get(kind)
        if tally is None:
            tally = self.tallies[kind] = Tally()
        return tally

    # --- ids ------------------------------------------------------------------------------

    def _plan_ids(self) -> None:
        existing = self.check.existing_titles
        self.title_ids = {external_id: title.id for external_id, title in existing.items()}
        for external_id in self.check.titles:
            if external_id not in existing:
                self.title_ids[external_id] = new_id("ttl")
        self.talent_ids = dict(self.check.existing_talent)
        for external_id in self.check.talent:
            if external_id not in self.talent_ids:
                self.talent_ids[external_id] = new_id("tal")

    def _root_under(self, parent: str) -> str:
        """The root id a child of `parent` carries: the top of the parent's hierarchy."""
        in_file = self.check.titles.get(parent)
        if in_file is not None:
            if in_file.parent is None:
                return self.title_ids[parent]
            return self._root_under(in_file.parent)
        title: ExistingTitle = self.check.existing_titles[parent]
        return title.root_id or title.id

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
        for _, external_id, name, external_ids in batch:
            talent_id = self.talent_ids[external_id]
            current = stored.get(talent_id)
            if current is None:
                rows.append(
                    (  # fmt: skip
                        talent_id,
                        self.studio_id,
                        external_id,
                        name,
                        json_text(external_ids),
                        self.writer.now,
                    )
                )
                tally.created += 1
            elif tuple(current) != (name, external_ids):
                changes.append({"id": talent_id, "name": name, "external_ids": external_ids})
                tally.updated += 1
            else:
                tally.unchanged += 1
        self.writer.insert(_TALENT, TALENT_COLUMNS, rows)
        self.writer.update(_TALENT, changes)

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
        rows: list[tuple[Any, ...]] = []
        genre_rows: list[tuple[str, str]] = []
        changes: list[dict[str, Any]] = []
        regenre: list[str] = []
        now = self.writer.now
        for record in batch:
            _, external_id, eidr, kind, parent, name, language, genres, year, synopsis, vis = record
            title_id = self.title_ids[external_id]
            current = stored.get(title_id)
            if current is None:
                parent_id = self.title_ids[parent] if parent is not None else None
                root_id = self._root_under(parent) if parent is not None else None
                rows.append(
                    (  # fmt: skip
                        title_id,
                        self.studio_id,
                        external_id,
                        eidr,
                        kind,
                        parent_id,
                        root_id,
                        name,
                        language,
                        json_text(genres),
                        year,
                        synopsis,
                        vis,
                        0.0,
                        0.0,
                        None,
                        now,
                        now,
                    )
                )
                genre_rows.extend((title_id, genre) for genre in genres)
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
        self.writer.update(_TITLES, changes)
        for chunk in _chunks(regenre):
            self._execute(delete(TitleGenre).where(TitleGenre.title_id.in_(chunk)))
        for row in genre_rows:
            self.derived.add("genres", row)

    # --- assets ---------------------------------------------------------------------------

    def _assets(self, batch: list[Record]) -> None:
        tally = self._tally("asset")
        stored = self._stored_by_external_id("asset", _ASSETS, ("status", *ASSET_FIELDS), batch)
        rows, changes = [], []
        now = self.writer.now
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
                asset_id = new_id("ast")
                key = storage_key_for(self.studio_id, title_id, asset_id, file_name)
                rows.append(
                    (  # fmt: skip
                        asset_id,
                        title_id,
                        self.studio_id,
                        external_id,
                        kind,
                        key,
                        size,
                        sha,
                        duration,
                        w,
                        h,
                        fps,
                        codec,
                        lang,
                        "pending",
                        now,
                        None,
                    )
                )
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
            self.writer.update(table, group)

    # --- rights ---------------------------------------------------------------------------

    def _grants(self, batch: list[Record]) -> None:
        tally = self._tally("rights")
        stored = self._stored_by_external_id("rights", _GRANTS, GRANT_FIELDS, batch)
        rows: list[tuple[Any, ...]] = []
        terms: list[tuple[str, str, str, str]] = []
        changes: list[dict[str, Any]] = []
        reterm: list[str] = []
        now = self.writer.now
        for _, external_id, title_ext, territories, start, end, uses, exclusive in batch:
            title_id = self.title_ids[title_ext]
            current = stored.get(external_id)
            if current is None:
                grant_id = new_id("rgt")
                rows.append(
                    (  # fmt: skip
                        grant_id,
                        title_id,
                        self.studio_id,
                        external_id,
                        json_text(territories),
                        start,
                        end,
                        json_text(uses),
                        exclusive,
                        now,
                    )
                )
                terms.extend((grant_id, t, u, title_id) for t in territories for u in uses)
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
        self.writer.update(_GRANTS, changes)
        for chunk in _chunks(reterm):
            self._execute(delete(RightsTerm).where(RightsTerm.grant_id.in_(chunk)))
        for term in terms:
            self.derived.add("terms", term)

    def _stored_by_external_id(
        self, kind: str, table: Table, fields: Sequence[str], batch: list[Record]
    ) -> dict[Any, Any]:
        """Map the batch's external ids to (id, *fields) of the studio's stored rows."""
        if not self._has[kind]:
            return {}
        found: dict[Any, Any] = {}
        cols = [table.c.id, *(table.c[name] for name in fields)]
        for chunk in _chunks([r[1] for r in batch]):
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
        now = self.writer.now
        for _, external_id, talent_ext, attributes, uses, territories, start, end in batch:
            talent_id = self.talent_ids[talent_ext]
            current = stored.get(external_id)
            if current is None:
                rows.append(
                    (  # fmt: skip
                        new_id("cns"),
                        talent_id,
                        self.studio_id,
                        external_id,
                        json_text(attributes),
                        json_text(uses),
                        json_text(territories),
                        start,
                        end,
                        now,
                    )
                )
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
        self.writer.update(_CONSENTS, changes)

    def _credits(self, batch: list[Record]) -> None:
        tally = self._tally("credit")
        resolved = [
            (self.title_ids[title], self.talent_ids[talent], role)
            for _, title, talent, role in batch
        ]
        stored: set[tuple[str, str, str]] = set()
        if self._has["credit"]:
            title_ids = sorted({credit[0] for credit in resolved})
            for chunk in _chunks(title_ids):
                stmt = select(_CREDITS.c.title_id, _CREDITS.c.talent_id, _CREDITS.c.role).where(
                    _CREDITS.c.title_id.in_(chunk)
                )
                stored.update((t, p, r) for t, p, r in self._execute(stmt))
        rows = []
        now = self.writer.now
        for credit in resolved:
            if credit in stored:
                tally.unchanged += 1
                continue
            rows.append((new_id("crd"), *credit, now))
            tally.created += 1
        self.writer.insert(_CREDITS, CREDIT_COLUMNS, rows)


def _file_name_of(storage_key: str) -> str | None:
    """The file-name segment of a key made by `storage_key_for`, if it has one."""
    # studios/{studio}/titles/{title}/{asset}[/{file name}]
    parts = storage_key.split("/", 5)
    return parts[5] if len(parts) == 6 else None
