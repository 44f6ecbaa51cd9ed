"""Assertions and conditions shared by route tests."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.orm import Session, sessionmaker


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    """Assert an RFC 9457 problem document with this status and stable code; return it."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.content_type == "application/problem+json"
    body: dict[str, Any] = response.get_json()
    assert body["code"] == code
    assert body["status"] == status
    assert {"type", "title", "detail"} <= set(body)
    return body


@contextlib.contextmanager
def sqlite_write_lock_held(database_url: str) -> Iterator[None]:
    """Hold a SQLite database's write lock from another connection, as a long import does."""
    writer = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        writer.rollback()
        writer.close()


def bound_sessions(connection: Connection) -> sessionmaker[Session]:
    """Sessions whose transactions are SAVEPOINTs inside the test's own transaction on
    `connection`: the app's commit is real for the request, and the test still rolls back."""
    return sessionmaker(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
