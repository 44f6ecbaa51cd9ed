"""API key format: `cc_<prefix>_<secret>`; the prefix finds the row, the hash proves the secret."""

from __future__ import annotations

import hashlib
import hmac
import secrets

KEY_PREFIX = "cc"
_PREFIX_LEN = 12


def generate_key() -> tuple[str, str, str]:
    """Return (full key to show once, lookup prefix, SHA-256 hex to store)."""
    prefix = secrets.token_hex(_PREFIX_LEN // 2)
    secret = secrets.token_urlsafe(32)
    key = f"{KEY_PREFIX}_{prefix}_{secret}"
    return key, prefix, hash_key(key)


def hash_key(key: str) -> str:
    # Keys carry 256 bits of randomness, so a fast hash is as strong as a slow one here
    # (GitHub and Stripe do the same); a slow KDF would only cost every request.
    return hashlib.sha256(key.encode()).hexdigest()


def parse_prefix(key: str) -> str | None:
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or len(parts[1]) != _PREFIX_LEN:
        return None
    return parts[1]


def matches(key: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_key(key), stored_hash)


def digest_matches(digest: str, stored_hash: str) -> bool:
    """`matches` for a key already hashed (hash_key)."""
    return hmac.compare_digest(digest, stored_hash)
