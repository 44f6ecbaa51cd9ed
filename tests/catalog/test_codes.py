"""Territory, language and currency normalization."""

from __future__ import annotations

import pycountry
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog.codes import normalize_currency, normalize_language, normalize_territory

SETTINGS = settings(database=None, deadline=None)


class TestNormalizeTerritory:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [("US", "US"), ("us", "US"), (" gb ", "GB"), ("Fr", "FR"), ("WW", "WW"), ("ww", "WW")],
    )
    def test_accepts_alpha2_and_worldwide(self, raw: str, expected: str) -> None:
        assert normalize_territory(raw) == expected

    def test_accepts_every_iso_3166_country(self) -> None:
        for country in pycountry.countries:
            assert normalize_territory(country.alpha_2.lower()) == country.alpha_2

    @pytest.mark.parametrize("raw", ["", "  ", "USA", "U", "ZZ", "XK", "U1", "E U", "🇺🇸"])
    def test_rejects_anything_else(self, raw: str) -> None:
        with pytest.raises(ValueError, match="territory"):
            normalize_territory(raw)

    def test_points_uk_at_gb(self) -> None:
        with pytest.raises(ValueError, match="use GB"):
            normalize_territory("UK")

    def test_rejects_non_strings(self) -> None:
        with pytest.raises(ValueError, match="string"):
            normalize_territory(12)

    def test_is_cached(self) -> None:
        normalize_territory.cache_clear()
        normalize_territory("de")
        normalize_territory("de")
        assert normalize_territory.cache_info().hits == 1


class TestNormalizeLanguage:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ("en", "en"),
            ("EN", "en"),
            (" fr ", "fr"),
            ("pt-br", "pt-BR"),
            ("PT-BR", "pt-BR"),
            ("pt_BR", "pt-BR"),
            ("zh-hant-tw", "zh-Hant-TW"),
            ("zh-HANS", "zh-Hans"),
            ("sr-latn", "sr-Latn"),
            ("es-419", "es-419"),
            ("fr-CA", "fr-CA"),
            ("eng", "en"),  # BCP 47 uses the shortest code
            ("yue", "yue"),  # ISO 639-3 only, no two-letter code
            ("yue-HK", "yue-HK"),
            ("zxx", "zxx"),
        ],
    )
    def test_canonical_form(self, raw: str, expected: str) -> None:
        assert normalize_language(raw) == expected

    def test_accepts_every_iso_639_1_code(self) -> None:
        codes = [lang.alpha_2 for lang in pycountry.languages if hasattr(lang, "alpha_2")]
        assert len(codes) > 150
        for code in codes:
            assert normalize_language(code.upper()) == code

    @pytest.mark.parametrize(
        "raw",
        [
            "",
            "e",
            "xx",  # not ISO 639-1
            "qqq",  # not ISO 639-3
            "english",
            "en-ZZ",  # no such region
            "en-999",  # no such UN M.49 area
            "en-Abcd",  # no such script
            "de-CH-1996",  # variants are not accepted
            "en-US-x-private",
            "en-",
            "-US",
            "e1",
            "en US",
        ],
    )
    def test_rejects_invalid_tags(self, raw: str) -> None:
        with pytest.raises(ValueError, match="language"):
            normalize_language(raw)

    @SETTINGS
    @given(
        language=st.sampled_from(["en", "pt", "zh", "es", "fr", "de", "ja"]),
        script=st.sampled_from(["", "Latn", "Hant", "Hans", "Cyrl"]),
        region=st.sampled_from(["", "BR", "US", "TW", "419", "GB"]),
        data=st.data(),
    )
    def test_idempotent_and_case_insensitive(
        self, language: str, script: str, region: str, data: st.DataObject
    ) -> None:
        tag = "-".join(part for part in (language, script, region) if part)
        scrambled = "".join(
            char.upper() if data.draw(st.booleans()) else char.lower() for char in tag
        )
        canonical = normalize_language(scrambled)
        assert canonical == tag
        assert normalize_language(canonical) == canonical


class TestNormalizeCurrency:
    @pytest.mark.parametrize(
        ("raw", "expected"), [("usd", "usd"), ("USD", "usd"), (" Eur ", "eur"), ("jpy", "jpy")]
    )
    def test_lower_case_iso_4217(self, raw: str, expected: str) -> None:
        assert normalize_currency(raw) == expected

    @pytest.mark.parametrize("raw", ["", "us", "dollar", "ZZZ", "XXX", "XTS", "XAU", "u$d"])
    def test_rejects_unknown_and_non_money_codes(self, raw: str) -> None:
        with pytest.raises(ValueError, match="currency"):
            normalize_currency(raw)
