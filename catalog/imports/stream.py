"""The import's fast path on PostgreSQL: write new records while the file is still being checked.

Checking a file is Python's work and writing it is the server's: one after the other, each
waits for the other. So the records that are certainly new — a title or talent the studio does
not have, an asset, grant or consent whose external id the studio does not use (`KeyFilter`),
a credit of a new title — are written as soon as they pass their own checks, once what they name
is written too: batches of rows go to a thread that COPYs them into the tables, parents first,
while the check reads on. The rest (records that may already exist, and those naming a title or
talent further down the file) go to the spill for the second pass (`catalog.imports.apply`).

Whether a record may exist is asked of its own key. It used to be asked of its type: a studio
holding one asset made through the API sent every asset of its next import to the second pass,
whose lookups by external id PostgreSQL then planned from statistics of a studio of one asset,
reading for each batch every asset written before it: a time growing with the square of the
file (issue 16).

It all happens inside a savepoint. If the check then finds a bad row, the savepoint is rolled
back and the import writes nothing but its report. A key the file repeats makes a COPY fail
before the check has seen the repeat; the check reports it as usual and the failure is dropped
with the savepoint. A COPY that fails on a clean file can only be a concurrent writer's doing.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, func, literal_column, select
from sqlalchemy.orm import Session

from catalog.imports.apply import (
    ASSET_COLUMNS,
    CONSENT_COLUMNS,
    CREDIT_COLUMNS,
    GENRE_COLUMNS,
    GRANT_COLUMNS,
    TALENT_COLUMNS,
    TERM_COLUMNS,
    TITLE_COLUMNS,
    NewRows,
    Tally,
    kinds_in_catalog,
)
from catalog.imports.check import Check
from catalog.imports.parse import Record
from catalog.imports.write import CopyThread, Row, stored_now
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

__all__ = ["BATCH_ROWS", "KeyFilter", "Stream", "existing_keys"]

# Rows of a table sent in one go: large enough that a COPY's round trip is small beside it.
BATCH_ROWS = 5000
# A KeyFilter holds this many keys exactly, and more in a Bloom filter of this many bits a key.
EXACT_KEYS = 100_000
FILTER_BITS_PER_KEY = 64


def _table(model: type[Any]) -> Table:
    return cast(Table, model.__table__)


# Each table with its columns and the tables its rows reference (written before it).
_TABLES: dict[str, tuple[Table, tuple[str, ...], tuple[str, ...]]] = {
    "talent": (_table(Talent), TALENT_COLUMNS, ()),
    "titles": (_table(Title), TITLE_COLUMNS, ()),
    "title_genres": (_table(TitleGenre), GENRE_COLUMNS, ("titles",)),
    "assets": (_table(Asset), ASSET_COLUMNS, ("titles",)),
    "rights_grants": (_table(RightsGrant), GRANT_COLUMNS, ("titles",)),
    "rights_terms": (_table(RightsTerm), TERM_COLUMNS, ("rights_grants",)),
    "consents": (_table(Consent), CONSENT_COLUMNS, ("talent",)),
    "credits": (_table(Credit), CREDIT_COLUMNS, ("titles", "talent")),
}


class KeyFilter:
    """The external ids a studio already uses for one record type, held compactly.

    `key in filter` is False for a key that is certainly not among them, and True for one that
    is, or (rarely) for a new key taken for one of them; such a record just goes to the second
    pass, which looks it up. Up to `EXACT_KEYS` keys, a set of their 64-bit hashes (a new key is
    taken for a known one once in billions); past that a Bloom filter of one probe into 64 to 128
    bits a key (16 MB for 2 million keys, where the set would take 120 MB, and half the time to
    build; a new key is taken for a known one once in 64 at most).
    """

    __slots__ = ("_bits", "_exact", "_mask", "count")

    def __init__(self, hashes: array[int]) -> None:
        """Hold the keys whose `hash()` values are `hashes`."""
        self.count = len(hashes)
        self._exact: frozenset[int] | None = None
        self._bits, self._mask = bytearray(), 0
        if self.count <= EXACT_KEYS:
            self._exact = frozenset(hashes)
            return
        size = 64
        while size < self.count * FILTER_BITS_PER_KEY:
            size *= 2
        bits = self._bits = bytearray(size // 8)
        mask = self._mask = size // 8 - 1
        # Bits 0-2 of the hash pick the bit, bits 3 and up the byte.
        for digest in hashes:
            bits[(digest >> 3) & mask] |= 1 << (digest & 7)

    @classmethod
    def of(cls, keys: Iterable[str]) -> KeyFilter:
        return cls(array("q", map(hash, keys)))

    def __contains__(self, key: object) -> bool:
        digest = hash(key)
        if self._exact is not None:
            return digest in self._exact
        return bool(self._bits[(digest >> 3) & self._mask] >> (digest & 7) & 1)


# A KeyFilter's keys come in this many rows (so none is large, however many keys there are).
_KEY_ROWS = 64


def existing_keys(session: Session, studio_id: str) -> dict[str, KeyFilter]:
    """The studio's asset, rights grant and consent external ids, as `KeyFilter`s by type.

    They come joined by newlines, thousands in a row, which Python splits and hashes in a call
    or two: a row (or an array element) for each key costs twice the time. A key holding a
    newline comes out in pieces, which can only make a new key taken for a known one (a key in
    an import file has no control characters), never the other way round.
    """
    filters = {}
    for kind, model in (("asset", Asset), ("rights", RightsGrant), ("consent", Consent)):
        stmt = (
            select(func.string_agg(model.external_id, literal_column("E'\\n'")))
            .where(model.studio_id == studio_id, model.external_id.is_not(None))
            .group_by(func.hashtext(model.id).op("&")(_KEY_ROWS - 1))
        )
        hashes = array("q")
        for joined in session.scalars(stmt):
            hashes.extend(map(hash, joined.split("\n")))
        filters[kind] = KeyFilter(hashes)
    return filters


class Stream:
    """Write one file's new records while it is checked, inside a savepoint (PostgreSQL only).

    Takes `check.sink`. Call `finish` once the file is found clean, to write what is left and
    keep it all; `close` (in a `finally`) rolls back whatever was not finished.
    """

    def __init__(self, session: Session, studio_id: str, check: Check, now: datetime) -> None:
        self._has = kinds_in_catalog(session, studio_id)
        self._known = existing_keys(session, studio_id)
        self._savepoint = session.begin_nested()
        connection = session.connection()  # emits the SAVEPOINT
        self.rows = NewRows(studio_id, check, stored_now(connection, now))
        self._created = dict.fromkeys(
            ("talent", "title", "asset", "rights", "consent", "credit"), 0
        )
        self._writers: dict[str, tuple[str, Callable[[Record], bool]]] = {
            "talent": ("talent", self._talent_record),
            "title0": ("title", self._title_record),
            "title1": ("title", self._title_record),
            "title2": ("title", self._title_record),
            "asset": ("asset", self._asset_record),
            "rights": ("rights", self._rights_record),
            "consent": ("consent", self._consent_record),
            "credit": ("credit", self._credit_record),
        }
        self._check = check
        self._titles: set[str] = set()  # the new titles written (or queued)
        self._talent: set[str] = set()
        self._buffers: dict[str, list[Row]] = {name: [] for name in _TABLES}
        self._copier = CopyThread(connection)
        self._open = True
        check.sink = self.take

    def take(self, stream: str, record: Record) -> bool:
        """Write `record` if it is certainly new and what it names is written; else say no."""
        kind, write = self._writers[stream]
        if not write(record):
            return False
        self._created[kind] += 1
        return True

    def _talent_record(self, record: Record) -> bool:
        external_id = record[1]
        if external_id in self._check.existing_talent:
            return False
        talent_id = self.rows.talent_ids[external_id] = self.rows.mint("tal")
        self._talent.add(external_id)
        self._add("talent", self.rows.talent(talent_id, record))
        return True

    def _title_record(self, record: Record) -> bool:
        external_id, parent = record[1], record[4]
        if external_id in self._check.existing_titles:
            return False
        if parent is not None and not self._title_ready(parent):
            return False
        title_id = self.rows.title_ids[external_id] = self.rows.mint("ttl")
        self._titles.add(external_id)
        title, genres = self.rows.title(title_id, record)
        self._add("titles", title)
        for genre in genres:
            self._add("title_genres", genre)
        return True

    def _asset_record(self, record: Record) -> bool:
        if record[1] in self._known["asset"] or not self._title_ready(record[2]):
            return False
        self._add("assets", self.rows.asset(record))
        return True

    def _rights_record(self, record: Record) -> bool:
        if record[1] in self._known["rights"] or not self._title_ready(record[2]):
            return False
        grant, terms = self.rows.grant(record)
        self._add("rights_grants", grant)
        for term in terms:
            self._add("rights_terms", term)
        return True

    def _consent_record(self, record: Record) -> bool:
        if record[1] in self._known["consent"] or not self._talent_ready(record[2]):
            return False
        self._add("consents", self.rows.consent(record))
        return True

    def _credit_record(self, record: Record) -> bool:
        _, title, talent, role = record
        # Only a title the studio already has can already have the credit.
        if not (title in self._titles or not self._has["credit"]):
            return False
        if not (self._title_ready(title) and self._talent_ready(talent)):
            return False
        rows = self.rows
        self._add("credits", rows.credit(rows.title_ids[title], rows.talent_ids[talent], role))
        return True

    @property
    def tallies(self) -> dict[str, Tally]:
        """What was written, by record type."""
        return {kind: Tally(created=n) for kind, n in self._created.items() if n}

    def finish(self) -> None:
        """Write what is still waiting, wait for the server, and keep it all."""
        for name in _TABLES:
            self._send(name)
        self._open = False
        try:
            self._copier.close()
        except BaseException:
            self._savepoint.rollback()
            raise
        self._savepoint.commit()

    def close(self) -> None:
        """Drop everything written, unless `finish` ran."""
        if self._open:
            self._open = False
            self._copier.abort()
            self._savepoint.rollback()

    def _title_ready(self, external_id: str) -> bool:
        return external_id in self._titles or external_id in self._check.existing_titles

    def _talent_ready(self, external_id: str) -> bool:
        return external_id in self._talent or external_id in self._check.existing_talent

    def _add(self, name: str, row: Row) -> None:
        buffer = self._buffers[name]
        buffer.append(row)
        if len(buffer) >= BATCH_ROWS:
            self._send(name)

    def _send(self, name: str) -> None:
        table, columns, parents = _TABLES[name]
        for parent in parents:
            # The rows this batch references must reach the server first.
            self._send(parent)
        rows = self._buffers[name]
        if rows:
            self._buffers[name] = []
            self._copier.put(table, columns, rows)
