"""EIDR content ID validation and the ISO 7064 Mod 37,36 check character."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog.eidr import eidr_check_character, format_eidr, validate_eidr

SETTINGS = settings(database=None, deadline=None)

# Published IDs of real works, as cited by schema.org (titleEIDR / editEIDR examples: the
# "Ghostbusters" title and two of its edits, "The Hitchhiker's Guide to the Galaxy") and in
# other public EIDR examples.
KNOWN_GOOD = [
    "10.5240/7791-8534-2C23-9030-8610-5",
    "10.5240/7EC7-228A-510A-053E-CBB8-J",
    "10.5240/1F2A-E1C5-680A-14C6-E76B-I",
    "10.5240/8A35-3BEE-6497-5D12-9E4F-3",
    "10.5240/B752-5B47-DBBE-E5D4-5A3F-N",
    "10.5240/0196-4177-FF62-A346-D0F6-Z",
    "10.5240/DF48-AB62-4486-C185-9E1B-4",
]
HEX = "0123456789ABCDEF"
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

hex20 = st.text(alphabet=HEX, min_size=20, max_size=20)


def _digits(eidr: str) -> str:
    return eidr.removeprefix("10.5240/")[:-2].replace("-", "")


@pytest.mark.parametrize("eidr", KNOWN_GOOD)
class TestPublishedIds:
    def test_valid(self, eidr: str) -> None:
        assert validate_eidr(eidr) == eidr

    def test_check_character(self, eidr: str) -> None:
        assert eidr_check_character(_digits(eidr)) == eidr[-1]
        assert format_eidr(_digits(eidr).lower()) == eidr

    def test_canonicalizes_case_and_whitespace(self, eidr: str) -> None:
        assert validate_eidr(f"  {eidr.lower()}\n") == eidr

    def test_every_single_substitution_is_rejected(self, eidr: str) -> None:
        positions = [i for i, char in enumerate(eidr) if i >= len("10.5240/") and char != "-"]
        for position in positions:
            replacements = ALPHABET if position == len(eidr) - 1 else HEX
            for char in replacements:
                if char == eidr[position]:
                    continue
                mutated = eidr[:position] + char + eidr[position + 1 :]
                with pytest.raises(ValueError, match="check character"):
                    validate_eidr(mutated)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "7791-8534-2C23-9030-8610-5",  # no prefix
        "10.5237/7791-8534-2C23-9030-8610-5",  # EIDR party ID prefix, not content
        "10.5240/7791-8534-2C23-9030-8610",  # no check character
        "10.5240/7791-8534-2C23-9030-8610-55",
        "10.5240/77918534-2C23-9030-8610-5",
        "10.5240/7791-8534-2C23-9030-861G-5",  # not hex
        "10.5240/7791 8534 2C23 9030 8610 5",
        "10.5240/7791-8534-2C23-9030-8610-*",
        "doi:10.5240/7791-8534-2C23-9030-8610-5",
    ],
)
def test_rejects_malformed(value: str) -> None:
    with pytest.raises(ValueError, match="EIDR ID"):
        validate_eidr(value)


def test_rejects_non_strings() -> None:
    with pytest.raises(ValueError, match="string"):
        validate_eidr(None)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["", "ABC", "7791-8534-2C23-9030-8610", "G" * 20, "0" * 21])
def test_check_character_needs_twenty_hex_digits(value: str) -> None:
    with pytest.raises(ValueError, match="20 hexadecimal digits"):
        eidr_check_character(value)


@SETTINGS
@given(digits=hex20)
def test_formatted_ids_validate(digits: str) -> None:
    eidr = format_eidr(digits)
    assert validate_eidr(eidr) == eidr
    assert eidr[-1] in ALPHABET


@SETTINGS
@given(digits=hex20, position=st.integers(0, 19), data=st.data())
def test_any_single_substitution_changes_the_check(
    digits: str, position: int, data: st.DataObject
) -> None:
    replacement = data.draw(st.sampled_from([c for c in HEX if c != digits[position]]))
    mutated = digits[:position] + replacement + digits[position + 1 :]
    assert eidr_check_character(mutated) != eidr_check_character(digits)
