"""Pure clearance logic: do rights grants and talent consents cover a requested use?

Everything here works on plain frozen dataclasses, so the database layer can load rows, convert
them, and ask; nothing here knows about sessions or HTTP. Territory codes are expected to be
normalized already (see `catalog.codes`); `WW` means worldwide.
"""

from __future__ import annotations

from collections.abc import Iterable, Set
from dataclasses import dataclass
from datetime import date, timedelta

from catalog.codes import WORLDWIDE

__all__ = [
    "ALL_USES",
    "ATTRIBUTES",
    "ROLES",
    "WORLDWIDE",
    "Consent",
    "Grant",
    "Window",
    "attributes_required",
    "consent_covers",
    "territories_overlap",
    "uncovered",
    "uncovered_consents",
    "windows_cover",
    "windows_overlap",
]

ALL_USES: tuple[str, ...] = ("train", "fine_tune", "evaluate", "generate_reference")
ATTRIBUTES: tuple[str, ...] = ("name", "image", "likeness", "voice")
ROLES: tuple[str, ...] = ("cast", "voice", "crew")

_ONE_DAY = timedelta(days=1)

_REQUIRED_BY_ROLE: dict[str, frozenset[str]] = {
    "cast": frozenset(ATTRIBUTES),
    "voice": frozenset({"name", "voice"}),
    "crew": frozenset(),
}


def _names(values: Iterable[str], what: str) -> frozenset[str]:
    # A bare string is iterable too, and would silently become a set of letters.
    if isinstance(values, str):
        raise TypeError(f"{what} must be a collection of strings, not a string")
    return frozenset(values)


@dataclass(frozen=True, slots=True)
class Window:
    """A span of calendar days, both ends inclusive."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"window ends ({self.end}) before it starts ({self.start})")

    @property
    def days(self) -> int:
        """Return the number of days in the window."""
        return (self.end - self.start).days + 1

    def overlaps(self, other: Window) -> bool:
        """Return whether the two windows share at least one day."""
        return self.start <= other.end and other.start <= self.end


@dataclass(frozen=True, slots=True)
class Grant:
    """A rights grant: the uses permitted in some territories over a window."""

    territories: frozenset[str]
    window: Window
    uses: frozenset[str]

    def __post_init__(self) -> None:
        object.__setattr__(self, "territories", _names(self.territories, "territories"))
        object.__setattr__(self, "uses", _names(self.uses, "uses"))


@dataclass(frozen=True, slots=True)
class Consent:
    """A talent's consent to use some likeness attributes for some uses, territories, window."""

    attributes: frozenset[str]
    uses: frozenset[str]
    territories: frozenset[str]
    window: Window

    def __post_init__(self) -> None:
        object.__setattr__(self, "attributes", _names(self.attributes, "attributes"))
        object.__setattr__(self, "uses", _names(self.uses, "uses"))
        object.__setattr__(self, "territories", _names(self.territories, "territories"))


def windows_cover(windows: Iterable[Window], target: Window) -> bool:
    """Return whether the union of `windows` contains every day of `target`."""
    relevant = sorted((w for w in windows if w.overlaps(target)), key=lambda w: w.start)
    first_uncovered = target.start
    for window in relevant:
        if window.start > first_uncovered:
            return False
        if window.end >= target.end:
            return True
        # Adjacent windows (one ends the day before the next starts) leave no gap.
        first_uncovered = max(first_uncovered, window.end + _ONE_DAY)
    return False


def _territory_windows(
    entries: list[tuple[frozenset[str], Window]], territory: str
) -> list[Window]:
    # A worldwide entry covers any territory, but a request for WW needs worldwide entries:
    # a list of countries, however long, never adds up to the world.
    return [
        window
        for territories, window in entries
        if WORLDWIDE in territories or territory in territories
    ]


def uncovered(
    grants: Iterable[Grant],
    *,
    uses: Iterable[str],
    territories: Iterable[str],
    window: Window,
) -> list[tuple[str, str]]:
    """Return every sorted (use, territory) pair the grants do not cover for the whole window."""
    relevant = [g for g in grants if g.window.overlaps(window)]
    missing: list[tuple[str, str]] = []
    wanted_territories = sorted(_names(territories, "territories"))
    for use in sorted(_names(uses, "uses")):
        entries = [(g.territories, g.window) for g in relevant if use in g.uses]
        for territory in wanted_territories:
            if not windows_cover(_territory_windows(entries, territory), window):
                missing.append((use, territory))
    return missing


def uncovered_consents(
    consents: Iterable[Consent],
    *,
    attributes_needed: Iterable[str],
    uses: Iterable[str],
    territories: Iterable[str],
    window: Window,
) -> list[tuple[str, str, str]]:
    """Return every sorted (attribute, use, territory) triple the consents do not cover."""
    relevant = [c for c in consents if c.window.overlaps(window)]
    missing: list[tuple[str, str, str]] = []
    wanted_uses = sorted(_names(uses, "uses"))
    wanted_territories = sorted(_names(territories, "territories"))
    for attribute in sorted(_names(attributes_needed, "attributes_needed")):
        with_attribute = [c for c in relevant if attribute in c.attributes]
        for use in wanted_uses:
            entries = [(c.territories, c.window) for c in with_attribute if use in c.uses]
            for territory in wanted_territories:
                if not windows_cover(_territory_windows(entries, territory), window):
                    missing.append((attribute, use, territory))
    return missing


def consent_covers(
    consents: Iterable[Consent],
    *,
    attributes_needed: Iterable[str],
    uses: Iterable[str],
    territories: Iterable[str],
    window: Window,
) -> bool:
    """Return whether the consents cover every needed attribute, use and territory all window."""
    return not uncovered_consents(
        consents,
        attributes_needed=attributes_needed,
        uses=uses,
        territories=territories,
        window=window,
    )


def attributes_required(role: str) -> frozenset[str]:
    """Return the likeness attributes a credit in `role` needs consent for.

    `cast` needs all four (name, image, likeness and voice): an on-screen performer's voice is on
    the soundtrack of the same footage, so training on the footage uses it. `voice` (voice-only
    performers, e.g. animation or dubbing) needs name and voice: their image is not in the work.
    `crew` needs none: crew are credited, but their likeness is not in the content.
    """
    try:
        return _REQUIRED_BY_ROLE[role]
    except KeyError:
        raise ValueError(f"unknown role {role!r}: expected one of {', '.join(ROLES)}") from None


def windows_overlap(a: Window, b: Window) -> bool:
    """Return whether two windows share at least one day."""
    return a.overlaps(b)


def territories_overlap(a: Set[str], b: Set[str]) -> bool:
    """Return whether two territory sets share a territory; `WW` overlaps any non-empty set."""
    if not a or not b:
        return False
    if WORLDWIDE in a or WORLDWIDE in b:
        return True
    return not a.isdisjoint(b)
