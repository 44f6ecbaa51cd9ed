"""Every API request's statements are bounded in time (DATABASE_STATEMENT_TIMEOUT_MS): past the
bound the statement is stopped by the database (PostgreSQL's statement_timeout, SQLite's progress
handler), the request answers 503 database_busy with a long Retry-After, and its worker is free.
Imports and CLI commands choose their own bound."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from marketplace.app import create_app
from marketplace.core.db import database_fault, make_engine, statement_bound
from marketplace.core.web import TIMEOUT_RETRY_AFTER_SECONDS, db, read_only
from tests.helpers import problem
from tests.world import World

# Counting to N in a recursive query: the same slow statement on both databases, whose time
# grows with N (about a second per few million rows here).
COUNT_TO = text(
    "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < :n) "
    "SELECT count(*) FROM c"
)
# Half a minute of work or more here: far past the bounds tested, and a test of a bound that
# does not hold fails after it rather than hanging.
ENDLESS = 10**8
SHORT = 2_000  # a few milliseconds at most


def _elapsed(engine: Engine, n: int) -> tuple[float, Any]:
    started = time.monotonic()
    try:
        with engine.connect() as conn:
            result: Any = conn.execute(COUNT_TO, {"n": n}).scalar_one()
    except OperationalError as exc:
        result = exc
    return time.monotonic() - started, result


@pytest.fixture
def bounded(database_url: str) -> Any:
    engine = make_engine(database_url, statement_timeout=0.2)
    yield engine
    engine.dispose()


def test_a_statement_past_the_bound_is_stopped_as_a_timeout(bounded: Engine) -> None:
    elapsed, result = _elapsed(bounded, ENDLESS)
    assert isinstance(result, OperationalError), result
    assert database_fault(result) == "timeout"
    assert elapsed < 5  # stopped near 0.2 s, not after hours
    # The connection serves the next statement: the bound applies to each one afresh.
    assert _elapsed(bounded, SHORT)[1] == SHORT


def test_statements_under_the_bound_are_untouched(bounded: Engine) -> None:
    for _ in range(3):
        assert _elapsed(bounded, SHORT)[1] == SHORT


def test_an_engine_without_a_bound_lets_a_long_statement_finish(database_url: str) -> None:
    engine = make_engine(database_url, statement_timeout=None)
    bounded = make_engine(database_url, statement_timeout=0.05)
    try:
        n = 3_000_000
        seconds, result = _elapsed(engine, n)
        assert result == n
        assert seconds > 0.05, "the statement must outlast the other engine's bound"
        assert isinstance(_elapsed(bounded, n)[1], OperationalError)
    finally:
        engine.dispose()
        bounded.dispose()


def test_a_block_may_set_its_own_bound(bounded: Engine) -> None:
    """An import over HTTP runs under IMPORT_STATEMENT_TIMEOUT_MS, not the request's bound."""
    from sqlalchemy.orm import Session

    n = 3_000_000
    with Session(bounded) as session:
        with statement_bound(session, None):
            assert session.execute(COUNT_TO, {"n": n}).scalar_one() == n
        # and the engine's own bound is back for what follows, in the same transaction
        with pytest.raises(OperationalError) as raised:
            session.execute(COUNT_TO, {"n": ENDLESS})
        assert database_fault(raised.value) == "timeout"


def _app_with_slow_route(settings: Any, storage: Any, payments: Any) -> Flask:
    app = create_app(
        replace(settings, statement_timeout_ms=200), storage=storage, payments=payments
    )

    @read_only
    def slow() -> Any:
        return {"n": db().execute(COUNT_TO, {"n": ENDLESS}).scalar_one()}

    # A route of the app's own lifecycle (authenticated, read-only), as an expensive search is.
    app.add_url_rule("/api/v1/test-slow", "test_slow", slow)
    return app


@pytest.mark.committing
def test_a_request_past_the_bound_is_a_503_and_others_are_served_meanwhile(
    committed_world: World, settings: Any, storage: Any, payments: Any
) -> None:
    app = _app_with_slow_route(settings, storage, payments)
    headers = committed_world["developer_x"].headers
    answers: dict[str, Any] = {}

    def call_slow() -> None:
        started = time.monotonic()
        answers["slow"] = app.test_client().get("/api/v1/test-slow", headers=headers)
        answers["slow_seconds"] = time.monotonic() - started

    worker = threading.Thread(target=call_slow)
    worker.start()
    me = app.test_client().get("/api/v1/me", headers=headers)
    worker.join(timeout=30)
    assert not worker.is_alive(), "the bounded request must end"
    assert me.status_code == 200  # served while the slow one ran
    body = problem(answers["slow"], 503, "database_busy")
    assert answers["slow"].headers["Retry-After"] == str(TIMEOUT_RETRY_AFTER_SECONDS)
    assert TIMEOUT_RETRY_AFTER_SECONDS >= 10
    assert "WITH RECURSIVE" not in answers["slow"].get_data(as_text=True)
    assert "longer than the database allows" in body["detail"]
    assert answers["slow_seconds"] < 10
    app.extensions["clearcut"].session_factory.kw["bind"].dispose()


def test_the_bound_is_configurable_and_off_at_zero() -> None:
    from config import load_settings

    settings = load_settings({"DATABASE_STATEMENT_TIMEOUT_MS": "250"})
    assert settings.statement_timeout == 0.25
    assert load_settings({"DATABASE_STATEMENT_TIMEOUT_MS": "0"}).statement_timeout is None
    assert load_settings({}).statement_timeout == 5.0
    assert load_settings({"IMPORT_STATEMENT_TIMEOUT_MS": "0"}).import_statement_timeout is None
