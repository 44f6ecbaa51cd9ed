"""Every route, every actor, every tenant's objects: the status each must get."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from tests.matrix import ACTORS, ANON, ROUTES, Ctx, Route
from tests.world import World

METHODS = {"get", "post", "put", "patch", "delete"}
PUBLIC_FLASK_RULES = {"/healthz", "/readyz", "/metrics"}


def _openapi_routes(client: Any) -> set[tuple[str, str]]:
    spec = client.get("/api/v1/openapi.json").get_json()
    return {
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if method in METHODS
    }


def _flask_routes(app: Any) -> set[tuple[str, str]]:
    found = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or rule.endpoint.startswith("api-docs"):
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            found.add((method, path))
    return found


def test_every_route_has_a_matrix_entry(app: Any, client: Any) -> None:
    covered = {(r.method, r.path) for r in ROUTES}
    documented = _openapi_routes(client)
    assert documented - covered == set(), "routes missing from tests/matrix.py"
    assert covered - documented == set(), "matrix entries for routes that do not exist"
    assert _flask_routes(app) - documented == set(), "API routes missing from the OpenAPI document"


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_route_answers_each_actor_as_the_matrix_says(
    route: Route, client: Any, connection: Connection, world: World
) -> None:
    failures = []
    for owner in route.owners:
        for actor in ACTORS:
            # Each case runs in its own savepoint, rolled back after, so cases never interact.
            case = connection.begin_nested()
            session = Session(
                bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
            )
            ctx = Ctx(session=session, world=world)
            try:
                params = route.target(ctx, owner) if route.target and owner else {}
                session.commit()
                path = route.path.format(**params) + (f"?{route.query}" if route.query else "")
                headers = {} if actor == ANON else world[actor].headers
                kwargs: dict[str, Any] = {"headers": headers}
                if route.body is not None:
                    kwargs["json"] = route.body(ctx, owner)
                if route.actor_body is not None:
                    kwargs["json"] = route.actor_body(ctx, owner, actor)
                    session.commit()
                response = client.open(path, method=route.method, **kwargs)
                expected = route.expect(actor, owner)
                if response.status_code != expected:
                    failures.append(
                        f"{actor} on {owner or '-'}'s object: expected {expected}, "
                        f"got {response.status_code} {response.get_data(as_text=True)[:200]}"
                    )
                elif response.status_code >= 400:
                    assert response.content_type == "application/problem+json"
            finally:
                session.close()
                case.rollback()
    assert not failures, "\n".join(failures)
