"""The import's fast path on PostgreSQL: write new records while the file is still being checked.

Checking a file is Python's work and writing it is the server's: one after the other, each
waits for the other. So the records that are certainly new — a title or talent the studio does
not have, an asset, grant or consent whose external id the studio does not use
(`catalog.imports.check.KeyFilter`), a credit of a new title — are written as soon as they pass
their own checks, once what they name is written too: batches of rows go to a thread that COPYs
them into the tables, parents first, while the check reads on. The rest (records that may
already exist, and those naming a title or talent further down the file) go to the spill for
the second pass (`catalog.imports.apply`).

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

from collections.abc import Callable
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table
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

__all__ = ["BATCH_ROWS", "Stream"]

# Rows of a table sent in one go: large enough that a COPY's round trip is small beside it.
BATCH_ROWS = 5000


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


class Stream:
    """Write one file's new records while it is checked, inside a savepoint (PostgreSQL only).

    Takes `check.sink`. Call `finish` once the file is found clean, to write what is left and
    keep it all; `close` (in a `finally`) rolls back whatever was not finished.
    """

    def __init__(self, session: Session, studio_id: str, check: Check, now: datetime) -> None:
        self._has = kinds_in_catalog(session, studio_id)
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
        if record[1] in self._check.existing_keys["asset"] or not self._title_ready(record[2]):
            return False
        self._add("assets", self.rows.asset(record))
        return True

    def _rights_record(self, record: Record) -> bool:
        if record[1] in self._check.existing_keys["rights"] or not self._title_ready(record[2]):
            return False
        grant, terms = self.rows.grant(record)
        self._add("rights_grants", grant)
        for term in terms:
            self._add("rights_terms", term)
        return True

    def _consent_record(self, record: Record) -> bool:
        if record[1] in self._check.existing_keys["consent"] or not self._talent_ready(record[2]):
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
