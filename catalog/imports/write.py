"""How the importer writes rows in bulk: COPY on PostgreSQL, multi-row INSERTs on SQLite.

Values arrive in the form the database stores (dates as ISO text, JSON columns as compact JSON
text, `created_at` as the column type renders it through the dialect), so the rows are exactly
those the ORM would have written.
"""

from __future__ import annotations

import contextlib
import json
import queue
import sqlite3
import threading
from collections.abc import Sequence
from datetime import date, datetime
from itertools import chain
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, update

from catalog.models import Title

_TITLES = cast(Table, Title.__table__)
_DATE_FIELDS = frozenset({"start", "end"})

Row = tuple[Any, ...]
# Rows by column: one sequence of values for each column, all of the same length.
Columns = list[Sequence[Any]]

# Rows in one SQLite INSERT statement (fewer when the table's columns would pass SQLite's limit
# on bound parameters). See `SqliteInserter`.
SQLITE_ROWS_PER_STATEMENT = 500

# json.dumps would build this encoder anew for every value, as its options are not the defaults.
_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def json_text(value: Any) -> str:
    """A JSON column's value as the engine's own serializer (marketplace.core.db) writes it."""
    return _JSON.encode(value)


def stored_now(connection: Connection, now: datetime) -> Any:
    """`now` as the timestamp columns store it through this connection's dialect.

    On SQLite a naive UTC text: handing sqlite3 the datetime would add "+00:00".
    """
    dialect = connection.dialect
    processor = _TITLES.c.created_at.type.dialect_impl(dialect).bind_processor(dialect)
    return processor(now) if processor is not None else now


class SqliteInserter:
    """Insert rows into SQLite hundreds at a time: `INSERT ... VALUES (...), (...), ...`.

    `executemany` steps a one-row statement once per row, and pays the sqlite3 module's work
    around each step (resetting the statement, releasing and retaking the GIL) every time: one
    statement for hundreds of rows pays it once. On the generated catalog that is most of what
    the import spends in Python around SQLite's own work, and a sixth of the whole import.

    Goes straight to the DB-API connection, so errors are `sqlite3` ones.
    """

    def __init__(self, dbapi_connection: sqlite3.Connection) -> None:
        self._dbapi = dbapi_connection
        self._variables = dbapi_connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        self._sql: dict[tuple[str, tuple[str, ...], int], str] = {}

    def insert(self, table: str, columns: tuple[str, ...], rows: Sequence[Row]) -> None:
        if not rows:
            return
        per = max(1, min(SQLITE_ROWS_PER_STATEMENT, self._variables // len(columns)))
        whole = len(rows) - len(rows) % per
        cursor = self._dbapi.cursor()
        try:
            if whole:
                cursor.executemany(
                    self._statement(table, columns, per),
                    [tuple(chain.from_iterable(rows[i : i + per])) for i in range(0, whole, per)],
                )
            if whole < len(rows):
                # The few rows left one by one: a statement for each count would fill sqlite3's
                # cache of prepared statements with large ones.
                cursor.executemany(self._statement(table, columns, 1), rows[whole:])
        finally:
            cursor.close()

    def insert_columns(self, table: str, columns: tuple[str, ...], values: Columns) -> None:
        """Insert rows given column by column, as `insert` does rows.

        The statements' parameters, row after row, are laid out by one slice assignment for
        each column rather than by a pass over every value of every row: half the time, and
        the caller builds no tuple for each row.
        """
        count = len(values[0]) if values else 0
        if not count:
            return
        width = len(columns)
        flat: list[Any] = [None] * (count * width)
        for index, column in enumerate(values):
            flat[index::width] = column
        per = max(1, min(SQLITE_ROWS_PER_STATEMENT, self._variables // width))
        whole = (count - count % per) * width
        step = per * width
        cursor = self._dbapi.cursor()
        try:
            if whole:
                cursor.executemany(
                    self._statement(table, columns, per),
                    [flat[i : i + step] for i in range(0, whole, step)],
                )
            if whole < len(flat):
                cursor.executemany(
                    self._statement(table, columns, 1),
                    [flat[i : i + width] for i in range(whole, len(flat), width)],
                )
        finally:
            cursor.close()

    def _statement(self, table: str, columns: tuple[str, ...], count: int) -> str:
        sql = self._sql.get((table, columns, count))
        if sql is None:
            names = ", ".join(f'"{c}"' for c in columns)
            values = ", ".join(["(" + ", ".join("?" * len(columns)) + ")"] * count)
            # Names from the models' own metadata, values bound: nothing here comes from input.
            sql = f"INSERT INTO {table} ({names}) VALUES {values}"  # noqa: S608
            self._sql[(table, columns, count)] = sql
        return sql


def _sqlite3(connection: Connection) -> sqlite3.Connection:
    return cast(sqlite3.Connection, connection.connection.dbapi_connection)


class BulkWriter:
    """Insert many rows cheaply: COPY on PostgreSQL, multi-row INSERTs on SQLite.

    On PostgreSQL one COPY stays open while rows for the same table keep coming, so the server
    indexes one batch while the next is being prepared; any other statement (`flush` first)
    ends it.
    """

    def __init__(self, connection: Connection, now: datetime) -> None:
        self.connection = connection
        self.postgres = connection.dialect.name == "postgresql"
        self.now = stored_now(connection, now)
        self._sqlite = None if self.postgres else SqliteInserter(_sqlite3(connection))
        self._copying: tuple[str, tuple[str, ...]] | None = None
        self._copy: Any = None
        self._stack = contextlib.ExitStack()

    def insert(self, table: Table, columns: tuple[str, ...], rows: Sequence[Row]) -> None:
        if not rows:
            return
        if self.postgres:
            if self._copying != (table.name, columns):
                self._start_copy(table, columns)
            write_row = self._copy.write_row
            for row in rows:
                write_row(row)
            return
        cast(SqliteInserter, self._sqlite).insert(table.name, columns, rows)

    def insert_columns(self, table: Table, columns: tuple[str, ...], values: Columns) -> None:
        """Insert rows given column by column (`Columns`)."""
        if self.postgres:
            self.insert(table, columns, list(zip(*values, strict=True)))
            return
        cast(SqliteInserter, self._sqlite).insert_columns(table.name, columns, values)

    def _start_copy(self, table: Table, columns: tuple[str, ...]) -> None:
        from psycopg import sql
        from psycopg.copy import QueuedLibpqWriter

        self.flush()
        statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, columns))
        )
        dbapi: Any = self.connection.connection.dbapi_connection
        cursor = self._stack.enter_context(dbapi.cursor())
        # A thread sends the data while this one prepares the next rows.
        self._copy = self._stack.enter_context(
            cursor.copy(statement, writer=QueuedLibpqWriter(cursor))
        )
        self._copying = (table.name, columns)

    def flush(self) -> None:
        """End the open COPY, if any, so that other statements can run."""
        if self._copying is not None:
            self._copying = self._copy = None
            self._stack.close()

    def abort(self, exc: BaseException) -> None:
        """End the open COPY with an error: the server discards it."""
        if self._copying is not None:
            self._copying = self._copy = None
            self._stack.__exit__(type(exc), exc, exc.__traceback__)

    def update(self, table: Table, changes: list[dict[str, Any]]) -> None:
        """Update rows by id; each dict holds `id` and the new values of the same columns."""
        if not changes:
            return
        self.flush()
        names = [name for name in changes[0] if name != "id"]
        stmt = (
            update(table)
            .where(table.c.id == bindparam("row_id"))
            .values({name: bindparam(f"new_{name}") for name in names})
        )
        params = [
            {"row_id": change["id"], **{f"new_{n}": _python(n, change[n]) for n in names}}
            for change in changes
        ]
        self.connection.execute(stmt, params)


def _python(name: str, value: Any) -> Any:
    """A spilled value as the ORM column types take it (dates travel as ISO text)."""
    if name in _DATE_FIELDS and isinstance(value, str):
        return date.fromisoformat(value)
    return value


class CopyThread:
    """COPY batches of rows from a thread of its own, so the server writes while the caller reads.

    Batches are written in the order they are put, each through one COPY (kept open while the
    next batch is for the same table). The caller must not use the connection until `close` or
    `abort` returns. After an error the thread only drains the queue; `close` raises it.
    """

    def __init__(self, connection: Connection, depth: int = 3) -> None:
        self._dbapi: Any = connection.connection.dbapi_connection
        self._jobs: queue.Queue[tuple[str, tuple[str, ...], list[Row]] | None] = queue.Queue(depth)
        self._abort = False
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="catalog-import-copy", daemon=True)
        self._thread.start()

    def put(self, table: Table, columns: tuple[str, ...], rows: list[Row]) -> None:
        """Queue rows for `table` (waiting while the queue is full)."""
        if rows:
            self._jobs.put((table.name, columns, rows))

    def close(self) -> None:
        """Wait for every queued row to be written; raise what the thread ran into, if anything."""
        self._jobs.put(None)
        self._thread.join()
        if self.error is not None:
            raise self.error

    def abort(self) -> None:
        """Drop the queued rows and end the open COPY with an error (the server discards it)."""
        self._abort = True
        self._jobs.put(None)
        self._thread.join()

    def _run(self) -> None:
        stack = contextlib.ExitStack()
        copying: tuple[str, tuple[str, ...]] | None = None
        copy: Any = None
        while (job := self._jobs.get()) is not None:
            if self.error is not None or self._abort:
                continue
            table, columns, rows = job
            try:
                if copying != (table, columns):
                    stack.close()
                    copy = self._start(stack, table, columns)
                    copying = (table, columns)
                write_row = copy.write_row
                for row in rows:
                    write_row(row)
            except BaseException as exc:  # handed to the caller by close()
                self.error = exc
                copying = None
                with contextlib.suppress(BaseException):
                    stack.__exit__(type(exc), exc, exc.__traceback__)
        try:
            if self._abort or self.error is not None:
                stopped = RuntimeError("import aborted")
                stack.__exit__(RuntimeError, stopped, None)
            else:
                stack.close()
        except BaseException as exc:
            self.error = self.error or exc

    def _start(self, stack: contextlib.ExitStack, table: str, columns: tuple[str, ...]) -> Any:
        from psycopg import sql

        statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
        )
        cursor = stack.enter_context(self._dbapi.cursor())
        return stack.enter_context(cursor.copy(statement))
