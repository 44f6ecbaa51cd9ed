"""Signed manifests: canonical JSON bytes, their SHA-256 and an Ed25519 signature.

The signing key is derived from SECRET_KEY (HKDF-SHA256 with a fixed label), so every worker on
every host signs alike without sharing a key file; rotating SECRET_KEY rotates the key, and
signatures made before no longer verify with the newly published public key.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from contracts.manifests import canonical_bytes

__all__ = ["ALGORITHM", "SignedManifest", "canonical_bytes", "public_key_b64url", "sign_manifest"]

ALGORITHM = "Ed25519"
# Changing the label changes every manifest key: it names the purpose and a version.
_HKDF_INFO = b"clearcut manifest signing key v1"
_HKDF_SALT = b"clearcut.delivery.manifest"


@dataclass(frozen=True)
class SignedManifest:
    contract_id: str
    assets: list[dict[str, Any]]
    manifest_sha256: str
    signature: str
    version: int | None = None  # the frozen version (migration 0023)
    frozen_at: datetime | None = None


def b64url(data: bytes) -> str:
    """Base64url without padding (RFC 4648 §5, as JOSE uses it)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode base64url with or without its padding."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@lru_cache(maxsize=4)
def signing_key(secret_key: str) -> Ed25519PrivateKey:
    """The Ed25519 key derived from the application secret (deterministic across hosts)."""
    seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=_HKDF_SALT, info=_HKDF_INFO).derive(
        secret_key.encode("utf-8")
    )
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key_b64url(secret_key: str) -> str:
    """The raw 32-byte public key, base64url without padding, as published to clients."""
    raw = (
        signing_key(secret_key)
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    return b64url(raw)


def sign_manifest(
    secret_key: str,
    contract_id: str,
    assets: Sequence[Mapping[str, Any]],
    *,
    version: int | None = None,
    frozen_at: datetime | None = None,
) -> SignedManifest:
    """Hash and sign the canonical bytes of a contract's manifest."""
    payload = canonical_bytes(contract_id, assets)
    return SignedManifest(
        contract_id=contract_id,
        assets=[dict(a) for a in assets],
        manifest_sha256=hashlib.sha256(payload).hexdigest(),
        signature=b64url(signing_key(secret_key).sign(payload)),
        version=version,
        frozen_at=frozen_at,
    )
