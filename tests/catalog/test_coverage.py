"""Clearance logic: union-of-windows coverage of rights grants and talent consents."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

import pycountry
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog.coverage import (
    ALL_USES,
    ATTRIBUTES,
    Consent,
    Grant,
    Window,
    attributes_required,
    consent_covers,
    territories_overlap,
    uncovered,
    uncovered_consents,
    windows_cover,
    windows_overlap,
)

SETTINGS = settings(database=None, deadline=None)

DAY = timedelta(days=1)
BASE = date(2025, 1, 1)
SPAN = 40  # days: small enough for a day-by-day oracle
TERRITORIES = ("WW", "US", "FR", "DE")
EVERY_COUNTRY = frozenset(country.alpha_2 for country in pycountry.countries)


def d(offset: int) -> date:
    return BASE + offset * DAY


def w(first: int, last: int) -> Window:
    return Window(d(first), d(last))


def days(window: Window) -> list[date]:
    return [window.start + i * DAY for i in range(window.days)]


def fs(*items: str) -> frozenset[str]:
    return frozenset(items)


@st.composite
def windows(draw: st.DrawFn, span: int = SPAN) -> Window:
    first = draw(st.integers(0, span))
    last = draw(st.integers(first, span))
    return w(first, last)


def subsets(items: Iterable[str], min_size: int = 0) -> st.SearchStrategy[frozenset[str]]:
    return st.frozensets(st.sampled_from(tuple(items)), min_size=min_size)


grants_st = st.builds(
    Grant,
    territories=subsets(TERRITORIES, 1),
    window=windows(),
    uses=subsets(ALL_USES, 1),
)
consents_st = st.builds(
    Consent,
    attributes=subsets(ATTRIBUTES, 1),
    uses=subsets(ALL_USES, 1),
    territories=subsets(TERRITORIES, 1),
    window=windows(),
)


def _applies(territories: frozenset[str], territory: str) -> bool:
    return "WW" in territories or territory in territories


def oracle_uncovered(
    grants: list[Grant], uses: frozenset[str], territories: frozenset[str], window: Window
) -> list[tuple[str, str]]:
    """Day by day: the definition, with no cleverness."""
    return sorted(
        (use, territory)
        for use in uses
        for territory in territories
        if not all(
            any(
                use in g.uses
                and _applies(g.territories, territory)
                and g.window.start <= day <= g.window.end
                for g in grants
            )
            for day in days(window)
        )
    )


def oracle_uncovered_consents(
    consents: list[Consent],
    attributes: frozenset[str],
    uses: frozenset[str],
    territories: frozenset[str],
    window: Window,
) -> list[tuple[str, str, str]]:
    return sorted(
        (attribute, use, territory)
        for attribute in attributes
        for use in uses
        for territory in territories
        if not all(
            any(
                attribute in c.attributes
                and use in c.uses
                and _applies(c.territories, territory)
                and c.window.start <= day <= c.window.end
                for c in consents
            )
            for day in days(window)
        )
    )


class TestWindow:
    def test_end_is_inclusive(self) -> None:
        assert w(0, 0).days == 1
        assert w(0, 9).days == 10

    def test_rejects_end_before_start(self) -> None:
        with pytest.raises(ValueError, match="before it starts"):
            w(5, 4)

    def test_overlaps_shares_a_day(self) -> None:
        assert w(0, 10).overlaps(w(10, 20))
        assert not w(0, 9).overlaps(w(10, 20))
        assert windows_overlap(w(5, 6), w(0, 5))
        assert not windows_overlap(w(0, 4), w(5, 6))

    @SETTINGS
    @given(a=windows(), b=windows())
    def test_overlap_matches_day_sets(self, a: Window, b: Window) -> None:
        a_days, b_days = set(days(a)), set(days(b))
        assert a.overlaps(b) == bool(a_days & b_days) == b.overlaps(a)


class TestWindowsCover:
    def test_adjacent_windows_cover_the_year(self) -> None:
        halves = [
            Window(date(2025, 7, 1), date(2025, 12, 31)),
            Window(date(2025, 1, 1), date(2025, 6, 30)),
        ]
        assert windows_cover(halves, Window(date(2025, 1, 1), date(2025, 12, 31)))

    def test_one_day_gap_breaks_coverage(self) -> None:
        halves = [
            Window(date(2025, 1, 1), date(2025, 6, 29)),
            Window(date(2025, 7, 1), date(2025, 12, 31)),
        ]
        assert not windows_cover(halves, Window(date(2025, 1, 1), date(2025, 12, 31)))
        assert windows_cover(halves, Window(date(2025, 7, 1), date(2025, 7, 31)))

    def test_nothing_covers_nothing(self) -> None:
        assert not windows_cover([], w(0, 0))

    def test_nested_and_overlapping_windows(self) -> None:
        assert windows_cover([w(0, 30), w(2, 3), w(25, 40)], w(1, 35))
        assert not windows_cover([w(0, 30), w(2, 3), w(32, 40)], w(1, 35))

    def test_extreme_dates_do_not_overflow(self) -> None:
        everything = Window(date.min, date.max)
        assert windows_cover([everything], everything)
        assert windows_cover(
            [Window(date.min, date(2000, 1, 1)), Window(date(2000, 1, 2), date.max)], everything
        )
        assert not windows_cover([Window(date.min, date(9999, 12, 30))], everything)

    def test_many_small_windows_in_any_order(self) -> None:
        # 100,000 single days, in reverse order.
        start = date(1800, 1, 1)
        singles = [Window(start + i * DAY, start + i * DAY) for i in reversed(range(100_000))]
        target = Window(start, start + 99_999 * DAY)
        assert windows_cover(singles, target)
        assert not windows_cover(singles[:50_000] + singles[50_001:], target)

    @SETTINGS
    @given(parts=st.lists(windows(), max_size=6), target=windows())
    def test_matches_day_by_day_union(self, parts: list[Window], target: Window) -> None:
        union = {day for part in parts for day in days(part)}
        assert windows_cover(parts, target) == set(days(target)).issubset(union)


class TestUncovered:
    def test_covered_request_has_no_gaps(self) -> None:
        grant = Grant(fs("WW"), w(0, 30), fs("train", "evaluate"))
        assert uncovered([grant], uses=["train"], territories=["FR"], window=w(1, 29)) == []

    def test_reports_each_missing_pair_sorted(self) -> None:
        grants = [Grant(fs("US"), w(0, 30), fs("train"))]
        gaps = uncovered(
            grants, uses=["train", "evaluate"], territories=["US", "FR"], window=w(0, 30)
        )
        assert gaps == [("evaluate", "FR"), ("evaluate", "US"), ("train", "FR")]

    def test_adjacent_grants_cover_a_year(self) -> None:
        grants = [
            Grant(fs("FR"), Window(date(2025, 1, 1), date(2025, 6, 30)), fs("train")),
            Grant(fs("FR"), Window(date(2025, 7, 1), date(2025, 12, 31)), fs("train")),
        ]
        year = Window(date(2025, 1, 1), date(2025, 12, 31))
        assert uncovered(grants, uses=["train"], territories=["FR"], window=year) == []

    def test_worldwide_grant_and_country_grant_add_up(self) -> None:
        grants = [Grant(fs("WW"), w(0, 9), fs("train")), Grant(fs("DE"), w(10, 20), fs("train"))]
        assert uncovered(grants, uses=["train"], territories=["DE"], window=w(0, 20)) == []
        assert uncovered(grants, uses=["train"], territories=["FR"], window=w(0, 20)) == [
            ("train", "FR")
        ]

    def test_worldwide_request_needs_worldwide_grants(self) -> None:
        everywhere = Grant(EVERY_COUNTRY, w(0, 30), fs(*ALL_USES))
        assert uncovered([everywhere], uses=["train"], territories=["WW"], window=w(0, 30)) == [
            ("train", "WW")
        ]
        worldwide = Grant(fs("WW"), w(0, 30), fs("train"))
        assert uncovered([worldwide], uses=["train"], territories=["WW"], window=w(0, 30)) == []

    def test_worldwide_grant_covers_every_country(self) -> None:
        worldwide = Grant(fs("WW"), w(0, 30), fs("train"))
        assert (
            uncovered([worldwide], uses=["train"], territories=EVERY_COUNTRY, window=w(0, 30)) == []
        )

    def test_use_must_be_in_the_same_grant_as_the_territory(self) -> None:
        grants = [Grant(fs("US"), w(0, 30), fs("evaluate")), Grant(fs("FR"), w(0, 30), fs("train"))]
        assert uncovered(grants, uses=["train"], territories=["US"], window=w(0, 30)) == [
            ("train", "US")
        ]

    def test_empty_request_has_nothing_to_cover(self) -> None:
        assert uncovered([], uses=[], territories=["US"], window=w(0, 1)) == []
        assert uncovered([], uses=["train"], territories=[], window=w(0, 1)) == []

    def test_accepts_any_iterable_of_grants_once(self) -> None:
        grants = iter([Grant(fs("US"), w(0, 30), fs("train", "evaluate"))])
        assert uncovered(grants, uses=ALL_USES[:3], territories=["US"], window=w(0, 30)) == [
            ("fine_tune", "US")
        ]

    def test_rejects_a_bare_string(self) -> None:
        with pytest.raises(TypeError, match="not a string"):
            uncovered([], uses="train", territories=["US"], window=w(0, 1))
        with pytest.raises(TypeError, match="not a string"):
            Grant("US", w(0, 1), fs("train"))  # type: ignore[arg-type]

    def test_grant_fields_become_frozensets(self) -> None:
        grant = Grant(["US"], w(0, 1), ["train"])  # type: ignore[arg-type]
        assert grant.territories == fs("US")
        assert grant.uses == fs("train")
        assert hash(grant) == hash(Grant(fs("US"), w(0, 1), fs("train")))

    @SETTINGS
    @given(
        grants=st.lists(grants_st, max_size=6),
        uses=subsets(ALL_USES, 1),
        territories=subsets(TERRITORIES, 1),
        window=windows(),
    )
    def test_matches_day_by_day_oracle(
        self,
        grants: list[Grant],
        uses: frozenset[str],
        territories: frozenset[str],
        window: Window,
    ) -> None:
        expected = oracle_uncovered(grants, uses, territories, window)
        actual = uncovered(grants, uses=uses, territories=territories, window=window)
        assert actual == expected

    @SETTINGS
    @given(
        window=windows(span=400),
        cuts=st.sets(st.integers(1, 400), max_size=8),
        territory=st.sampled_from(TERRITORIES),
    )
    def test_split_into_adjacent_grants_is_covered(
        self, window: Window, cuts: set[int], territory: str
    ) -> None:
        pieces = _split(window, cuts)
        grants = [Grant(fs(territory), piece, fs("train")) for piece in pieces]
        assert uncovered(grants, uses=["train"], territories=[territory], window=window) == []

    @SETTINGS
    @given(
        window=windows(span=400),
        cuts=st.sets(st.integers(1, 400), max_size=8),
        data=st.data(),
    )
    def test_removing_any_single_day_breaks_coverage(
        self, window: Window, cuts: set[int], data: st.DataObject
    ) -> None:
        hole = data.draw(st.sampled_from(days(window)))
        grants = [
            Grant(fs("US"), piece, fs("train"))
            for part in _split(window, cuts)
            for piece in _punch(part, hole)
        ]
        assert uncovered(grants, uses=["train"], territories=["US"], window=window) == [
            ("train", "US")
        ]

    @SETTINGS
    @given(
        grants=st.lists(grants_st, max_size=5),
        extra=grants_st,
        uses=subsets(ALL_USES, 1),
        territories=subsets(TERRITORIES, 1),
        window=windows(),
    )
    def test_adding_a_grant_never_uncovers_anything(
        self,
        grants: list[Grant],
        extra: Grant,
        uses: frozenset[str],
        territories: frozenset[str],
        window: Window,
    ) -> None:
        before = set(uncovered(grants, uses=uses, territories=territories, window=window))
        after = set(uncovered([*grants, extra], uses=uses, territories=territories, window=window))
        assert after <= before

    @SETTINGS
    @given(
        grants=st.lists(grants_st, max_size=5),
        uses=subsets(ALL_USES, 1),
        territories=subsets(TERRITORIES, 1),
        window=windows(),
        data=st.data(),
    )
    def test_covering_a_window_covers_every_sub_window(
        self,
        grants: list[Grant],
        uses: frozenset[str],
        territories: frozenset[str],
        window: Window,
        data: st.DataObject,
    ) -> None:
        first = data.draw(st.sampled_from(days(window)))
        inner = Window(first, data.draw(st.sampled_from(days(Window(first, window.end)))))
        outer_gaps = set(uncovered(grants, uses=uses, territories=territories, window=window))
        inner_gaps = set(uncovered(grants, uses=uses, territories=territories, window=inner))
        assert inner_gaps <= outer_gaps

    @SETTINGS
    @given(
        countries=subsets(EVERY_COUNTRY - {"WW"}, 1),
        window=windows(),
    )
    def test_no_set_of_country_grants_makes_worldwide(
        self, countries: frozenset[str], window: Window
    ) -> None:
        grants = [Grant(fs(country), window, fs(*ALL_USES)) for country in countries]
        assert uncovered(grants, uses=["train"], territories=["WW"], window=window) == [
            ("train", "WW")
        ]


def _split(window: Window, cuts: set[int]) -> list[Window]:
    """Cut `window` into adjacent pieces that start at the given day offsets."""
    starts = sorted({window.start} | {window.start + c * DAY for c in cuts if c < window.days})
    ends = [start - DAY for start in starts[1:]] + [window.end]
    return [Window(start, end) for start, end in zip(starts, ends, strict=True)]


def _punch(window: Window, hole: date) -> list[Window]:
    """Remove one day from a window."""
    if not window.start <= hole <= window.end:
        return [window]
    pieces = []
    if window.start < hole:
        pieces.append(Window(window.start, hole - DAY))
    if hole < window.end:
        pieces.append(Window(hole + DAY, window.end))
    return pieces


class TestConsents:
    def test_split_paperwork_adds_up(self) -> None:
        consents = [
            Consent(fs("name", "image"), fs("train"), fs("WW"), w(0, 30)),
            Consent(fs("likeness", "voice"), fs("train"), fs("WW"), w(0, 15)),
            Consent(fs("likeness", "voice"), fs("train"), fs("US"), w(16, 30)),
        ]
        needed = attributes_required("cast")
        assert consent_covers(
            consents, attributes_needed=needed, uses=["train"], territories=["US"], window=w(0, 30)
        )
        assert uncovered_consents(
            consents, attributes_needed=needed, uses=["train"], territories=["FR"], window=w(0, 30)
        ) == [("likeness", "train", "FR"), ("voice", "train", "FR")]

    def test_no_consent_refuses_cast_but_not_crew(self) -> None:
        assert not _covers([], "cast", use="train", territory="US", window=w(0, 1))
        assert _covers([], "crew", use="train", territory="US", window=w(0, 1))

    def test_voice_role_needs_no_image(self) -> None:
        consents = [Consent(fs("name", "voice"), fs("evaluate"), fs("WW"), w(0, 10))]
        assert _covers(consents, "voice", use="evaluate", territory="JP", window=w(0, 10))
        assert not _covers(consents, "cast", use="evaluate", territory="JP", window=w(0, 10))

    @SETTINGS
    @given(
        consents=st.lists(consents_st, max_size=5),
        attributes=subsets(ATTRIBUTES),
        uses=subsets(ALL_USES, 1),
        territories=subsets(TERRITORIES, 1),
        window=windows(),
    )
    def test_matches_day_by_day_oracle(
        self,
        consents: list[Consent],
        attributes: frozenset[str],
        uses: frozenset[str],
        territories: frozenset[str],
        window: Window,
    ) -> None:
        expected = oracle_uncovered_consents(consents, attributes, uses, territories, window)
        actual = uncovered_consents(
            consents,
            attributes_needed=attributes,
            uses=uses,
            territories=territories,
            window=window,
        )
        covered = consent_covers(
            consents,
            attributes_needed=attributes,
            uses=uses,
            territories=territories,
            window=window,
        )
        assert actual == expected
        assert covered == (not expected)


def _covers(
    consents: list[Consent], role: str, *, use: str, territory: str, window: Window
) -> bool:
    return consent_covers(
        consents,
        attributes_needed=attributes_required(role),
        uses=[use],
        territories=[territory],
        window=window,
    )


class TestAttributesRequired:
    def test_by_role(self) -> None:
        assert attributes_required("cast") == fs("name", "image", "likeness", "voice")
        assert attributes_required("voice") == fs("name", "voice")
        assert attributes_required("crew") == frozenset()

    def test_unknown_role(self) -> None:
        with pytest.raises(ValueError, match="unknown role"):
            attributes_required("director")


class TestTerritoriesOverlap:
    @pytest.mark.parametrize(
        ("a", "b", "expected"),
        [
            ({"US"}, {"US", "FR"}, True),
            ({"US"}, {"FR"}, False),
            ({"WW"}, {"FR"}, True),
            ({"DE"}, {"WW"}, True),
            ({"WW"}, {"WW"}, True),
            ({"WW"}, set(), False),
            (set(), set(), False),
        ],
    )
    def test_cases(self, a: set[str], b: set[str], expected: bool) -> None:
        assert territories_overlap(a, b) is expected
        assert territories_overlap(frozenset(b), frozenset(a)) is expected
