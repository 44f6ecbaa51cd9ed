"""Verify a signed manifest: the canonical bytes, their SHA-256, the Ed25519 signature."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


class ManifestInvalid(Exception):
    """The manifest is not what the service signed."""


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def canonical_bytes(contract_id: str, assets: list[dict[str, Any]]) -> bytes:
    """The signed bytes, as API.md defines them (sorted keys, compact, UTF-8)."""
    document = {"contract_id": contract_id, "assets": assets}
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def verify_manifest(manifest: dict[str, Any], signing_key: dict[str, Any]) -> None:
    """Raise ManifestInvalid unless the hash and the signature hold over the assets listed."""
    if signing_key.get("algorithm") != "Ed25519":
        raise ManifestInvalid(f"unknown signing algorithm {signing_key.get('algorithm')!r}")
    payload = canonical_bytes(manifest["contract_id"], manifest["assets"])
    digest = hashlib.sha256(payload).hexdigest()
    if digest != manifest["manifest_sha256"]:
        raise ManifestInvalid(
            f"manifest_sha256 {manifest['manifest_sha256']} is not the hash of its assets "
            f"({digest})"
        )
    key = Ed25519PublicKey.from_public_bytes(_b64url_decode(signing_key["public_key"]))
    try:
        key.verify(_b64url_decode(manifest["signature"]), payload)
    except InvalidSignature:
        raise ManifestInvalid("the manifest's signature does not verify") from None
