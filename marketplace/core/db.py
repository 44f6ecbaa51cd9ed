"""Declarative base, engines and sessions, portable across SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import functools
import json
import re
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import URL, DateTime, Engine, MetaData, String, create_engine, event, make_url
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.types import JSON, TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every dialect (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(_SqliteDateTime())
        return dialect.type_descriptor(self.impl)

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use UTC-aware values")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        # PostgreSQL sessions run in UTC (make_engine): the value is already in UTC, and
        # astimezone() would cost a conversion per row of every page.
        return value if value.tzinfo is UTC else value.astimezone(UTC)


class _SqliteDateTime(sqlite.DATETIME):
    """SQLite's text timestamps read by datetime.fromisoformat, in C, rather than by
    SQLAlchemy's regular expression: a fifth of the time, for every row of every page. It reads
    what SQLAlchemy writes (`2026-11-29 05:20:38.123456`) and SQLite's own CURRENT_TIMESTAMP."""

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        parse = datetime.fromisoformat

        def process(value: str | None) -> datetime | None:
            return None if value is None else parse(value)

        return process


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
        list[str]: JSON(),
        list[Any]: JSON(),
    }


def utcnow() -> datetime:
    return datetime.now(UTC)


def format_utc(value: datetime) -> str:
    """ISO 8601 in UTC with a `Z` (`2026-11-29T05:20:38.123456Z`; no fraction when whole)."""
    if value.tzinfo is not None and value.utcoffset():
        value = value.astimezone(UTC)
    # isoformat() is several times faster than strftime(), which a page calls 50 times.
    return value.replace(tzinfo=None).isoformat() + "Z"


def id_column(prefix: str) -> Mapped[str]:
    """A primary key holding a prefixed opaque id, generated in Python."""
    from marketplace.core.ids import new_id

    return mapped_column(String(40), primary_key=True, default=lambda: new_id(prefix))


def created_at_column() -> Mapped[datetime]:
    return mapped_column(UTCDateTime(), default=utcnow, nullable=False)


# How long a SQLite writer waits for another's write lock (an import holds it while it runs)
# before the request fails with 503 database_busy.
SQLITE_BUSY_TIMEOUT_SECONDS = 15.0

# The largest value a BigInteger column holds, on PostgreSQL and SQLite alike (a larger int is
# an OverflowError in sqlite3, NumericValueOutOfRange in PostgreSQL): a 500, unless the schema
# or the service refuses it first.
BIGINT_MAX = 2**63 - 1


def _sqlite_connect(dbapi_connection: Any, connection_record: Any) -> None:
    # pysqlite's own transaction handling emits no BEGIN before SELECTs and breaks
    # SAVEPOINTs; take it over (SQLAlchemy's documented recipe) and emit BEGIN ourselves.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_SECONDS * 1000)}")
    cursor.close()


# --- the bound on a statement's time ---------------------------------------------------------
#
# PostgreSQL bounds each statement itself (statement_timeout, set per connection in its libpq
# options: no round trip per request). SQLite has no such setting: a progress handler, called
# every _SQLITE_PROGRESS_STEPS virtual-machine instructions, interrupts a statement past its
# deadline (SQLITE_INTERRUPT), which each statement sets as it starts. Both then fail the
# request with 503 database_busy (database_fault: "timeout") and free its worker.

_DEADLINE = "clearcut_statement_deadline"
_BOUND = "clearcut_statement_bound"
# About a tenth of a millisecond of SQLite's work between two looks at the clock.
_SQLITE_PROGRESS_STEPS = 10_000


def _sqlite_bound_connect(seconds: float | None) -> Any:
    def connect(dbapi_connection: Any, connection_record: Any) -> None:
        info = connection_record.info
        info[_BOUND] = seconds
        info[_DEADLINE] = None
        monotonic = time.monotonic

        def past_deadline() -> int:
            deadline = info[_DEADLINE]
            return 1 if deadline is not None and monotonic() > deadline else 0

        dbapi_connection.set_progress_handler(past_deadline, _SQLITE_PROGRESS_STEPS)

    return connect


def _sqlite_checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    # No deadline carries over from the connection's last user (a raw DB-API cursor, which
    # sets none of its own, would otherwise meet it).
    record.info[_DEADLINE] = None


def _sqlite_start_statement(conn: Any, *args: Any) -> None:
    info = conn.connection.info
    bound = info.get(_BOUND)
    info[_DEADLINE] = None if bound is None else time.monotonic() + bound


@contextlib.contextmanager
def statement_bound(session: Session, seconds: float | None) -> Iterator[None]:
    """Bound each statement the block runs by `seconds` (None: no bound) instead of the
    engine's own, within the session's transaction: a long job (an import) in a request whose
    engine bounds statements for interactive use.

    The bound is restored when the block ends; on PostgreSQL with SET LOCAL, which the
    transaction's end also undoes."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        milliseconds = 0 if seconds is None else max(1, int(seconds * 1000))
        connection.exec_driver_sql(f"SET LOCAL statement_timeout = {milliseconds}")
        try:
            yield
        finally:
            if connection.in_transaction() and not connection.invalidated:
                connection.exec_driver_sql("SET LOCAL statement_timeout TO DEFAULT")
        return
    info = connection.connection.info
    if _BOUND not in info:  # an engine without a bound: nothing to change, nothing to restore
        yield
        return
    before = info[_BOUND]
    info[_BOUND], info[_DEADLINE] = seconds, None
    try:
        yield
    finally:
        info[_BOUND], info[_DEADLINE] = before, None


def _sqlite_begin(conn: Any) -> None:
    if conn.get_execution_options().get(_NO_TRANSACTION):
        return  # read_only_engine(): every statement is its own transaction
    # A deferred BEGIN that reads and then writes fails with SQLITE_BUSY under concurrency
    # whatever busy_timeout is; IMMEDIATE takes the write lock up front and waits for it.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


_NO_TRANSACTION = "clearcut_no_transaction"


def read_only_engine(engine: Engine) -> Engine:
    """The engine for requests that only read: each statement is a transaction of its own.

    SQLite: without BEGIN IMMEDIATE, reads no longer take the write lock, and no longer wait
    for each other or for a writer (a test holds the write lock and searches; an import holds it
    for as long as it runs).

    PostgreSQL: autocommit. At READ COMMITTED, the default, every statement of a transaction
    sees its own snapshot anyway, so a reader loses nothing; it saves BEGIN's and COMMIT's round
    trips (0.2 ms of a 1.3 ms `GET /me` and of a 3.5 ms search, served in process on the
    benchmark catalog). psycopg switches modes on the client side, on checkout and check-in:
    the pooled connection is the writers' again.

    Only for work that writes nothing, or one single statement (an API key's last_used_at):
    such a write is committed at once. marketplace.core.web enforces it (read_only).
    """
    if engine.dialect.name == "sqlite":
        # Not isolation_level="AUTOCOMMIT": on check-in SQLAlchemy would hand the connection
        # back to pysqlite's own transaction handling, which _sqlite_connect turned off.
        return engine.execution_options(**{_NO_TRANSACTION: True})
    return engine.execution_options(isolation_level="AUTOCOMMIT")


# Every PostgreSQL session's settings (libpq `options`):
# - TimeZone: timestamps come back in the session's time zone; in UTC, psycopg hands them over
#   with datetime.timezone.utc and UTCDateTime keeps them as they are.
# - No parallel workers for a query: a request's queries are short, and starting workers cost
#   more than they saved. Over 317 searches on the 100,000-title benchmark catalog, the slowest
#   took 21.6 ms with PostgreSQL's default of 2 workers and 12.5 ms without (the benchmark's
#   own searches were unchanged or faster); nor does one request then occupy three cores.
POSTGRES_SESSION_OPTIONS = "-c TimeZone=UTC -c max_parallel_workers_per_gather=0"


def _with_statement_timeout(url: str, seconds: float) -> str:
    """The URL with our statement_timeout ahead of its own options (its own still win)."""
    parsed = make_url(url)
    own = parsed.query.get("options")
    own_text = "" if not own else (own if isinstance(own, str) else " ".join(own))
    ours = f"-c statement_timeout={max(1, int(seconds * 1000))}"
    options = f"{ours} {own_text}".strip()
    return parsed.update_query_dict({"options": options}).render_as_string(hide_password=False)


def _session_options(url: str) -> tuple[URL, str]:
    """The URL without its libpq `options`, and ours followed by them: the URL's own settings
    (`?options=-c lock_timeout=10s`, say) come last, so they win where both set a parameter,
    and ours still apply where they do not."""
    parsed = make_url(url)
    own = parsed.query.get("options")
    if not own:
        return parsed, POSTGRES_SESSION_OPTIONS
    own_text = own if isinstance(own, str) else " ".join(own)
    return parsed.difference_update_query(["options"]), f"{POSTGRES_SESSION_OPTIONS} {own_text}"


def make_engine(url: str, *, statement_timeout: float | None = None, **kwargs: Any) -> Engine:
    """Create an engine with the per-dialect settings this service relies on.

    `statement_timeout` bounds every statement, in seconds (None: unbounded), and is each
    entry point's to choose: the web app takes DATABASE_STATEMENT_TIMEOUT_MS, CLI commands run
    unbounded, and `statement_bound` changes it for a block (an import over HTTP).
    """
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {}).setdefault("timeout", SQLITE_BUSY_TIMEOUT_SECONDS)
        engine = create_engine(
            url, json_serializer=_json_dumps, json_deserializer=json_loads, **kwargs
        )
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        if statement_timeout is not None:
            event.listen(engine, "connect", _sqlite_bound_connect(statement_timeout))
            event.listen(engine, "before_cursor_execute", _sqlite_start_statement)
            event.listen(engine.pool, "checkout", _sqlite_checkout)
        return engine
    if statement_timeout is not None:
        url = _with_statement_timeout(url, statement_timeout)
    parsed, options = _session_options(url)
    kwargs.setdefault("connect_args", {}).setdefault("options", options)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    engine = create_engine(
        parsed, json_serializer=_json_dumps, json_deserializer=json_loads, **kwargs
    )
    event.listen(engine.pool, "checkout", functools.partial(_ping_if_idle, engine.dialect))
    event.listen(engine.pool, "checkin", _note_checkin)
    return engine


# A connection idle for longer than this is tested before use (see _ping_if_idle).
IDLE_BEFORE_PING_SECONDS = 5.0


def _ping_if_idle(dialect: Dialect, dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """Test a pooled connection that has been idle a while; replace it if the server is gone.

    SQLAlchemy's pool_pre_ping tests every checkout: one more round trip on every request,
    a tenth of a fast search. A connection used a moment ago is almost surely alive; one idle
    for seconds may have been cut by a restart, a failover or a firewall. A request that meets
    a connection broken within the last few seconds fails once, and the pool then discards
    every connection of that generation (SQLAlchemy's disconnect handling).
    """
    idle_since = record.info.get("checked_in_at")
    if idle_since is None or time.monotonic() - idle_since < IDLE_BEFORE_PING_SECONDS:
        return  # new, or used a moment ago
    try:
        # The dialect's own ping, as pool_pre_ping uses: it leaves no transaction open.
        dialect.do_ping(dbapi_connection)
    except Exception as exc:
        # The pool discards this connection and checks out another (a fresh one if need be).
        raise DisconnectionError("the pooled connection is gone") from exc


def _note_checkin(dbapi_connection: Any, record: Any) -> None:
    record.info["checked_in_at"] = time.monotonic()


def _json_dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# 19 digits in a row may be an integer past 64 bits, which orjson reads as a float.
_LONG_NUMBER = re.compile(r"\d{19}")
_LONG_NUMBER_BYTES = re.compile(rb"\d{19}")


def json_loads(text: str | bytes) -> Any:
    """Read a stored JSON value (SQLite hands text, psycopg bytes) as the json module would.

    orjson takes a tenth of the json module's time, which a page of 50 titles pays for each
    one's genres. The json module still reads what orjson would read otherwise: NaN and
    Infinity (which json.dumps writes and orjson refuses) and integers past 64 bits.
    """
    pattern = _LONG_NUMBER_BYTES if text.__class__ is bytes else _LONG_NUMBER
    if pattern.search(text) is None:  # type: ignore[arg-type]
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


@contextlib.contextmanager
def unless_busy(session: Session) -> Iterator[None]:
    """Run the block's single bookkeeping write now, or skip it if it would wait (SQLite).

    A SQLite session without a transaction of its own (read_only_engine) must take the write
    lock to write, and another writer (an import) may hold it for minutes: the block then runs
    without waiting, and is skipped, error and all, if the lock is taken. Within a transaction
    the write lock is already held and the block runs as it is; on PostgreSQL the statement is
    the one to say how it waits (FOR UPDATE SKIP LOCKED).
    """
    dbapi = session.connection().connection.dbapi_connection
    if not isinstance(dbapi, sqlite3.Connection) or dbapi.in_transaction:
        yield
        return
    dbapi.execute("PRAGMA busy_timeout=0")
    try:
        yield
    except OperationalError as exc:
        if database_fault(exc) != "busy":
            raise
    finally:
        dbapi.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_SECONDS * 1000)}")


# SQLite's primary result codes for a lock another connection holds, and for a statement
# interrupted (by the progress handler, past its deadline).
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_INTERRUPT = 5, 6, 9
# PostgreSQL SQLSTATEs (Appendix A) after which the same request may well succeed: a
# serialization failure, a deadlock, lock_not_available (lock_timeout); query_canceled
# (statement_timeout), after which the same request would run as long again; and those of a
# server that cannot serve: class 08 (connection), too many connections, shutting down,
# starting up.
_PG_BUSY = ("40001", "40P01", "55P03")
_PG_TIMEOUT = "57014"
_PG_UNAVAILABLE = ("08", "53300", "57P01", "57P02", "57P03")


def database_fault(exc: BaseException) -> str | None:
    """`busy` for contention a retry may get past, `timeout` for a statement stopped at its
    bound (statement_timeout, SQLite's progress handler), `unavailable` for a database that
    cannot be reached, None for every other error (a bug, which stays a 500)."""
    if isinstance(exc, PoolTimeout):
        return "busy"  # every pooled connection in use for pool_timeout seconds
    if not isinstance(exc, DBAPIError):
        return None
    original = exc.orig
    if isinstance(original, sqlite3.Error):
        code = getattr(original, "sqlite_errorcode", None)
        if code is None:
            return None
        if code & 0xFF == _SQLITE_INTERRUPT:
            return "timeout"
        return "busy" if (code & 0xFF) in (_SQLITE_BUSY, _SQLITE_LOCKED) else None
    sqlstate = getattr(original, "sqlstate", None)
    if sqlstate is None:
        # psycopg reports a connection that fails or is lost without a SQLSTATE.
        lost = exc.connection_invalidated or type(original).__name__ == "OperationalError"
        return "unavailable" if lost else None
    if sqlstate in _PG_BUSY:
        return "busy"
    if sqlstate == _PG_TIMEOUT:
        return "timeout"
    if sqlstate.startswith(_PG_UNAVAILABLE):
        return "unavailable"
    return None


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"
