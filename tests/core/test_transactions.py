"""Requests and transactions: read-only handlers run without one and cannot write; pooled
connections recover."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from flask import Blueprint
from sqlalchemy import Engine, event, make_url, text, update
from sqlalchemy.orm import Session

from marketplace.accounts.models import Organization
from marketplace.app import create_app
from marketplace.core import db as db_module
from marketplace.core.api import format_utc
from marketplace.core.db import make_engine
from marketplace.core.storage.fake import InMemoryStorage
from marketplace.core.web import db, is_read_only_view, read_only
from tests.catalog.factories import make_title
from tests.helpers import problem, sqlite_write_lock_held
from tests.world import World, build_world


@pytest.fixture
def served(
    committing_engine: Engine, settings: Any, storage: InMemoryStorage, payments: Any
) -> Iterator[tuple[Any, World, list[tuple[str, bool]]]]:
    """The app on its own engine, as in production, and each statement it runs beside whether
    it ran inside a transaction the app opened."""
    with Session(committing_engine, expire_on_commit=False) as session:
        world = build_world(session)
        make_title(session, world["studio_a"].org_id, name="Lantern Bay", visibility="listed")
        session.commit()
    app = create_app(settings, storage=storage, payments=payments)
    engine = app.extensions["clearcut"].session_factory.kw["bind"]
    statements: list[tuple[str, bool]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        dbapi = conn.connection.dbapi_connection
        if engine.dialect.name == "postgresql":
            in_transaction = not dbapi.autocommit
        else:
            in_transaction = dbapi.in_transaction or statement.startswith("BEGIN")
        statements.append((statement.split(None, 1)[0].upper(), in_transaction))

    yield app.test_client(), world, statements
    engine.dispose()


@pytest.mark.committing
class TestReadOnlyRequests:
    def test_search_and_me_run_without_a_transaction(
        self, served: tuple[Any, World, list[tuple[str, bool]]]
    ) -> None:
        # SQLite: no BEGIN IMMEDIATE; PostgreSQL: autocommit (see db.read_only_engine).
        client, world, statements = served
        headers = world["developer_x"].headers
        for method, path in (
            ("GET", "/api/v1/me"),
            ("GET", "/api/v1/titles?q=lantern"),
            ("GET", "/api/v1/titles"),
            ("HEAD", "/api/v1/titles"),
        ):
            statements.clear()
            response = client.open(path, method=method, headers=headers)
            assert response.status_code == 200, response.get_data(as_text=True)
            assert statements, "the request ran no statement"
            assert not any(in_transaction for _, in_transaction in statements), statements
        items = client.get("/api/v1/titles?q=lantern", headers=headers).get_json()["items"]
        assert [i["name"] for i in items] == ["Lantern Bay"]

    def test_the_key_is_still_marked_used(
        self, served: tuple[Any, World, list[tuple[str, bool]]], committing_engine: Engine
    ) -> None:
        client, world, _ = served
        assert client.get("/api/v1/me", headers=world["developer_x"].headers).status_code == 200
        with committing_engine.connect() as conn:
            used = conn.execute(
                text("SELECT last_used_at FROM api_keys WHERE user_id = :u"),
                {"u": world["developer_x"].user_id},
            ).scalar()
        assert used is not None

    def test_a_write_still_runs_in_one_transaction(
        self, served: tuple[Any, World, list[tuple[str, bool]]]
    ) -> None:
        client, world, statements = served
        # After a read on the same pooled connection, which then ran in autocommit on PostgreSQL.
        assert client.get("/api/v1/me", headers=world["studio_a"].headers).status_code == 200
        statements.clear()
        response = client.post(
            "/api/v1/titles",
            json={"external_id": "lb-2", "name": "Lantern Bay II", "kind": "film"},
            headers=world["studio_a"].headers,
        )
        assert response.status_code == 201, response.get_data(as_text=True)
        writes = [s for s in statements if s[0] in ("INSERT", "UPDATE")]
        assert writes and all(in_transaction for _, in_transaction in writes), statements

    @pytest.mark.parametrize("write", ["flush", "commit", "update"])
    def test_a_read_only_handler_that_writes_fails_and_writes_nothing(
        self,
        served: tuple[Any, World, list[tuple[str, bool]]],
        committing_engine: Engine,
        write: str,
    ) -> None:
        client, world, _ = served
        blueprint = Blueprint("writes_when_it_should_not", __name__)

        @blueprint.get("/api/v1/test-read-only-write")
        @read_only
        def careless() -> Any:
            if write == "update":
                db().execute(update(Organization).values(name="Renamed"))
            else:
                db().add(Organization(name="Sneaked in", kind="studio"))
                if write == "flush":
                    db().flush()
            return {"ok": True}  # "commit": the request's commit would flush the new row

        client.application.register_blueprint(blueprint)
        response = client.get("/api/v1/test-read-only-write", headers=world["studio_a"].headers)
        problem(response, 500, "internal_error")
        with committing_engine.connect() as conn:
            names = set(conn.execute(text("SELECT name FROM organizations")).scalars())
        assert "Sneaked in" not in names and "Renamed" not in names

    def test_every_get_is_read_only(self, app: Any) -> None:
        # A new GET handler that must write (say, to audit a read) leaves this list on purpose.
        # Not ours: Flask's static files and flask-smorest's OpenAPI document and its viewer.
        gets = [
            rule
            for rule in app.url_map.iter_rules()
            if "GET" in (rule.methods or ())
            and rule.endpoint != "static"
            and not rule.endpoint.startswith("api-docs.")
        ]
        assert len(gets) > 25
        assert [r.rule for r in gets if not is_read_only_view(app.view_functions[r.endpoint])] == []

    def test_sqlite_reads_do_not_wait_for_a_writer(
        self,
        served: tuple[Any, World, list[tuple[str, bool]]],
        database_url: str,
        dialect: str,
    ) -> None:
        if dialect != "sqlite":
            pytest.skip("SQLite's database-wide write lock")
        client, world, _ = served
        headers = world["developer_x"].headers
        assert client.get("/api/v1/me", headers=headers).status_code == 200  # last_used_at set
        with sqlite_write_lock_held(database_url):
            started = time.monotonic()
            found = client.get("/api/v1/titles?q=lantern", headers=headers)
            assert found.status_code == 200
            title = client.get(
                f"/api/v1/titles/{found.get_json()['items'][0]['id']}", headers=headers
            )
            assert title.status_code == 200
            assert client.get("/api/v1/contracts", headers=headers).status_code == 200
            ready = client.get("/readyz")  # a readiness probe, during a long import
            assert ready.get_json()["checks"]["database"] == "ok"
            assert time.monotonic() - started < 2  # not the 15 s busy timeout


@pytest.fixture
def pinging_engine(
    database_url: str, dialect: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Engine]:
    """A PostgreSQL engine of its own whose pool pings at every checkout after the first."""
    if dialect != "postgresql":
        pytest.skip("PostgreSQL's connections")
    monkeypatch.setattr(db_module, "IDLE_BEFORE_PING_SECONDS", 0.0)
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.mark.postgres
def test_a_pooled_connection_cut_while_idle_is_replaced(pinging_engine: Engine) -> None:
    conn, other = pinging_engine.connect(), pinging_engine.connect()
    first = conn.execute(text("SELECT pg_backend_pid()")).scalar()
    conn.close()  # back to the pool, first in line for the next checkout
    other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
    other.close()
    time.sleep(0.1)
    with pinging_engine.connect() as conn:
        again = conn.execute(text("SELECT pg_backend_pid()")).scalar()
    assert again != first


@pytest.mark.postgres
def test_a_ping_leaves_no_transaction_open(pinging_engine: Engine) -> None:
    for _ in range(2):  # the second checkout pings
        with pinging_engine.connect() as conn:
            dbapi = conn.connection.dbapi_connection
            assert dbapi is not None and dbapi.info.transaction_status == 0  # IDLE
            dbapi.autocommit = True  # raises if a transaction was left open
            dbapi.autocommit = False
            assert conn.execute(text("SELECT 1")).scalar() == 1
    with pinging_engine.begin() as conn:
        assert conn.execute(text("SELECT 1")).scalar() == 1


def test_postgres_sessions_hand_back_utc(engine: Engine, dialect: str) -> None:
    if dialect != "postgresql":
        pytest.skip("PostgreSQL's session time zone")
    with engine.connect() as conn:
        now = conn.execute(text("SELECT now()")).scalar()
    assert now is not None and now.tzinfo is UTC


def test_postgres_sessions_start_no_parallel_workers(engine: Engine, dialect: str) -> None:
    if dialect != "postgresql":
        pytest.skip("PostgreSQL's session settings")
    with engine.connect() as conn:
        workers = conn.execute(text("SHOW max_parallel_workers_per_gather")).scalar()
    assert workers == "0"


def test_a_urls_own_session_settings_join_ours_and_win(database_url: str, dialect: str) -> None:
    if dialect != "postgresql":
        pytest.skip("PostgreSQL's session settings")
    own = "-c lock_timeout=1234 -c TimeZone=Europe/Paris"
    url = make_url(database_url).update_query_dict({"options": own})
    engine = make_engine(url.render_as_string(hide_password=False))
    try:
        with engine.connect() as conn:
            shown = {
                name: conn.execute(text(f"SHOW {name}")).scalar()
                for name in ("lock_timeout", "TimeZone", "max_parallel_workers_per_gather")
            }
            now = conn.execute(text("SELECT now()")).scalar()
    finally:
        engine.dispose()
    assert shown == {
        "lock_timeout": "1234ms",
        "TimeZone": "Europe/Paris",  # the URL's, over ours
        "max_parallel_workers_per_gather": "0",  # ours, which the URL does not set
    }
    assert now is not None and now.utcoffset() is not None


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (datetime(2026, 11, 29, 5, 20, 38, tzinfo=UTC), "2026-11-29T05:20:38Z"),
        (datetime(2026, 11, 29, 5, 20, 38, 1234, tzinfo=UTC), "2026-11-29T05:20:38.001234Z"),
        (datetime(2026, 11, 29, 5, 20, 38), "2026-11-29T05:20:38Z"),
        (
            datetime(2026, 11, 29, 6, 20, 38, tzinfo=timezone(timedelta(hours=1))),
            "2026-11-29T05:20:38Z",
        ),
    ],
)
def test_times_are_shown_in_utc_with_a_z(value: datetime, shown: str) -> None:
    assert format_utc(value) == shown


@pytest.mark.committing
class TestBookkeepingNeverWaits:
    """A key's last_used_at is skipped, not waited for, when a writer holds what it needs."""

    @staticmethod
    def _age_the_key(engine: Engine, world: World) -> None:
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE api_keys SET last_used_at = :old WHERE user_id = :u"),
                {"old": datetime.now(UTC) - timedelta(hours=1), "u": world["studio_a"].user_id},
            )

    @staticmethod
    def _last_used(engine: Engine, world: World) -> datetime:
        with engine.connect() as conn:
            value = conn.execute(
                text("SELECT last_used_at FROM api_keys WHERE user_id = :u"),
                {"u": world["studio_a"].user_id},
            ).scalar_one()
        assert value is not None
        stamp = value if isinstance(value, datetime) else datetime.fromisoformat(value)
        return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)  # SQLite's text

    def test_sqlite_reads_during_an_import_skip_it(
        self,
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
        monkeypatch.setattr(db_module, "SQLITE_BUSY_TIMEOUT_SECONDS", 3.0)
        world = committed_world
        self._age_the_key(committing_engine, world)
        aged = self._last_used(committing_engine, world)
        app = create_app(settings, storage=storage, payments=payments)
        client = app.test_client()
        engine = app.extensions["clearcut"].session_factory.kw["bind"]
        with sqlite_write_lock_held(database_url):
            started = time.monotonic()
            response = client.get("/api/v1/me", headers=world["studio_a"].headers)
            assert response.status_code == 200, response.get_data(as_text=True)
            assert time.monotonic() - started < 1  # not the 3 s busy timeout
        assert self._last_used(committing_engine, world) == aged  # skipped
        with engine.connect() as conn:  # the pooled connection waits for locks again
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 3000
        assert client.get("/api/v1/me", headers=world["studio_a"].headers).status_code == 200
        assert self._last_used(committing_engine, world) > aged  # caught up
        engine.dispose()

    def test_postgres_requests_skip_a_key_row_another_request_holds(
        self,
        committed_world: World,
        committing_engine: Engine,
        settings: Any,
        storage: InMemoryStorage,
        payments: Any,
        database_url: str,
        dialect: str,
    ) -> None:
        if dialect != "postgresql":
            pytest.skip("PostgreSQL's row locks")
        world = committed_world
        self._age_the_key(committing_engine, world)
        aged = self._last_used(committing_engine, world)
        # A lock timeout turns a wait into a failure (503) rather than a hung test.
        url = make_url(database_url).update_query_dict(
            {"options": "-c TimeZone=UTC -c lock_timeout=1000"}
        )
        app = create_app(
            replace(settings, database_url=url.render_as_string(hide_password=False)),
            storage=storage,
            payments=payments,
        )
        client = app.test_client()
        with committing_engine.connect() as import_request:
            # An import of the same key: it marked the key used and runs on, uncommitted.
            import_request.execute(
                text("UPDATE api_keys SET last_used_at = now() WHERE user_id = :u"),
                {"u": world["studio_a"].user_id},
            )
            for path in ("/api/v1/me", "/api/v1/titles"):
                response = client.get(path, headers=world["studio_a"].headers)
                assert response.status_code == 200, response.get_data(as_text=True)
            created = client.post(  # a write, in a transaction
                "/api/v1/titles",
                json={"external_id": "during-import", "name": "During", "kind": "film"},
                headers=world["studio_a"].headers,
            )
            assert created.status_code == 201, created.get_data(as_text=True)
            import_request.rollback()
        assert self._last_used(committing_engine, world) == aged
        app.extensions["clearcut"].session_factory.kw["bind"].dispose()
