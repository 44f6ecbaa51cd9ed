"""Prefixed opaque ids: a type prefix and 26 Crockford base32 characters, time-ordered."""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
# A random byte's low 5 bits pick a character (256 is a multiple of 32: uniform).
_BYTE_TO_CHARACTER = bytes(_ALPHABET.encode()[byte & 31] for byte in range(256))

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
        "whe",
        "whd",
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


def new_ids(prefix: str, count: int) -> list[str]:
    """Return `count` ids of the form `new_id(prefix)` returns, for bulk writes.

    `new_id` spends longer building an id bit by bit than the import spends on the row it names.
    Here the 10 characters of the milliseconds are written once, and each of the 16 characters
    of the 80 random bits comes from one random byte (256 being a multiple of 32, its low 5 bits
    are as uniform as the byte): one clock reading and one `urandom` for them all.

    The ids come sorted. They share their milliseconds, so in random order each would land
    anywhere among the others in an index on id: rows written in the order of their ids go to
    its end instead, where a B-tree appends without splitting pages in the middle. On SQLite
    that makes the import's inserts a third cheaper (assets, credits), and their indexes smaller.
    """
    if prefix not in PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}")
    millis = int(time.time() * 1000)
    head = prefix + "_" + "".join(_ALPHABET[(millis >> shift) & 31] for shift in range(45, -5, -5))
    tail = os.urandom(16 * count).translate(_BYTE_TO_CHARACTER).decode("ascii")
    ids = [head + tail[i : i + 16] for i in range(0, 16 * count, 16)]
    ids.sort()
    return ids


class IdPool:
    """Hand out new ids one at a time, minted `new_ids` at a time (so each mint's in order)."""

    def __init__(self, size: int = 1000) -> None:
        self.size = size
        self._free: dict[str, list[str]] = {}

    def __call__(self, prefix: str) -> str:
        free = self._free.get(prefix)
        if not free:
            # Reversed so that pop() hands them out in order.
            free = self._free[prefix] = new_ids(prefix, self.size)[::-1]
        return free.pop()


def has_prefix(value: str, prefix: str) -> bool:
    return value.startswith(prefix + "_") and len(value) == len(prefix) + 27
