"""The request lifecycle: request ids, authentication, one transaction per request,
idempotency replay, problem+json errors, metrics and access logs."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from flask import Flask, Response, g, request
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.exceptions import HTTPException

from config import Settings
from marketplace.core import idempotency, metrics
from marketplace.core.db import database_fault
from marketplace.core.errors import (
    PROBLEM_CONTENT_TYPE,
    DatabaseBusy,
    DatabaseUnavailable,
    DomainError,
    IdempotencyConflict,
    RateLimited,
    Unauthenticated,
    problem_body,
    problem_json,
)
from marketplace.core.health import StorageHealth
from marketplace.core.pagination import CursorCodec
from marketplace.core.ratelimit import RateLimiter
from marketplace.core.runtime import Key, Runtime, UnitOfWork
from marketplace.core.storage import ObjectStorage

log = logging.getLogger("marketplace.request")

API_PREFIX = "/api/v1"
# Everything under the API prefix needs a key except these (API.md, "Conventions").
PUBLIC_API_PATHS = frozenset(
    {
        f"{API_PREFIX}/openapi.json",
        f"{API_PREFIX}/manifest-signing-key",
        f"{API_PREFIX}/webhooks/stripe",
    }
)
PUBLIC_API_PREFIXES = (f"{API_PREFIX}/docs",)
# Retry-After of a request stopped at its statement bound: long enough not to invite the same
# query at once.
TIMEOUT_RETRY_AFTER_SECONDS = 30
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

HTTP_CODES = {
    400: ("bad_request", "Bad request"),
    401: ("unauthenticated", "Authentication required"),
    403: ("forbidden", "Forbidden"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    406: ("not_acceptable", "Not acceptable"),
    409: ("conflict", "Conflict"),
    413: ("payload_too_large", "Payload too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
    422: ("validation_error", "Validation failed"),
    429: ("rate_limited", "Too many requests"),
}


class Actor(Protocol):
    @property
    def user_id(self) -> str: ...
    @property
    def organization_id(self) -> str: ...


Authenticator = Callable[[Session, str], Actor | None]


@dataclass
class AppState:
    """What the web app holds between requests: the runtime every entry point shares, and
    what only HTTP needs (authentication, the rate limiter)."""

    runtime: Runtime
    authenticate: Authenticator
    # The store's cached health: what /readyz reports and download grants consult.
    storage_health: StorageHealth
    rate_limiter: RateLimiter | None = None

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    @property
    def storage(self) -> ObjectStorage:
        return self.runtime.storage

    @property
    def cursors(self) -> CursorCodec:
        return self.runtime.cursors

    @property
    def session_factory(self) -> sessionmaker[Session]:
        return self.runtime.session_factory


def state() -> AppState:
    from flask import current_app

    app_state: AppState = current_app.extensions["clearcut"]
    return app_state


T = TypeVar("T")


def component(key: Key[T]) -> T:
    """A domain component of the runtime (the payment gateway, the catalog's rules)."""
    return state().runtime.get(key)


def db() -> Session:
    """The current request's session; created on first use, committed once at the end.

    It is the session of the request's unit of work (runtime.unit_of_work), read-only for
    handlers marked @read_only."""
    uow: UnitOfWork | None = g.get("uow")
    if uow is None:
        read_only = g.get("read_only")
        if read_only is None:
            read_only = _is_read_only_request()
        uow = state().runtime.unit_of_work(read_only=read_only)
        g.uow = uow
    return uow.session


_READ_ONLY = "clearcut_read_only"
F = TypeVar("F", bound=Callable[..., Any])


def read_only(handler: F) -> F:
    """Mark a GET handler that writes nothing: its session comes from db.read_only_engine.

    Each of its statements is then a transaction of its own: on SQLite without the write lock
    BEGIN IMMEDIATE takes, so such reads run side by side and beside a writer; on PostgreSQL
    without BEGIN's and COMMIT's round trips. Authentication's occasional last_used_at update
    is one statement, still safe, and skipped rather than waited for (accounts.service).

    Never for a handler that writes (an audit event, a metered download): once the caller is
    authenticated, the request's session refuses to flush or execute an INSERT, UPDATE or
    DELETE (runtime.ReadOnlyViolation, a 500), whichever engine it is bound to, so that a write
    cannot be half-committed in autocommit.
    """
    setattr(handler, _READ_ONLY, True)
    return handler


def _is_read_only_request() -> bool:
    if request.method not in ("GET", "HEAD") or request.url_rule is None:
        return False
    from flask import current_app

    return is_read_only_view(current_app.view_functions.get(request.endpoint or ""))


def is_read_only_view(view: Any) -> bool:
    """Whether a view's GET handler is marked @read_only (a MethodView's `get`, or the view)."""
    view_class = getattr(view, "view_class", None)
    handler = getattr(view_class, "get", None) if view_class is not None else view
    return bool(getattr(handler, _READ_ONLY, False))


def current_actor() -> Any:
    actor = g.get("principal")
    if actor is None:
        raise Unauthenticated("an API key is required")
    return actor


def request_id() -> str:
    return g.get("request_id") or "-"


def is_public_path(path: str) -> bool:
    if not path.startswith(API_PREFIX + "/") and path != API_PREFIX:
        return True
    return path in PUBLIC_API_PATHS or path.startswith(PUBLIC_API_PREFIXES)


def init_app(app: Flask, app_state: AppState) -> None:
    app.extensions["clearcut"] = app_state
    app.config["MAX_CONTENT_LENGTH"] = app_state.settings.max_content_length
    app.before_request(_begin)
    app.after_request(_finish)
    app.teardown_request(_teardown)
    app.register_error_handler(DomainError, render_domain_error)
    app.register_error_handler(Exception, render_unexpected)


def _begin() -> Response | None:
    g.started = time.perf_counter()
    incoming = request.headers.get("X-Request-ID", "")
    g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
    if is_public_path(request.path):
        return None
    # Decided once: db() and the guard below both ask.
    g.read_only = read_only_request = _is_read_only_request()
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated(
            "send an API key as 'Authorization: Bearer <key>'",
            headers={"WWW-Authenticate": 'Bearer realm="clearcut"'},
        )
    actor = state().authenticate(db(), token.strip())
    if actor is None:
        raise Unauthenticated(
            "the API key is unknown or revoked",
            headers={"WWW-Authenticate": 'Bearer realm="clearcut", error="invalid_token"'},
        )
    g.principal = actor
    if read_only_request:
        db()  # the request's unit of work, read-only
        g.uow.refuse_writes()
    _rate_limit(actor)
    return _idempotency_replay()


def _rate_limit(actor: Actor) -> None:
    app_state = state()
    limit = app_state.settings.rate_limit_per_minute
    if app_state.rate_limiter is None or limit <= 0:
        return
    decision = app_state.rate_limiter.hit(f"user:{actor.user_id}", limit=limit, window=60)
    g.rate_limit = decision
    if not decision.allowed:
        raise RateLimited(
            f"more than {limit} requests a minute; retry in {decision.reset_seconds} s",
            headers={"Retry-After": str(decision.reset_seconds)},
        )


def _idempotency_replay() -> Response | None:
    key = request.headers.get("Idempotency-Key")
    if request.method != "POST" or key is None:
        return None
    key = idempotency.validate_key(key)
    if (request.content_length or 0) > state().settings.max_content_length:
        # Large uploads (catalog imports) are not buffered to be fingerprinted; those
        # endpoints are idempotent by their own design (see API.md, "Bulk import").
        return None
    fingerprint = idempotency.request_fingerprint(
        request.method, request.path, request.query_string.decode("latin-1"), request.get_data()
    )
    stored = idempotency.find_replay(
        db(), user_id=g.principal.user_id, key=key, fingerprint=fingerprint
    )
    if stored is not None:
        g.replayed = True
        return _replay_response(stored)
    g.idempotency = (key, fingerprint)
    return None


def _replay_response(stored: idempotency.StoredResponse) -> Response:
    response = Response(stored.body, status=stored.status_code, content_type=stored.content_type)
    if stored.location:
        response.headers["Location"] = stored.location
    response.headers["Idempotent-Replayed"] = "true"
    return response


def _finish(response: Response) -> Response:
    uow: UnitOfWork | None = g.pop("uow", None)
    if uow is not None:
        try:
            if response.status_code < 400 and not g.get("replayed"):
                response = _commit(uow, response)
            else:
                uow.rollback()
        finally:
            uow.close()
    response.headers["X-Request-ID"] = request_id()
    decision = g.get("rate_limit")
    if decision is not None:
        response.headers["RateLimit-Limit"] = str(decision.limit)
        response.headers["RateLimit-Remaining"] = str(decision.remaining)
        response.headers["RateLimit-Reset"] = str(decision.reset_seconds)
    _observe(response)
    return response


def _commit(uow: UnitOfWork, response: Response) -> Response:
    session = uow.session
    pending = g.pop("idempotency", None)
    if pending is not None:
        key, fingerprint = pending
        idempotency.store_response(
            session,
            user_id=g.principal.user_id,
            key=key,
            method=request.method,
            path=request.path,
            fingerprint=fingerprint,
            response=response,
        )
    try:
        uow.commit()
    except IntegrityError:
        uow.rollback()
        if pending is None:
            raise
        # A concurrent request with the same key committed first: answer as it did.
        retry = state().session_factory()
        try:
            stored = idempotency.find_replay(
                retry, user_id=g.principal.user_id, key=pending[0], fingerprint=pending[1]
            )
        except IdempotencyConflict as exc:
            return render_domain_error(exc)
        finally:
            retry.close()
        if stored is None:
            raise
        return _replay_response(stored)
    return response


def _teardown(exc: BaseException | None) -> None:
    uow: UnitOfWork | None = g.pop("uow", None)
    if uow is not None:
        uow.rollback()
        uow.close()


def _observe(response: Response) -> None:
    started = g.get("started")
    elapsed = time.perf_counter() - started if started is not None else 0.0
    route = request.url_rule.rule if request.url_rule is not None else "<unmatched>"
    metrics.observe_request(request.method, route, response.status_code, elapsed)
    principal = g.get("principal")
    log.info(
        "request",
        extra={
            "method": request.method,
            "path": request.path,
            "route": route,
            "status": response.status_code,
            "duration_ms": round(elapsed * 1000, 2),
            "user_id": getattr(principal, "user_id", None),
        },
    )


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str | None = None,
    errors: Mapping[str, Any] | list[Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    body = problem_body(status=status, code=code, title=title, detail=detail, errors=errors)
    response = Response(problem_json(body), status=status, content_type=PROBLEM_CONTENT_TYPE)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def render_domain_error(exc: DomainError) -> Response:
    return problem_response(exc.status, exc.code, exc.title, exc.detail, exc.errors, exc.headers)


def render_http_exception(exc: HTTPException) -> Response:
    status = exc.code or 500
    if status >= 500:
        return render_unexpected(exc)
    code, title = HTTP_CODES.get(status, ("http_error", exc.name))
    data = getattr(exc, "data", None) or {}
    messages = data.get("messages") or data.get("errors")
    errors = None
    detail = exc.description if status not in (404, 422) else None
    if isinstance(messages, Mapping):
        locations = list(messages)
        errors = flatten_errors(messages[locations[0]] if len(locations) == 1 else messages)
        if status == 422 and locations and all(loc in ("query", "headers") for loc in locations):
            # API.md: a bad query parameter is a 400, malformed input rather than invalid data.
            status, code, title = 400, "bad_request", "Bad request"
        detail = _summary(errors) if errors else detail
        if "json" in locations and status == 400:
            detail = "the request body is not valid JSON"
    if status == 404:
        detail = "no such resource"
    headers = dict(data.get("headers") or {})
    if status == 405 and exc.get_response().headers.get("Allow"):
        headers["Allow"] = exc.get_response().headers["Allow"]
    return problem_response(status, code, title, detail, errors, headers)


def render_unexpected(exc: BaseException) -> Response:
    if isinstance(exc, DomainError):
        return render_domain_error(exc)
    if isinstance(exc, HTTPException) and exc.code and exc.code < 500:
        return render_http_exception(exc)
    original = getattr(exc, "original_exception", None) or exc
    fault = database_fault(original)
    if fault is not None:
        return _render_database_fault(fault, original)
    log.error("unhandled error", exc_info=(type(original), original, original.__traceback__))
    # Never str(exc): internals (SQL, paths, secrets) stay in the log, tied by the request id.
    return problem_response(
        500,
        "internal_error",
        "Internal server error",
        f"an unexpected error occurred; quote request id {request_id()} to support",
    )


def _render_database_fault(fault: str, exc: BaseException) -> Response:
    """A 503 the client can retry: the request's transaction was rolled back whole."""
    # The exception's text (SQL, host names) stays in the log, tied by the request id.
    if fault == "busy":
        log.warning("database busy", exc_info=(type(exc), exc, exc.__traceback__))
        error: DomainError = DatabaseBusy(
            "the database is busy; nothing was changed, retry in a moment",
            headers={"Retry-After": "1"},
        )
    elif fault == "timeout":
        # The same request would run as long again: a retry at once would only hold another
        # worker, so the client is asked to wait, and to ask for less.
        log.warning("statement timeout", exc_info=(type(exc), exc, exc.__traceback__))
        error = DatabaseBusy(
            "the request took longer than the database allows; nothing was changed. "
            "Narrow it (fewer filters' matches, a smaller page) or retry later",
            headers={"Retry-After": str(TIMEOUT_RETRY_AFTER_SECONDS)},
        )
    else:
        log.error("database unavailable", exc_info=(type(exc), exc, exc.__traceback__))
        error = DatabaseUnavailable(
            "the database cannot be reached; nothing was changed, retry later",
            headers={"Retry-After": "5"},
        )
    return render_domain_error(error)


def flatten_errors(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """Turn marshmallow's nested error dicts into {"a.b.0.c": [messages]}."""
    flat: dict[str, list[str]] = {}
    if isinstance(messages, Mapping):
        for name, value in messages.items():
            path = f"{prefix}.{name}" if prefix else str(name)
            flat.update(flatten_errors(value, path))
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        flat[prefix or "_schema"] = list(messages)
    elif isinstance(messages, list):
        for i, value in enumerate(messages):
            flat.update(flatten_errors(value, f"{prefix}.{i}" if prefix else str(i)))
    else:
        flat[prefix or "_schema"] = [str(messages)]
    return flat


def _summary(errors: Mapping[str, list[str]]) -> str:
    parts = [f"{name}: {' '.join(msgs)}" for name, msgs in list(errors.items())[:5]]
    more = len(errors) - 5
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")
