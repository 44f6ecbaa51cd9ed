"""The request lifecycle: problem documents, limits, idempotency, request ids, operations."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint

from marketplace.app import create_app
from tests.helpers import bound_sessions, problem
from tests.world import World


class TestProblems:
    def test_unknown_field_is_422_naming_it(self, client: Any, world: World) -> None:
        body = problem(
            client.post(
                "/api/v1/organizations",
                json={"name": "X", "kind": "studio", "colour": "red"},
                headers=world["operator"].headers,
            ),
            422,
            "validation_error",
        )
        assert body["errors"] == {"colour": ["Unknown field."]}

    def test_bad_values_name_each_field(self, client: Any, world: World) -> None:
        body = problem(
            client.post(
                "/api/v1/organizations", json={"kind": "bank"}, headers=world["operator"].headers
            ),
            422,
            "validation_error",
        )
        assert set(body["errors"]) == {"name", "kind"}

    def test_malformed_json_is_400(self, client: Any, world: World) -> None:
        response = client.post(
            "/api/v1/organizations",
            data='{"name": ',
            content_type="application/json",
            headers=world["operator"].headers,
        )
        problem(response, 400, "bad_request")

    def test_body_over_the_limit_is_413(self, client: Any, world: World) -> None:
        huge = json.dumps({"name": "x" * 100_000, "kind": "studio"})
        response = client.post(
            "/api/v1/organizations",
            data=huge,
            content_type="application/json",
            headers=world["operator"].headers,
        )
        problem(response, 413, "payload_too_large")

    def test_unknown_route_and_method(self, client: Any, world: World) -> None:
        problem(client.get("/api/v1/nowhere", headers=world["operator"].headers), 404, "not_found")
        response = client.put("/api/v1/me", headers=world["operator"].headers)
        problem(response, 405, "method_not_allowed")
        problem(client.get("/nowhere"), 404, "not_found")

    def test_unexpected_errors_leak_nothing(
        self, settings: Any, connection: Any, storage: Any
    ) -> None:
        app = create_app(settings, storage=storage, session_factory=bound_sessions(connection))
        boom = Blueprint("boom", __name__)

        @boom.get("/boom")
        def explode() -> Any:
            raise RuntimeError("password=hunter2 at /srv/secret.py line 42")

        app.register_blueprint(boom)
        response = app.test_client().get("/boom")
        body = problem(response, 500, "internal_error")
        text = response.get_data(as_text=True)
        assert "hunter2" not in text and "Traceback" not in text and "secret.py" not in text
        assert response.headers["X-Request-ID"] in body["detail"]


class TestIdempotency:
    def test_same_key_and_body_replays_the_first_response(self, client: Any, world: World) -> None:
        headers = {**world["operator"].headers, "Idempotency-Key": "create-orbit-1"}
        first = client.post(
            "/api/v1/organizations", json={"name": "Orbit", "kind": "studio"}, headers=headers
        )
        second = client.post(
            "/api/v1/organizations", json={"name": "Orbit", "kind": "studio"}, headers=headers
        )
        assert first.status_code == second.status_code == 201
        assert first.get_data() == second.get_data()
        assert second.headers["Idempotent-Replayed"] == "true"
        orgs = client.get("/api/v1/organizations?limit=200", headers=world["operator"].headers)
        assert [o["name"] for o in orgs.get_json()["items"]].count("Orbit") == 1

    def test_same_key_other_body_is_409(self, client: Any, world: World) -> None:
        headers = {**world["operator"].headers, "Idempotency-Key": "k-2"}
        client.post("/api/v1/organizations", json={"name": "A", "kind": "studio"}, headers=headers)
        response = client.post(
            "/api/v1/organizations", json={"name": "B", "kind": "studio"}, headers=headers
        )
        problem(response, 409, "idempotency_conflict")

    def test_keys_are_per_user(self, client: Any, world: World) -> None:
        body = {"name": "A", "kind": "studio"}
        client.post(
            "/api/v1/organizations",
            json=body,
            headers={**world["operator"].headers, "Idempotency-Key": "shared"},
        )
        other = client.post(
            "/api/v1/api-keys", headers={**world["studio_a"].headers, "Idempotency-Key": "shared"}
        )
        assert other.status_code == 201

    def test_a_failed_request_is_not_stored(self, client: Any, world: World) -> None:
        headers = {**world["operator"].headers, "Idempotency-Key": "k-3"}
        bad = client.post(
            "/api/v1/organizations", json={"name": "A", "kind": "bank"}, headers=headers
        )
        assert bad.status_code == 422
        good = client.post(
            "/api/v1/organizations", json={"name": "A", "kind": "bank"}, headers=headers
        )
        assert good.status_code == 422 and "Idempotent-Replayed" not in good.headers


class TestRequestIds:
    def test_generated_and_echoed(self, client: Any) -> None:
        generated = client.get("/healthz").headers["X-Request-ID"]
        assert len(generated) == 32
        assert (
            client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"]
            == "abc-123"
        )
        # A header that could inject into logs is replaced.
        assert (
            client.get("/healthz", headers={"X-Request-ID": "a b;c"}).headers["X-Request-ID"]
            != "a b;c"
        )


class TestOperations:
    def test_health_and_readiness(self, client: Any, storage: Any) -> None:
        assert client.get("/healthz").get_json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.get_json()["checks"] == {"database": "ok", "object_storage": "ok"}

    def test_readiness_fails_when_storage_is_down(self, client: Any, storage: Any) -> None:
        storage.available = False
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.get_json()["checks"]["object_storage"] == "unavailable"

    def test_metrics_count_requests_by_route(self, client: Any, world: World) -> None:
        client.get("/api/v1/me", headers=world["studio_a"].headers)
        text = client.get("/metrics").get_data(as_text=True)
        assert 'clearcut_http_requests_total{method="GET",route="/api/v1/me",status="200"}' in text
        assert "clearcut_http_request_duration_seconds_bucket" in text

    def test_openapi_and_docs_need_no_key(self, client: Any) -> None:
        spec = client.get("/api/v1/openapi.json")
        assert spec.status_code == 200
        assert spec.get_json()["openapi"].startswith("3.")
        assert client.get("/api/v1/docs").status_code == 200
