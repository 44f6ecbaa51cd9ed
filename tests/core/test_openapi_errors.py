"""The OpenAPI document says what the API does with errors: every error response of every
operation is an RFC 9457 problem document (`application/problem+json`, the Problem schema), and
every operation lists the errors the request lifecycle may give (400, 401 unless public, 429,
503; 404 where the path names an object)."""

from __future__ import annotations

from typing import Any

import pytest

from marketplace.core.web import is_public_path

METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture
def spec(client: Any) -> dict[str, Any]:
    document: dict[str, Any] = client.get("/api/v1/openapi.json").get_json()
    return document


def _resolve(spec: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    ref = response.get("$ref")
    if ref is None:
        return response
    resolved: dict[str, Any] = spec["components"]["responses"][ref.rsplit("/", 1)[-1]]
    return resolved


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def test_every_error_response_is_a_problem_document(spec: dict[str, Any]) -> None:
    wrong = []
    for path, method, operation in _operations(spec):
        for status, response in operation["responses"].items():
            if not (status == "default" or status.startswith(("4", "5"))):
                continue
            content = _resolve(spec, response).get("content", {})
            schema = content.get("application/problem+json", {}).get("schema", {})
            if list(content) != ["application/problem+json"] or not str(
                schema.get("$ref", "")
            ).endswith("/Problem"):
                wrong.append(f"{method.upper()} {path} {status}: {sorted(content)}")
    assert wrong == []


def test_every_operation_lists_the_lifecycle_errors(spec: dict[str, Any]) -> None:
    missing = []
    for path, method, operation in _operations(spec):
        expected = {"400", "429", "503"}
        if not is_public_path(path.split("{")[0].rstrip("/")):
            expected.add("401")
        if "{" in path:
            expected.add("404")
        if absent := expected - set(operation["responses"]):
            missing.append(f"{method.upper()} {path}: {sorted(absent)}")
    assert missing == []


def test_public_operations_do_not_claim_a_key(spec: dict[str, Any]) -> None:
    webhook = spec["paths"]["/api/v1/webhooks/stripe"]["post"]["responses"]
    assert "401" not in webhook
