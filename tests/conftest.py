"""Shared fixtures: a migrated database per run, a rolled-back transaction per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, create_engine, delete, make_url, text, update
from sqlalchemy.orm import Session

from config import Settings
from marketplace import migrations
from marketplace.app import create_app
from marketplace.billing.gateway import FakeGateway
from marketplace.core.db import make_engine
from marketplace.core.storage.fake import InMemoryStorage
from marketplace.models import metadata
from tests.helpers import bound_sessions
from tests.world import World, build_world

pytest_plugins = ["tests.fixtures.servers"]

TEST_SECRET_KEY = "test-secret-key-0123456789abcdef0123456789"


def _postgres_database(admin_url: str) -> Iterator[str]:
    """Create a fresh database for this run (and xdist worker); drop it afterwards."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"clearcut_test_{worker}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    admin_url = os.environ.get("TEST_DATABASE_URL")
    if admin_url:
        for url in _postgres_database(admin_url):
            migrations.upgrade(url)
            yield url
        return
    path: Path = tmp_path_factory.mktemp("db") / "clearcut.db"
    url = f"sqlite:///{path}"
    migrations.upgrade(url)
    yield url


@pytest.fixture(autouse=True)
def _apps_leave_no_connection(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Dispose of the engines the test's apps and runtimes built (create_app without a session
    factory): their pooled psycopg connections, left to the garbage collector, warn
    ResourceWarning in whichever later test the collector happens to run."""
    import marketplace.bootstrap as bootstrap

    made: list[Engine] = []
    real = bootstrap.make_engine

    def tracked(*args: Any, **kwargs: Any) -> Engine:
        engine = real(*args, **kwargs)
        made.append(engine)
        return engine

    monkeypatch.setattr(bootstrap, "make_engine", tracked)
    yield
    for engine in made:
        engine.dispose()


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def dialect(engine: Engine) -> str:
    return engine.dialect.name


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    conn = engine.connect()
    outer = conn.begin()
    try:
        yield conn
    finally:
        outer.rollback()
        conn.close()


def _bound_session(conn: Connection) -> Session:
    # Each session's "transaction" is a SAVEPOINT inside the test's outer transaction, so the
    # app's commit is real for the request and the whole test still rolls back.
    return Session(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)


@pytest.fixture
def session(connection: Connection) -> Iterator[Session]:
    s = _bound_session(connection)
    yield s
    s.close()


@pytest.fixture(scope="session")
def queue_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The run's own huey queue file: never the one `make run` uses."""
    return f"sqlite:///{tmp_path_factory.mktemp('queue') / 'queue.db'}"


@pytest.fixture(scope="session")
def audit_key_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The run's own audit signing key: never the one `make run` wrote under instance/."""
    from marketplace.audit.keys import write_new_key

    path = tmp_path_factory.mktemp("keys") / "audit-signing-key.pem"
    write_new_key(path)
    return str(path)


@pytest.fixture
def audit_keys(audit_key_file: str) -> Any:
    from marketplace.audit.keys import load_keys

    return load_keys(audit_key_file)


@pytest.fixture
def settings(database_url: str, queue_url: str, audit_key_file: str) -> Settings:
    return Settings(
        env="test",
        database_url=database_url,
        secret_key=TEST_SECRET_KEY,
        max_content_length=64 * 1024,
        log_level="WARNING",
        queue_url=queue_url,
        audit_signing_key_file=audit_key_file,
    )


@pytest.fixture
def storage() -> InMemoryStorage:
    return InMemoryStorage("clearcut-test")


@pytest.fixture
def payments() -> FakeGateway:
    """The payment gateway the app uses: in memory, never Stripe."""
    return FakeGateway()


@pytest.fixture
def app(
    settings: Settings, connection: Connection, storage: InMemoryStorage, payments: FakeGateway
) -> Any:
    return create_app(
        settings,
        session_factory=bound_sessions(connection),
        storage=storage,
        payments=payments,
    )


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


@pytest.fixture
def world(session: Session) -> World:
    """Six actors: an operator, studios A and B, developers X and Y (owners and members)."""
    w = build_world(session)
    session.commit()
    return w


@pytest.fixture
def committing_engine(engine: Engine) -> Iterator[Engine]:
    """For tests whose work other connections must see; empties every table afterwards."""
    yield engine
    truncate_all(engine)


@pytest.fixture
def committed_world(committing_engine: Engine) -> World:
    """The six actors of `world`, committed, for tests whose app has its own connections."""
    with Session(committing_engine, expire_on_commit=False) as session:
        w = build_world(session)
        session.commit()
    return w


def truncate_all(engine: Engine) -> None:
    from marketplace.audit.models import GENESIS_HASH, AuditChainHead

    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            if table.name != "audit_chain_head":
                conn.execute(delete(table))
        conn.execute(update(AuditChainHead).values(seq=0, hash=GENESIS_HASH))
