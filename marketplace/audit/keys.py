"""The audit log's Ed25519 signing key: read from a file named in settings, never stored in the
database, so someone who can write the database cannot sign a rewritten history."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from marketplace.core.runtime import Key


class SigningKeyError(RuntimeError):
    """The signing key file is missing or unreadable."""


@dataclass(frozen=True)
class AuditKeys:
    """The public key (always) and the private key (where this process may seal)."""

    public: Ed25519PublicKey
    private: Ed25519PrivateKey | None = None
    _mac_key: bytes | None = field(default=None, repr=False)

    @classmethod
    def from_private(cls, private: Ed25519PrivateKey) -> AuditKeys:
        raw = private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        mac_key = hashlib.sha256(b"clearcut audit event mac\x00" + raw).digest()
        return cls(public=private.public_key(), private=private, _mac_key=mac_key)

    @classmethod
    def generate(cls) -> AuditKeys:
        return cls.from_private(Ed25519PrivateKey.generate())

    @property
    def public_raw(self) -> bytes:
        return self.public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    @property
    def key_id(self) -> str:
        """SHA-256 of the raw public key, hex: which key signed a head."""
        return hashlib.sha256(self.public_raw).hexdigest()

    @property
    def public_pem(self) -> str:
        return self.public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()

    @property
    def public_base64(self) -> str:
        return base64.b64encode(self.public_raw).decode()

    @property
    def can_seal(self) -> bool:
        return self.private is not None

    def sign(self, message: bytes) -> str:
        if self.private is None:
            raise SigningKeyError("this process has only the audit log's public key")
        return self.private.sign(message).hex()

    def verify(self, signature_hex: str, message: bytes) -> bool:
        try:
            self.public.verify(bytes.fromhex(signature_hex), message)
        except (InvalidSignature, ValueError):
            return False
        return True

    def mac(self, event_hash: str) -> str | None:
        """The event's seal under the secret key; None without the private key."""
        if self._mac_key is None:
            return None
        return hmac.digest(self._mac_key, bytes.fromhex(event_hash), "sha256").hex()


AUDIT_KEYS: Key[AuditKeys | None] = Key("audit.keys")


def load_keys(path: str | os.PathLike[str]) -> AuditKeys:
    """Read a private key (PEM PKCS#8, or 32 raw bytes) or a public key (PEM) from `path`."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SigningKeyError(f"cannot read the audit signing key {path}: {exc.strerror}") from None
    if len(data) == 32:
        return AuditKeys.from_private(Ed25519PrivateKey.from_private_bytes(data))
    try:
        if b"PUBLIC KEY" in data:
            public = serialization.load_pem_public_key(data)
            if not isinstance(public, Ed25519PublicKey):
                raise SigningKeyError(f"{path} is not an Ed25519 public key")
            return AuditKeys(public=public)
        private = serialization.load_pem_private_key(data, password=None)
    except ValueError:
        raise SigningKeyError(f"{path} holds no Ed25519 key in PEM") from None
    if not isinstance(private, Ed25519PrivateKey):
        raise SigningKeyError(f"{path} is not an Ed25519 private key")
    return AuditKeys.from_private(private)


def write_new_key(path: str | os.PathLike[str]) -> AuditKeys:
    """Generate a private key into `path` (mode 0600), unless one is there; return it."""
    target = Path(path)
    if target.exists():
        return load_keys(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    return AuditKeys.from_private(private)
