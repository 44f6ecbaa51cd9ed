"""Authorization matrix entries of title search; what each caller finds is in test_search.py."""

from __future__ import annotations

from tests.matrix import ANON, Route, authenticated


def studio_filter(actor: str, owner: str | None) -> int:
    """`studio_id` is an operator's filter: anyone else is refused, whatever the id."""
    if actor == ANON:
        return 401
    return 200 if actor == "operator" else 403


ROUTES: list[Route] = [
    Route("GET", "/api/v1/titles", authenticated(200)),
    Route("GET", "/api/v1/titles", authenticated(200), query="q=harbor&territory=US"),
    Route("GET", "/api/v1/titles", studio_filter, query="studio_id=org_0000000000000000000000000a"),
]
