"""Endpoint signing secrets: made in the Standard Webhooks format, stored encrypted."""

from __future__ import annotations

import base64
import hashlib
import secrets

from cryptography.fernet import Fernet, InvalidToken

from config import ConfigurationError, Settings

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
SECRET_BYTES = 32


def new_secret() -> str:
    """A signing secret: `whsec_` and the base64 of 32 random bytes (Standard Webhooks)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


class SecretBox:
    """Encrypts and decrypts endpoints' secrets with the deployment's key."""

    def __init__(self, key: str | bytes) -> None:
        self._fernet = Fernet(key)

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            # Never the token or the secret in the message: it may end up in a job's error.
            raise ConfigurationError(
                "a webhook secret does not decrypt with WEBHOOK_SECRET_KEY (was the key changed?)"
            ) from None


def secret_box(settings: Settings) -> SecretBox:
    """The box of WEBHOOK_SECRET_KEY; outside production, one derived from SECRET_KEY when it
    is unset (production refuses to start without a key of its own: Settings.check)."""
    if settings.webhook_secret_key:
        return SecretBox(settings.webhook_secret_key)
    if settings.is_production:
        raise ConfigurationError("WEBHOOK_SECRET_KEY is required in production")
    derived = hashlib.sha256(b"clearcut webhook secrets\0" + settings.secret_key.encode()).digest()
    return SecretBox(base64.urlsafe_b64encode(derived))
