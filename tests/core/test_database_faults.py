"""A database that is busy or out of reach: 503 with a stable code and Retry-After, nothing
written, nothing about the database in the answer; every other database error stays a 500."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, make_url, text
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from marketplace.app import create_app
from marketplace.core import db as db_module
from marketplace.core.db import database_fault
from marketplace.core.storage.fake import InMemoryStorage
from tests.helpers import problem, sqlite_write_lock_held
from tests.world import World


def _wrapped(original: BaseException) -> OperationalError:
    return OperationalError("SELECT 1", {}, original)


@pytest.mark.parametrize(
    ("error", "fault"),
    [
        (_wrapped(psycopg.errors.DeadlockDetected()), "busy"),
        (_wrapped(psycopg.errors.SerializationFailure()), "busy"),
        (_wrapped(psycopg.errors.LockNotAvailable()), "busy"),
        (_wrapped(psycopg.errors.QueryCanceled()), "timeout"),
        (PoolTimeout("QueuePool limit of size 10 overflow 10 reached"), "busy"),
        (_wrapped(psycopg.OperationalError("connection refused")), "unavailable"),
        (_wrapped(psycopg.errors.AdminShutdown()), "unavailable"),
        (_wrapped(psycopg.errors.TooManyConnections()), "unavailable"),
        (_wrapped(psycopg.errors.ConnectionFailure()), "unavailable"),
        # Bugs and broken deployments stay 500s.
        (ProgrammingError("SELECT", {}, psycopg.errors.UndefinedTable()), None),
        (_wrapped(psycopg.errors.UniqueViolation()), None),
        (_wrapped(sqlite3.OperationalError("no such table: titles")), None),
        (ValueError("not a database error"), None),
    ],
)
def test_database_errors_are_told_apart(error: BaseException, fault: str | None) -> None:
    assert database_fault(error) == fault


def test_sqlites_lock_codes_are_busy() -> None:
    locked = sqlite3.OperationalError("database is locked")
    locked.sqlite_errorcode = 5  # type: ignore[attr-defined]  # SQLITE_BUSY, as sqlite3 sets
    assert database_fault(_wrapped(locked)) == "busy"
    locked.sqlite_errorcode = 6 | (1 << 8)  # type: ignore[attr-defined]  # SQLITE_LOCKED_SHAREDCACHE
    assert database_fault(_wrapped(locked)) == "busy"


def _count_titles(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM titles")).scalar_one())


def _new_title(client: Any, world: World) -> Any:
    return client.post(
        "/api/v1/titles",
        json={"external_id": "busy-1", "name": "Busy Harbour", "kind": "film"},
        headers=world["studio_a"].headers,
    )


@pytest.mark.committing
def test_a_write_that_meets_a_held_sqlite_lock_is_a_503(
    committed_world: World,
    committing_engine: Engine,
    settings: Any,
    storage: InMemoryStorage,
    payments: Any,
    database_url: str,
    dialect: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if dialect != "sqlite":
        pytest.skip("SQLite's database-wide write lock")
    monkeypatch.setattr(db_module, "SQLITE_BUSY_TIMEOUT_SECONDS", 0.2)
    app = create_app(settings, storage=storage, payments=payments)
    client = app.test_client()
    with sqlite_write_lock_held(database_url):
        response = _new_title(client, committed_world)
    body = problem(response, 503, "database_busy")
    assert response.headers["Retry-After"] == "1"
    assert "locked" not in body["detail"] and "INSERT" not in response.get_data(as_text=True)
    assert _count_titles(committing_engine) == 0
    assert (
        _new_title(client, committed_world).status_code == 201
    )  # the retry, once the lock is gone
    app.extensions["clearcut"].session_factory.kw["bind"].dispose()


@pytest.fixture
def lock_timeout_url(database_url: str, dialect: str) -> str:
    if dialect != "postgresql":
        pytest.skip("PostgreSQL's lock_timeout")
    options = "-c TimeZone=UTC -c lock_timeout=200"
    return (
        make_url(database_url)
        .update_query_dict({"options": options})
        .render_as_string(hide_password=False)
    )


@pytest.mark.committing
def test_a_write_that_waits_past_postgres_lock_timeout_is_a_503(
    committed_world: World,
    committing_engine: Engine,
    settings: Any,
    storage: InMemoryStorage,
    payments: Any,
    lock_timeout_url: str,
) -> None:
    app = create_app(
        replace(settings, database_url=lock_timeout_url), storage=storage, payments=payments
    )
    client = app.test_client()
    with committing_engine.connect() as holder:
        # A new title's foreign key takes a share lock on its studio: held here, it waits.
        holder.execute(
            text("SELECT id FROM organizations WHERE id = :id FOR UPDATE"),
            {"id": committed_world["studio_a"].org_id},
        )
        response = _new_title(client, committed_world)
        holder.rollback()
    problem(response, 503, "database_busy")
    assert response.headers["Retry-After"] == "1"
    assert _count_titles(committing_engine) == 0
    assert _new_title(client, committed_world).status_code == 201
    app.extensions["clearcut"].session_factory.kw["bind"].dispose()


@pytest.fixture
def unreachable(settings: Any, storage: InMemoryStorage, payments: Any) -> Iterator[Any]:
    # Port 1 on this host refuses at once; the URL must not reach the client.
    url = "postgresql+psycopg://clearcut:hunter2@127.0.0.1:1/secretdb?connect_timeout=2"
    app = create_app(replace(settings, database_url=url), storage=storage, payments=payments)
    yield app.test_client()
    app.extensions["clearcut"].session_factory.kw["bind"].dispose()


def test_an_unreachable_database_is_a_503(unreachable: Any) -> None:
    key = "cc_0123456789ab_" + "x" * 43  # well formed, so that it is looked up
    response = unreachable.get("/api/v1/me", headers={"Authorization": f"Bearer {key}"})
    problem(response, 503, "database_unavailable")
    assert response.headers["Retry-After"] == "5"
    text_ = response.get_data(as_text=True)
    assert "hunter2" not in text_ and "secretdb" not in text_ and "127.0.0.1" not in text_
    ready = unreachable.get("/readyz")
    assert ready.status_code == 503 and ready.get_json()["checks"]["database"] == "unavailable"
