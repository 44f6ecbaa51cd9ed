"""Settings: embedded defaults in development, refusal in production without secrets."""

from __future__ import annotations

import pytest

from config import ConfigurationError, load_settings

PRODUCTION = {
    "MARKETPLACE_ENV": "production",
    "SECRET_KEY": "s" * 40,
    "DATABASE_URL": "postgresql+psycopg://app@db/clearcut",
    "STRIPE_API_KEY": "sk_live_abc",
    "STRIPE_WEBHOOK_SECRET": "whsec_live",
    "QUEUE_URL": "redis://queue:6379/0",
    "AUDIT_SIGNING_KEY_FILE": "/run/secrets/audit-signing-key.pem",
    "WEBHOOK_SECRET_KEY": "Yk6-6vXbYaEjJkP6mWuy1sBHCWqg9Qx3r0aQwq3xS8A=",
}


def test_development_has_embedded_defaults() -> None:
    settings = load_settings({})
    assert settings.env == "development"
    assert settings.database_url.startswith("sqlite:///")
    assert settings.fee_bps == 2000 and settings.download_url_ttl_seconds == 300


def test_production_with_every_secret_starts() -> None:
    settings = load_settings(PRODUCTION)
    assert settings.is_production
    assert settings.aws_secret_access_key is None  # the instance role, not a dev default


@pytest.mark.parametrize(
    "missing",
    [
        "SECRET_KEY",
        "DATABASE_URL",
        "STRIPE_API_KEY",
        "STRIPE_WEBHOOK_SECRET",
        "AUDIT_SIGNING_KEY_FILE",
        "WEBHOOK_SECRET_KEY",
    ],
)
def test_production_refuses_a_missing_secret(missing: str) -> None:
    env = {k: v for k, v in PRODUCTION.items() if k != missing}
    with pytest.raises(ConfigurationError, match=missing):
        load_settings(env)


def test_production_refuses_development_defaults() -> None:
    with pytest.raises(ConfigurationError, match="SECRET_KEY"):
        load_settings({**PRODUCTION, "SECRET_KEY": "dev-insecure-secret-key-change-me"})
    with pytest.raises(ConfigurationError, match="DATABASE_URL"):
        load_settings({**PRODUCTION, "DATABASE_URL": "sqlite:///x.db"})
    # Workers on several machines share the queue: not a local SQLite file.
    with pytest.raises(ConfigurationError, match="QUEUE_URL"):
        load_settings({k: v for k, v in PRODUCTION.items() if k != "QUEUE_URL"})
    # Webhook secrets are encrypted with a Fernet key of production's own, never a derived one.
    with pytest.raises(ConfigurationError, match="WEBHOOK_SECRET_KEY"):
        load_settings({**PRODUCTION, "WEBHOOK_SECRET_KEY": "not-a-fernet-key"})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DOWNLOAD_URL_TTL_SECONDS", "3601"),
        ("MARKETPLACE_FEE_BPS", "-1"),
        ("MARKETPLACE_FEE_BPS", "lots"),
    ],
)
def test_out_of_range_values_are_refused(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        load_settings({name: value})
