"""How stored values are read back: JSON through orjson where it agrees with the json module,
SQLite's text timestamps through datetime.fromisoformat (marketplace.core.db)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import JSON, literal_column, select
from sqlalchemy.orm import Session

from marketplace.core.db import UTCDateTime, json_loads

# Where orjson alone would refuse the text or read it otherwise, and the everyday shapes.
STORED_JSON = [
    '["drama","crime"]',
    '{"name":"Café Ξ","n":1,"x":1.5,"ok":true,"none":null,"list":[{"a":[]}]}',
    "[NaN, Infinity, -Infinity]",  # json.dumps writes these for float values
    "12345678901234567890123",  # past 64 bits: orjson would read a float
    "[-9223372036854775809, 9223372036854775807, 18446744073709551616]",
    "1e400",
    '"\\ud800"',  # a lone surrogate
    '{"a": 1, "a": 2}',
    "0.1000000000000000055511151231257827",
]


@pytest.mark.parametrize("stored", STORED_JSON)
def test_json_is_read_as_the_json_module_reads_it(stored: str) -> None:
    expected = repr(json.loads(stored))  # repr: NaN is not equal to itself
    assert repr(json_loads(stored)) == expected
    assert repr(json_loads(stored.encode())) == expected  # psycopg hands bytes


def test_a_wide_integer_survives_the_database(session: Session) -> None:
    stored = "[12345678901234567890123, 1.5, NaN]"
    sql = f"'{stored}'"
    if session.get_bind().dialect.name == "postgresql":
        # PostgreSQL's json refuses NaN; psycopg reads a json column with the engine's loader.
        sql = f"CAST('{stored.replace(', NaN', '')}' AS json)"
    value = session.execute(select(literal_column(sql, JSON))).scalar_one()
    stored = stored if "CAST" not in sql else stored.replace(", NaN", "")
    assert repr(value) == repr(json.loads(stored))
    assert isinstance(value[0], int)


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ("2026-11-29 05:20:38.123456", datetime(2026, 11, 29, 5, 20, 38, 123456, tzinfo=UTC)),
        ("2026-11-29 05:20:38", datetime(2026, 11, 29, 5, 20, 38, tzinfo=UTC)),  # SQLite's own
        ("2026-11-29T05:20:38.500000", datetime(2026, 11, 29, 5, 20, 38, 500000, tzinfo=UTC)),
    ],
)
def test_sqlite_timestamps_are_read_in_utc(
    session: Session, stored: str, expected: datetime
) -> None:
    if session.get_bind().dialect.name != "sqlite":
        pytest.skip("SQLite stores timestamps as text")
    value = session.execute(select(literal_column(f"'{stored}'", UTCDateTime()))).scalar_one()
    assert value == expected and value.tzinfo is UTC
    now = session.execute(select(literal_column("CURRENT_TIMESTAMP", UTCDateTime())))
    assert abs((now.scalar_one() - datetime.now(UTC)).total_seconds()) < 60
