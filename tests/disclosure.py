"""Indistinguishability tests: two worlds that differ only in a hidden fact must answer the
other party identically, once ids are replaced by their order of appearance.

    answers = []
    for hidden in (fact_a, fact_b):
        with scenario(connection) as session:
            ...build the world with `hidden`, session.commit(), drive the API...
            answers.append(normalized(response))
    assert answers[0] == answers[1]
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from marketplace.core.ids import PREFIXES

_ID = re.compile(r"\b(" + "|".join(sorted(PREFIXES, key=len, reverse=True)) + r")_[0-9a-z]{26}\b")

# A moment (not a date): worlds are built a few milliseconds apart.
_MOMENT = re.compile(r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})")


def by_appearance(value: Any) -> Any:
    """`value` (JSON-like) with every opaque id replaced by `<prefix#n>`, n counting distinct
    ids in order of appearance (keys sorted), and every moment by `<time>`: equal structures
    with different ids compare equal, and one id repeated where the other world has two
    different ones does not. Dates (terms, windows) are kept."""
    seen: dict[str, str] = {}

    def name(match: re.Match[str]) -> str:
        found = match.group(0)
        if found not in seen:
            seen[found] = f"<{match.group(1)}#{len(seen) + 1}>"
        return seen[found]

    text = _MOMENT.sub("<time>", json.dumps(value, sort_keys=True))
    return json.loads(_ID.sub(name, text))


def normalized(response: Any) -> dict[str, Any]:
    """What a client learns from `response`: status, content type and body, ids by appearance."""
    return by_appearance(
        {
            "status": response.status_code,
            "content_type": response.content_type,
            "body": response.get_json(silent=True),
        }
    )


@contextmanager
def scenario(connection: Connection) -> Iterator[Session]:
    """One world inside the test's transaction: a savepoint rolled back at the end, so the
    next world starts from the same state (the app's own commits included)."""
    savepoint = connection.begin_nested()
    session = Session(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    try:
        yield session
    finally:
        session.close()
        savepoint.rollback()
