"""Property-based fuzzing of every documented operation (schemathesis, in-process WSGI).

Whatever a client sends, with any role's key, the API answers without a server error, every
error is an RFC 9457 problem document with a stable code, and no body carries a traceback.
"""

from __future__ import annotations

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
        headers = {**(case.headers or {}), **world[role].headers}
        kwargs = case.as_transport_kwargs(headers=headers)
        response = client.open(
            kwargs["url"].removeprefix("http://localhost"),
            method=kwargs["method"],
            headers=kwargs.get("headers"),
            query_string=kwargs.get("params"),
            json=kwargs.get("json"),
            data=kwargs.get("data"),
        )
        text = response.get_data(as_text=True)
        assert response.status_code < 500, f"{role} {case.method} {case.path}: {text[:300]}"
        assert "Traceback" not in text
        if response.status_code >= 400:
            assert response.content_type == "application/problem+json", text[:200]
            assert response.get_json()["code"]
