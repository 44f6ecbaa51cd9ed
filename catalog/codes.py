"""Normalization of territory, language and currency codes (ISO 3166-1, BCP 47, ISO 4217)."""

from __future__ import annotations

import re
from functools import lru_cache

import pycountry

__all__ = [
    "CURRENCY_CODES",
    "LANGUAGE_CODES",
    "TERRITORY_CODES",
    "WORLDWIDE",
    "currency_doc",
    "language_doc",
    "normalize_currency",
    "normalize_language",
    "normalize_territory",
    "territory_doc",
]

WORLDWIDE = "WW"

# Exceptionally reserved or common mistakes, so the error can point at the right code.
_TERRITORY_HINTS = {"UK": "GB", "EL": "GR", "EU": "a list of member states"}

# UN M.49 area codes that BCP 47 accepts as region subtags (RFC 5646 §2.2.4). The film trade
# uses `es-419` (Latin American Spanish) for dubs and subtitles, so it must pass.
# fmt: off
_M49_REGIONS = frozenset({
    "001", "002", "003", "005", "009", "011", "013", "014", "015", "017", "018", "019", "021",
    "029", "030", "034", "035", "039", "053", "054", "057", "061", "142", "143", "145", "150",
    "151", "154", "155", "202", "419",
})
# fmt: on

# ISO 4217 codes that are not money anyone can be paid in: precious metals, bond-market units,
# special drawing rights, and the testing / "no currency" codes.
_NON_MONEY_CURRENCIES = frozenset(
    {"XAG", "XAU", "XPD", "XPT", "XBA", "XBB", "XBC", "XBD", "XDR", "XSU", "XUA", "XTS", "XXX"}
)

_ALPHA2 = re.compile(r"[A-Za-z]{2}")
_ALPHA3 = re.compile(r"[A-Za-z]{3}")
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}")
_SCRIPT = re.compile(r"[A-Za-z]{4}")
_REGION = re.compile(r"[A-Za-z]{2}|[0-9]{3}")


def _text(code: object, what: str) -> str:
    if not isinstance(code, str):
        raise ValueError(f"{what} must be a string, not {type(code).__name__}")
    stripped = code.strip()
    if not stripped:
        raise ValueError(f"{what} must not be empty")
    return stripped


@lru_cache(maxsize=1024)
def normalize_territory(code: str) -> str:
    """Return the upper-case ISO 3166-1 alpha-2 code, or `WW` for worldwide."""
    text = _text(code, "territory")
    upper = text.upper()
    if upper == WORLDWIDE:
        return WORLDWIDE
    if _ALPHA2.fullmatch(text) and pycountry.countries.get(alpha_2=upper) is not None:
        return upper
    hint = _TERRITORY_HINTS.get(upper)
    suffix = f" (use {hint})" if hint else ""
    raise ValueError(
        f"unknown territory {text!r}: expected an ISO 3166-1 alpha-2 code or WW{suffix}"
    )


def _primary_language(subtag: str, tag: str) -> str:
    lower = subtag.lower()
    if len(lower) == 2:
        if pycountry.languages.get(alpha_2=lower) is not None:
            return lower
        raise ValueError(f"unknown language {tag!r}: {subtag!r} is not an ISO 639-1 code")
    language = pycountry.languages.get(alpha_3=lower)
    if language is None:
        raise ValueError(f"unknown language {tag!r}: {subtag!r} is not an ISO 639-3 code")
    # BCP 47 requires the shortest code: `eng` is spelled `en`.
    alpha_2: str | None = getattr(language, "alpha_2", None)
    return alpha_2 if alpha_2 is not None else lower


def _script(subtag: str, tag: str) -> str:
    title = subtag.title()
    if pycountry.scripts.get(alpha_4=title) is None:
        raise ValueError(f"unknown language {tag!r}: {subtag!r} is not an ISO 15924 script")
    return title


def _region(subtag: str, tag: str) -> str:
    if subtag.isdigit():
        if subtag in _M49_REGIONS:
            return subtag
        raise ValueError(f"unknown language {tag!r}: {subtag!r} is not a UN M.49 area code")
    upper = subtag.upper()
    if pycountry.countries.get(alpha_2=upper) is None:
        raise ValueError(f"unknown language {tag!r}: {subtag!r} is not an ISO 3166-1 region")
    return upper


@lru_cache(maxsize=1024)
def normalize_language(code: str) -> str:
    """Return a canonical BCP 47 tag (`language[-Script][-REGION]`), e.g. `pt-BR`, `zh-Hant-TW`."""
    tag = _text(code, "language")
    # `pt_BR` is the POSIX locale spelling of the same tag; accept it.
    subtags = tag.replace("_", "-").split("-")
    if not _LANGUAGE.fullmatch(subtags[0]):
        raise ValueError(
            f"invalid language {tag!r}: expected an ISO 639-1 code or a BCP 47 tag such as pt-BR"
        )
    parts = [_primary_language(subtags[0], tag)]
    rest = subtags[1:]
    if rest and _SCRIPT.fullmatch(rest[0]):
        parts.append(_script(rest.pop(0), tag))
    if rest and _REGION.fullmatch(rest[0]):
        parts.append(_region(rest.pop(0), tag))
    if rest:
        # Variants, extensions and private use are legal BCP 47 but unused in the trade; refusing
        # them keeps one spelling per language, which search and matching rely on.
        raise ValueError(
            f"unsupported language {tag!r}: only language, script and region subtags are accepted"
        )
    return "-".join(parts)


@lru_cache(maxsize=256)
def normalize_currency(code: str) -> str:
    """Return the lower-case ISO 4217 code of a real currency, e.g. `usd`."""
    text = _text(code, "currency")
    upper = text.upper()
    if (
        _ALPHA3.fullmatch(text)
        and upper not in _NON_MONEY_CURRENCIES
        and pycountry.currencies.get(alpha_3=upper) is not None
    ):
        return upper.lower()
    raise ValueError(f"unknown currency {text!r}: expected an ISO 4217 code such as usd")


# The codes as the OpenAPI document states them (enums a client generator can use). The API
# also accepts other spellings its normalizers read (lower-case territories, BCP 47 tags).
TERRITORY_CODES: tuple[str, ...] = (
    *sorted(country.alpha_2 for country in pycountry.countries),
    WORLDWIDE,
)
CURRENCY_CODES: tuple[str, ...] = tuple(
    sorted(
        currency.alpha_3.lower()
        for currency in pycountry.currencies
        if currency.alpha_3 not in _NON_MONEY_CURRENCIES
    )
)
LANGUAGE_CODES: tuple[str, ...] = tuple(
    sorted(language.alpha_2 for language in pycountry.languages if hasattr(language, "alpha_2"))
)


def territory_doc(
    description: str = "ISO 3166-1 alpha-2 code, or WW for worldwide.",
) -> dict[str, object]:
    """OpenAPI metadata of a territory field (marshmallow `metadata=`)."""
    return {"enum": list(TERRITORY_CODES), "description": description}


def currency_doc(description: str = "ISO 4217 code, lower case.") -> dict[str, object]:
    return {"enum": list(CURRENCY_CODES), "description": description}


def language_doc(
    description: str = "ISO 639-1 code (a BCP 47 tag such as pt-BR is accepted too).",
) -> dict[str, object]:
    return {"enum": list(LANGUAGE_CODES), "description": description}
