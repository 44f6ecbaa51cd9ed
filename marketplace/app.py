"""create_app(): the only module that imports every blueprint."""

from __future__ import annotations

import functools

from flask import Flask
from sqlalchemy.orm import Session, sessionmaker

from catalog import routes as catalog_routes
from catalog.imports import routes as import_routes
from catalog.search import routes as search_routes
from config import Settings, load_settings
from contracts import routes as contracts_routes
from marketplace.accounts import routes as accounts_routes
from marketplace.accounts.cache import PRINCIPAL_CACHE
from marketplace.accounts.service import authenticate
from marketplace.audit import routes as audit_routes
from marketplace.billing import routes as billing_routes
from marketplace.billing.gateway import PaymentGateway
from marketplace.bootstrap import build_runtime
from marketplace.brokering import routes as brokering_routes
from marketplace.core import ops
from marketplace.core.api import Api
from marketplace.core.health import StorageHealth
from marketplace.core.jobs import JobQueue
from marketplace.core.logs import configure_logging
from marketplace.core.ratelimit import MemoryRateLimiter, RedisRateLimiter
from marketplace.core.runtime import Runtime
from marketplace.core.storage import ObjectStorage
from marketplace.core.web import AppState, init_app
from marketplace.delivery import routes as delivery_routes
from marketplace.webhooks import routes as webhook_routes
from marketplace.worker import routes as job_routes

API_TITLE = "Clearcut marketplace API"
API_VERSION = "v1"


def create_app(
    settings: Settings | None = None,
    *,
    runtime: Runtime | None = None,
    session_factory: sessionmaker[Session] | None = None,
    storage: ObjectStorage | None = None,
    payments: PaymentGateway | None = None,
    storage_health: StorageHealth | None = None,
    queue: JobQueue | None = None,
) -> Flask:
    """Build the WSGI app on a runtime (marketplace.bootstrap), built here from the settings
    unless given; tests pass their own session factory, storage and payments."""
    if runtime is None:
        settings = settings or load_settings()
        settings.check()
        runtime = build_runtime(
            settings,
            statement_timeout=settings.statement_timeout,
            session_factory=session_factory,
            storage=storage,
            payments=payments,
            queue=queue,
        )
    settings = runtime.settings
    configure_logging(settings.log_level, json_lines=settings.log_json)
    app = Flask("marketplace")
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep schema field order
    app.config.update(
        API_TITLE=API_TITLE,
        API_VERSION=API_VERSION,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api/v1",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/",
        API_SPEC_OPTIONS={
            "info": {"description": "Licensing film and TV libraries as AI training data."},
            "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
            "security": [{"bearerAuth": []}],
        },
    )
    init_app(
        app,
        AppState(
            runtime=runtime,
            authenticate=functools.partial(authenticate, cache=runtime.get(PRINCIPAL_CACHE)),
            storage_health=storage_health or StorageHealth(runtime.storage),
            rate_limiter=(
                RedisRateLimiter.from_url(settings.redis_url)
                if settings.redis_url
                else MemoryRateLimiter()
            ),
        ),
    )
    app.register_blueprint(ops.bp)
    api = Api(app)
    for blueprint in (
        accounts_routes.blp,
        audit_routes.blp,
        catalog_routes.blp,
        search_routes.blp,
        import_routes.blp,
        contracts_routes.blp,
        brokering_routes.blp,
        delivery_routes.blp,
        billing_routes.blp,
        job_routes.blp,
        webhook_routes.blp,
    ):
        api.register_blueprint(blueprint)
    return app
