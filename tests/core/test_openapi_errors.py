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


def test_every_operation_with_a_body_lists_413(spec: dict[str, Any]) -> None:
    missing = [
        f"{method.upper()} {path}"
        for path, method, operation in _operations(spec)
        if "requestBody" in operation and "413" not in operation["responses"]
    ]
    assert missing == []


def _schema(spec: dict[str, Any], name: str) -> dict[str, Any]:
    schema: dict[str, Any] = spec["components"]["schemas"][name]
    return schema


def test_codes_the_api_checks_are_stated_as_enums(spec: dict[str, Any]) -> None:
    """ISO territories, currencies and languages: a client generated from the document knows
    which values the API takes (it also reads lower-case territories and BCP 47 tags)."""
    request = _schema(spec, "LicenseRequestCreate")["properties"]
    assert {"US", "GB", "WW"} <= set(request["territories"]["items"]["enum"])
    assert "usd" in request["currency"]["enum"] and "xau" not in request["currency"]["enum"]
    title = _schema(spec, "TitleCreate")["properties"]
    assert {"en", "fr"} <= set(title["original_language"]["enum"])
    offer = _schema(spec, "OfferCreate")
    assert "title_ids" in offer["required"] and offer["properties"]["title_ids"]["minItems"] == 1
    titles = spec["paths"]["/api/v1/titles"]["get"]["parameters"]
    territory = next(p for p in titles if p["name"] == "territory")
    assert "WW" in territory["schema"]["enum"]
