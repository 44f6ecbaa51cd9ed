"""Prefixed opaque ids: a type prefix and 26 Crockford base32 characters, time-ordered."""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"

PREFIXES = frozenset(
    {
        "org",
        "usr",
        "key",
        "ttl",
        "ast",
        "rgt",
        "tal",
        "crd",
        "cns",
        "imp",
        "req",
        "ofr",
        "msg",
        "ctr",
        "sig",
        "att",
        "dl",
        "pay",
        "po",
        "evt",
        "idem",
        "whk",
    }
)


def new_id(prefix: str) -> str:
    """Return `prefix_` + 48 bits of milliseconds + 80 random bits; sorts by creation time."""
    if prefix not in PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}")
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return f"{prefix}_{''.join(reversed(chars))}"


def has_prefix(value: str, prefix: str) -> bool:
    return value.startswith(prefix + "_") and len(value) == len(prefix) + 27
