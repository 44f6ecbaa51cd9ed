"""Property-based fuzzing of every documented operation (schemathesis, in-process WSGI).

Whatever a client sends, with any role's key, the API answers without a server error, every
error is an RFC 9457 problem document with a stable code, and no body carries a traceback.
Beside what schemathesis generates, each JSON body is sent again made hostile in ways it never
generates (lone surrogates, integers past 64 bits or of 5,000 digits, floats where integers
go, nesting thousands deep): see core.json_input.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings

from config import Settings
from marketplace.app import create_app
from marketplace.core.queue import ListQueue
from marketplace.core.storage.fake import InMemoryStorage
from tests.world import World

ROLES = ("operator", "studio_a", "developer_x")


def _spec() -> dict[str, Any]:
    # The document does not depend on the database or storage: build it from a throwaway app.
    app = create_app(
        Settings(env="test", database_url="sqlite://"), storage=InMemoryStorage(), queue=ListQueue()
    )
    spec: dict[str, Any] = app.test_client().get("/api/v1/openapi.json").get_json()
    return spec


schema = schemathesis.openapi.from_dict(_spec())


def _ask(client: Any, case: Any, role: str, world: World, raw: str | None = None) -> str:
    """Send the case (with `raw` as its JSON body if given) as `role`; check a clean answer."""
    headers = {**(case.headers or {}), **world[role].headers}
    kwargs = case.as_transport_kwargs(headers=headers)
    body: dict[str, Any] = {"json": kwargs.get("json"), "data": kwargs.get("data")}
    if raw is not None:
        # The role's key alone: a generated header (a bogus Authorization) would make it a 401.
        body = {"data": raw, "content_type": "application/json"}
        kwargs["headers"] = world[role].headers
    response = client.open(
        kwargs["url"].removeprefix("http://localhost"),
        method=kwargs["method"],
        headers=kwargs.get("headers"),
        query_string=kwargs.get("params"),
        **body,
    )
    text = response.get_data(as_text=True)
    assert response.status_code < 500, f"{role} {case.method} {case.path}: {text[:300]}"
    assert "Traceback" not in text
    if response.status_code >= 400:
        assert response.content_type == "application/problem+json", text[:200]
        assert response.get_json()["code"]
    return text


# An integer leaf is replaced by each of these literals in turn (json.dumps writes neither of
# the first two: Python's int-to-text limit is 4,300 digits). NaN and 1e400 are tested in
# tests/core/test_json_bounds.py: each variant here costs a request per operation and role.
_NUMBERS = ("9223372036854775808", "1" * 5000, "10.5")
_MARK = "\\u0000number\\u0000"  # how json.dumps writes "\0number\0"


_HOSTILE_SENT: set[str] = set()


def _rewrite(value: Any, leaf: Any) -> Any:
    if isinstance(value, dict):
        return {k: _rewrite(v, leaf) for k, v in value.items()}
    if isinstance(value, list):
        return [_rewrite(v, leaf) for v in value]
    return leaf(value)


def _hostile(body: Any) -> Iterator[str]:
    """The body with every string ending in a lone surrogate, with each kind of bad number in
    place of every integer, nested 30,000 deep in its first field, and nested whole."""
    yield json.dumps(_rewrite(body, lambda v: v + "\ud800" if isinstance(v, str) else v))
    marked = json.dumps(
        _rewrite(body, lambda v: "\0number\0" if type(v) is int else v)  # not bool
    )
    if _MARK in marked:
        for literal in _NUMBERS:
            yield marked.replace(f'"{_MARK}"', literal)
    if isinstance(body, dict) and body:
        first = next(iter(body))
        yield json.dumps({**body, first: "@@"}).replace('"@@"', "[" * 30_000)
    # The tests' body limit is 64 KiB: deep, but not a 413.
    yield "[" * 60_000


@schema.parametrize()
@settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_any_input_gets_a_clean_answer(case: Any, app: Any, world: World) -> None:
    client = app.test_client()
    for role in ROLES:
        _ask(client, case, role, world)
    # The hostile variants of one JSON body per operation: a separate test would pay for its
    # own app and world per operation, most of this test's time.
    operation = f"{case.method} {case.path}"
    body = case.body
    if isinstance(body, dict | list) and operation not in _HOSTILE_SENT:
        _HOSTILE_SENT.add(operation)
        for raw in _hostile(body):
            for role in ROLES:
                _ask(client, case, role, world, raw)
