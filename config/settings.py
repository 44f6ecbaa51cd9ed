"""Settings read from the environment, with embedded defaults outside production."""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Where `make run` keeps its SQLite file and its servers' data; CLEARCUT_INSTANCE_DIR moves it.
INSTANCE_DIR = Path(os.environ.get("CLEARCUT_INSTANCE_DIR") or ROOT / "instance")

# Development-only defaults. Production refuses to start while any of these is in use.
DEV_SECRET_KEY = "dev-insecure-secret-key-change-me"  # noqa: S105 - a known marker, refused in production
DEV_S3_ACCESS_KEY = "clearcut-dev"
DEV_S3_SECRET_KEY = "clearcut-dev-secret"  # noqa: S105 - embedded local SeaweedFS only
DEV_STRIPE_API_KEY = "sk_test_clearcut_dev"  # noqa: S105 - localstripe accepts any sk_ key
DEV_STRIPE_WEBHOOK_SECRET = "whsec_clearcut_dev"  # noqa: S105 - localstripe only

ENVIRONMENTS = ("development", "test", "production")


class ConfigurationError(RuntimeError):
    """The environment does not describe a runnable configuration."""


@dataclass(frozen=True)
class Settings:
    """Every tunable of the service, in one immutable object."""

    env: str = "development"
    database_url: str = field(default_factory=lambda: f"sqlite:///{INSTANCE_DIR / 'clearcut.db'}")
    secret_key: str = DEV_SECRET_KEY
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_bucket: str = "clearcut"
    aws_access_key_id: str | None = DEV_S3_ACCESS_KEY
    aws_secret_access_key: str | None = DEV_S3_SECRET_KEY
    stripe_api_key: str = DEV_STRIPE_API_KEY
    stripe_api_base: str | None = None
    stripe_webhook_secret: str = DEV_STRIPE_WEBHOOK_SECRET
    fee_bps: int = 2000
    download_url_ttl_seconds: int = 300
    upload_url_ttl_seconds: int = 3600
    max_content_length: int = 1024 * 1024
    max_import_bytes: int = 512 * 1024 * 1024
    # An import file over HTTP past this size is imported by a worker (202, then its progress).
    import_async_bytes: int = 16 * 1024 * 1024
    log_level: str = "INFO"
    log_json: bool = True
    redis_url: str | None = None
    # Requests per API key per minute; 0 turns the limit off.
    rate_limit_per_minute: int = 1200
    # How long a process answers an API key from memory (accounts.cache): a key revoked by
    # another worker or host is still honoured here for at most this long. 0 (the default): no
    # cache, so revocation is at once everywhere, as API.md promises; opt in knowingly.
    auth_cache_seconds: int = 0
    # The most one statement of an API request may run, in milliseconds (0: unbounded); past it
    # the request answers 503 database_busy and frees its worker.
    statement_timeout_ms: int = 5000
    # The same bound for an import over HTTP, which runs longer statements (bulk writes).
    import_statement_timeout_ms: int = 600_000
    # The job queue: a SQLite file (one machine, any number of processes) or Redis.
    queue_url: str = field(default_factory=lambda: f"sqlite:///{INSTANCE_DIR / 'queue.db'}")
    # The queue's name: deployments (or test runs) sharing one Redis keep apart by it.
    queue_name: str = "clearcut"
    # How long a worker holds a job before another may take it over (renewed while it runs).
    job_lease_seconds: int = 60
    # The audit log's Ed25519 signing key (PEM, or 32 raw bytes), kept out of the database.
    # Outside production a missing file means a process that cannot seal (`make run` writes one).
    audit_signing_key_file: str | None = field(
        default_factory=lambda: str(INSTANCE_DIR / "audit-signing-key.pem")
    )
    # The Fernet key that encrypts webhook endpoints' signing secrets at rest. Empty outside
    # production: one is derived from SECRET_KEY (marketplace.webhooks.crypto).
    webhook_secret_key: str = ""

    @property
    def statement_timeout(self) -> float | None:
        """An API request's statement bound in seconds, or None for none."""
        return self.statement_timeout_ms / 1000 if self.statement_timeout_ms > 0 else None

    @property
    def import_statement_timeout(self) -> float | None:
        """An HTTP import's statement bound in seconds, or None for none."""
        ms = self.import_statement_timeout_ms
        return ms / 1000 if ms > 0 else None

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    def with_overrides(self, **changes: Any) -> Settings:
        """Return a copy with some fields replaced (tests, the dev stack)."""
        return replace(self, **changes)

    def check(self) -> None:
        """Raise ConfigurationError when the settings cannot run safely in their environment."""
        if self.env not in ENVIRONMENTS:
            raise ConfigurationError(f"MARKETPLACE_ENV must be one of {', '.join(ENVIRONMENTS)}")
        if not 0 <= self.fee_bps <= 10_000:
            raise ConfigurationError("MARKETPLACE_FEE_BPS must be between 0 and 10000")
        if not 1 <= self.download_url_ttl_seconds <= 3600:
            raise ConfigurationError("DOWNLOAD_URL_TTL_SECONDS must be between 1 and 3600")
        if self.statement_timeout_ms < 0 or self.import_statement_timeout_ms < 0:
            raise ConfigurationError(
                "DATABASE_STATEMENT_TIMEOUT_MS and IMPORT_STATEMENT_TIMEOUT_MS must not be "
                "negative (0 turns the bound off)"
            )
        if not 0 <= self.auth_cache_seconds <= 60:
            raise ConfigurationError(
                "AUTH_CACHE_SECONDS must be between 0 (no cache) and 60 (the last-used mark's "
                "resolution)"
            )
        if not self.is_production:
            return
        problems = []
        if self.secret_key == DEV_SECRET_KEY or len(self.secret_key) < 32:
            problems.append("SECRET_KEY (at least 32 characters, not the development default)")
        if self.stripe_api_key == DEV_STRIPE_API_KEY:
            problems.append("STRIPE_API_KEY")
        if self.stripe_webhook_secret == DEV_STRIPE_WEBHOOK_SECRET:
            problems.append("STRIPE_WEBHOOK_SECRET")
        if self.aws_secret_access_key == DEV_S3_SECRET_KEY:
            problems.append("AWS_SECRET_ACCESS_KEY (or unset it to use the instance role)")
        if self.database_url.startswith("sqlite"):
            problems.append("DATABASE_URL (PostgreSQL in production)")
        if self.queue_url.startswith("sqlite"):
            problems.append("QUEUE_URL (Redis in production: workers on several machines)")
        if not self.audit_signing_key_file:
            problems.append("AUDIT_SIGNING_KEY_FILE (the audit log's Ed25519 signing key)")
        if not _is_fernet_key(self.webhook_secret_key):
            problems.append(
                "WEBHOOK_SECRET_KEY (a Fernet key: 32 bytes, URL-safe base64; see docs/webhooks.md)"
            )
        if problems:
            raise ConfigurationError(
                "refusing to start in production with missing or default settings: "
                + "; ".join(problems)
            )


def _is_fernet_key(value: str) -> bool:
    try:
        return len(base64.urlsafe_b64decode(value.encode())) == 32 if value else False
    except ValueError:
        return False


def _int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be an integer, got {raw!r}") from None


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from environment variables (names as in API.md, "Running it")."""
    env = os.environ if environ is None else environ
    base = Settings()
    production = env.get("MARKETPLACE_ENV", "development") == "production"

    def pick(name: str, default: str | None) -> str | None:
        value = env.get(name)
        if value:
            return value
        # In production no secret falls back to a development default.
        return None if production else default

    settings = Settings(
        env=env.get("MARKETPLACE_ENV", "development"),
        database_url=env.get("DATABASE_URL") or base.database_url,
        secret_key=pick("SECRET_KEY", base.secret_key) or "",
        s3_endpoint_url=env.get("S3_ENDPOINT_URL") or None,
        s3_region=env.get("S3_REGION") or base.s3_region,
        s3_bucket=env.get("S3_BUCKET") or base.s3_bucket,
        aws_access_key_id=pick("AWS_ACCESS_KEY_ID", base.aws_access_key_id),
        aws_secret_access_key=pick("AWS_SECRET_ACCESS_KEY", base.aws_secret_access_key),
        stripe_api_key=pick("STRIPE_API_KEY", base.stripe_api_key) or "",
        stripe_api_base=env.get("STRIPE_API_BASE") or None,
        stripe_webhook_secret=pick("STRIPE_WEBHOOK_SECRET", base.stripe_webhook_secret) or "",
        fee_bps=_int(env, "MARKETPLACE_FEE_BPS", base.fee_bps),
        download_url_ttl_seconds=_int(env, "DOWNLOAD_URL_TTL_SECONDS", 300),
        upload_url_ttl_seconds=_int(env, "UPLOAD_URL_TTL_SECONDS", 3600),
        max_content_length=_int(env, "MAX_CONTENT_LENGTH", base.max_content_length),
        max_import_bytes=_int(env, "MAX_IMPORT_BYTES", base.max_import_bytes),
        import_async_bytes=_int(env, "IMPORT_ASYNC_BYTES", base.import_async_bytes),
        log_level=env.get("LOG_LEVEL") or base.log_level,
        log_json=env.get("LOG_FORMAT", "json") != "text",
        redis_url=env.get("REDIS_URL") or None,
        rate_limit_per_minute=_int(env, "RATE_LIMIT_PER_MINUTE", base.rate_limit_per_minute),
        auth_cache_seconds=_int(env, "AUTH_CACHE_SECONDS", base.auth_cache_seconds),
        statement_timeout_ms=_int(env, "DATABASE_STATEMENT_TIMEOUT_MS", base.statement_timeout_ms),
        import_statement_timeout_ms=_int(
            env, "IMPORT_STATEMENT_TIMEOUT_MS", base.import_statement_timeout_ms
        ),
        queue_url=env.get("QUEUE_URL") or base.queue_url,
        queue_name=env.get("QUEUE_NAME") or base.queue_name,
        job_lease_seconds=_int(env, "JOB_LEASE_SECONDS", base.job_lease_seconds),
        audit_signing_key_file=pick("AUDIT_SIGNING_KEY_FILE", base.audit_signing_key_file),
        webhook_secret_key=env.get("WEBHOOK_SECRET_KEY") or "",
    )
    if production:
        missing = [
            n
            for n in (
                "SECRET_KEY",
                "STRIPE_API_KEY",
                "STRIPE_WEBHOOK_SECRET",
                "DATABASE_URL",
                "AUDIT_SIGNING_KEY_FILE",
                "WEBHOOK_SECRET_KEY",
            )
            if not env.get(n)
        ]
        if missing:
            raise ConfigurationError(
                "refusing to start in production without: " + ", ".join(missing)
            )
    settings.check()
    return settings
