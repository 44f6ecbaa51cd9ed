"""Domain errors and their RFC 9457 problem+json rendering (the stable `code`s of API.md)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://clearcut.example/problems/"


class DomainError(Exception):
    """A refusal the client can act on; rendered as a problem document."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "Bad request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: Mapping[str, Any] | list[Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = errors
        self.headers = dict(headers or {})


class BadRequest(DomainError):
    status, code, title = 400, "bad_request", "Bad request"


class Unauthenticated(DomainError):
    status, code, title = 401, "unauthenticated", "Authentication required"


class Forbidden(DomainError):
    status, code, title = 403, "forbidden", "Forbidden"


class NotFound(DomainError):
    status, code, title = 404, "not_found", "Not found"


class Conflict(DomainError):
    status, code, title = 409, "conflict", "Conflict"


class InvalidState(DomainError):
    status, code, title = 409, "invalid_state", "Invalid state"


class IdempotencyConflict(DomainError):
    status, code, title = 409, "idempotency_conflict", "Idempotency key reused"


class PayloadTooLarge(DomainError):
    status, code, title = 413, "payload_too_large", "Payload too large"


class ValidationFailed(DomainError):
    status, code, title = 422, "validation_error", "Validation failed"


class RateLimited(DomainError):
    status, code, title = 429, "rate_limited", "Too many requests"


class DatabaseBusy(DomainError):
    """Contention the database gave up on (a lock or pool wait, a deadlock): retry shortly."""

    status, code, title = 503, "database_busy", "Database busy"


class DatabaseUnavailable(DomainError):
    """The database could not be reached, or is shutting down: retry later."""

    status, code, title = 503, "database_unavailable", "Database unavailable"


def problem_body(
    *,
    status: int,
    code: str,
    title: str,
    detail: str | None = None,
    errors: Mapping[str, Any] | list[Any] | None = None,
    instance: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": title,
        "status": status,
        "detail": detail or title,
        "code": code,
    }
    if errors is not None:
        body["errors"] = errors
    if instance:
        body["instance"] = instance
    return body


def problem_json(body: Mapping[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)
