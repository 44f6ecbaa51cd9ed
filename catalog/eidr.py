"""EIDR content IDs: `10.5240/XXXX-XXXX-XXXX-XXXX-XXXX-C` with an ISO 7064 Mod 37,36 check."""

from __future__ import annotations

import re

__all__ = ["EIDR_PREFIX", "eidr_check_character", "format_eidr", "validate_eidr"]

EIDR_PREFIX = "10.5240/"

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_MODULUS = 36
_HEX20 = re.compile(r"[0-9A-F]{20}")
# The check character ranges over the whole alphabet, not just hex.
_CONTENT_ID = re.compile(
    r"10\.5240/([0-9A-F]{4})-([0-9A-F]{4})-([0-9A-F]{4})-([0-9A-F]{4})-([0-9A-F]{4})-([0-9A-Z])"
)


def eidr_check_character(twenty_hex: str) -> str:
    """Return the ISO 7064 Mod 37,36 check character of an EIDR ID's 20 hex digits."""
    digits = twenty_hex.upper()
    if not _HEX20.fullmatch(digits):
        raise ValueError(f"expected 20 hexadecimal digits, got {twenty_hex!r}")
    # ISO 7064 hybrid system: P1 = M; S_j = (P_j + a_j) mod M (0 read as M);
    # P_(j+1) = 2 * S_j mod (M + 1); the check c makes (P_(n+1) + c) mod M == 1.
    product = _MODULUS
    for char in digits:
        total = (product + _ALPHABET.index(char)) % _MODULUS or _MODULUS
        product = (2 * total) % (_MODULUS + 1)
    return _ALPHABET[(1 - product) % _MODULUS]


def format_eidr(twenty_hex: str) -> str:
    """Return the canonical EIDR content ID for 20 hex digits, check character appended."""
    digits = twenty_hex.upper()
    check = eidr_check_character(digits)
    groups = "-".join(digits[i : i + 4] for i in range(0, 20, 4))
    return f"{EIDR_PREFIX}{groups}-{check}"


def validate_eidr(value: str) -> str:
    """Return the canonical (upper-case) EIDR content ID, or raise ValueError."""
    if not isinstance(value, str):
        raise ValueError(f"EIDR ID must be a string, not {type(value).__name__}")
    text = value.strip().upper()
    if not text.startswith(EIDR_PREFIX):
        raise ValueError(f"invalid EIDR ID {value!r}: a content ID starts with {EIDR_PREFIX}")
    match = _CONTENT_ID.fullmatch(text)
    if match is None:
        raise ValueError(
            f"invalid EIDR ID {value!r}: expected 10.5240/XXXX-XXXX-XXXX-XXXX-XXXX-C "
            "(20 hex digits in groups of four, then a check character)"
        )
    digits = "".join(match.groups()[:5])
    if match.group(6) != eidr_check_character(digits):
        # Not naming the expected character: a typo is likelier in the digits than in the check.
        raise ValueError(f"invalid EIDR ID {value!r}: the check character does not match")
    return text
