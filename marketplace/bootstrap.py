"""The composition root: the one place that builds a Runtime from Settings, for the web app,
the CLI and workers alike, and wires the domains' cross-domain rules explicitly.

Every entry point calls `build_runtime`; nothing registers itself on import or on create_app,
so the same rules hold whatever was built first in the process.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from catalog.rules import CATALOG_RULES
from config import ConfigurationError, Settings
from contracts.service import catalog_rules
from marketplace.accounts.cache import PRINCIPAL_CACHE, PrincipalCache
from marketplace.audit.keys import AUDIT_KEYS, AuditKeys, SigningKeyError, load_keys
from marketplace.billing.gateway import PAYMENTS, PaymentGateway, StripeGateway
from marketplace.core.db import make_engine, make_session_factory, read_only_engine, utcnow
from marketplace.core.jobs import JobQueue
from marketplace.core.pagination import CursorCodec
from marketplace.core.queue import HueyQueue, make_huey
from marketplace.core.runtime import Clock, Key, Runtime
from marketplace.core.storage import ObjectStorage
from marketplace.core.storage.s3 import S3Storage


def build_runtime(
    settings: Settings,
    *,
    statement_timeout: float | None = None,
    session_factory: sessionmaker[Session] | None = None,
    storage: ObjectStorage | None = None,
    payments: PaymentGateway | None = None,
    clock: Clock | None = None,
    queue: JobQueue | None = None,
    audit_keys: AuditKeys | None = None,
) -> Runtime:
    """Build the runtime; tests pass their own session factory, storage and payments.

    `statement_timeout` bounds each statement of the runtime's own engine, in seconds (the web
    app passes the request bound; the CLI and workers choose theirs)."""
    engine = None
    read_session_factory = None
    if session_factory is None:
        engine = make_engine(settings.database_url, statement_timeout=statement_timeout)
        session_factory = make_session_factory(engine)
        read_session_factory = make_session_factory(read_only_engine(engine))
    components: Mapping[Key[Any], object] = {
        CATALOG_RULES: catalog_rules(),
        PAYMENTS: payments or StripeGateway.from_settings(settings),
        PRINCIPAL_CACHE: PrincipalCache(settings.auth_cache_seconds),
        AUDIT_KEYS: audit_keys or _audit_keys(settings),
    }
    return Runtime(
        settings=settings,
        session_factory=session_factory,
        read_session_factory=read_session_factory,
        storage=storage or S3Storage.from_settings(settings),
        cursors=CursorCodec(settings.secret_key),
        components=components,
        clock=clock or utcnow,
        engine=engine,
        queue=queue
        if queue is not None
        else HueyQueue(make_huey(settings.queue_url, name=settings.queue_name)),
    )


def _audit_keys(settings: Settings) -> AuditKeys | None:
    """The audit signing key from its file; production refuses to start without it, elsewhere
    a process without one cannot seal or check signatures (`make run` writes one)."""
    path = settings.audit_signing_key_file
    try:
        return load_keys(path) if path else None
    except SigningKeyError as exc:
        if settings.is_production:
            raise ConfigurationError(str(exc)) from None
        return None
