"""Synthetic studio catalogs in the JSON Lines import format, for demos, tests and benchmarks.

The output is deterministic for a seed and streamed: memory stays constant however many titles
are asked for. Talent comes in cohorts (plus a fixed set of recurring stars), so a talent record
is emitted, with its consents, just before the first credit naming it; the importer accepts
records in any order, but parents before children keeps the stream easy to read.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Protocol

from catalog.coverage import ALL_USES, ATTRIBUTES
from catalog.eidr import format_eidr

__all__ = ["GENRES", "MARKETS", "Record", "generate_catalog", "write_jsonl"]

Record = dict[str, Any]

# --- word lists --------------------------------------------------------------------------------

GENRES: tuple[str, ...] = (
    "action", "adventure", "animation", "comedy", "crime", "documentary", "drama", "family",
    "fantasy", "history", "horror", "musical", "mystery", "romance", "science-fiction",
    "thriller", "war", "western",
)  # fmt: skip

# (language, weight) for original languages: an English-heavy library with a long tail.
_ORIGINAL_LANGUAGES: tuple[tuple[str, int], ...] = (
    ("en", 45), ("fr", 8), ("es", 8), ("ja", 6), ("ko", 5), ("hi", 5), ("de", 4), ("it", 4),
    ("zh", 4), ("pt", 3), ("sv", 2), ("da", 2), ("tr", 2), ("ru", 1), ("pl", 1),
)  # fmt: skip

_LANGUAGE_CODES = tuple(language for language, _ in _ORIGINAL_LANGUAGES)
_LANGUAGE_CUM_WEIGHTS = tuple(itertools.accumulate(weight for _, weight in _ORIGINAL_LANGUAGES))

# Dub and subtitle languages as the trade labels them (BCP 47, region where it matters).
_DUB_LANGUAGES: tuple[str, ...] = (
    "en", "es-419", "es-ES", "fr-FR", "fr-CA", "de", "it", "pt-BR", "ja", "ko", "zh-Hans",
    "zh-Hant-TW", "hi", "tr", "pl", "ru",
)  # fmt: skip
_SUBTITLE_LANGUAGES: tuple[str, ...] = (
    *_DUB_LANGUAGES, "ar", "nl", "sv", "da", "nb", "fi", "he", "id", "th", "vi", "el", "cs",
    "hu", "ro",
)  # fmt: skip

# Markets that show up in territory-limited deals.
MARKETS: tuple[str, ...] = (
    "US", "CA", "MX", "BR", "AR", "CO", "CL", "GB", "IE", "FR", "DE", "IT", "ES", "PT", "NL",
    "BE", "CH", "AT", "SE", "NO", "DK", "FI", "PL", "TR", "IL", "AE", "SA", "EG", "NG", "ZA",
    "IN", "JP", "KR", "CN", "TW", "HK", "SG", "TH", "ID", "AU", "NZ",
)  # fmt: skip

_TITLE_ADJECTIVES = (
    "Last", "Silent", "Hidden", "Long", "Broken", "Golden", "Distant", "Quiet", "Burning",
    "Crimson", "Forgotten", "Endless", "Northern", "Midnight", "Wild", "Hollow", "Bright",
    "Lost", "Secret", "Iron",
)  # fmt: skip
_TITLE_NOUNS = (
    "Harbor", "Silence", "Orchard", "Tide", "Frontier", "Lantern", "Ember", "Crossing", "Winter",
    "Meridian", "Echo", "Garden", "Empire", "Signal", "Horizon", "Mirror", "River", "Summit",
    "Kingdom", "Station", "Country", "Season", "Highway", "Shore", "Lighthouse", "Voyage",
    "Circus", "Archive", "Carnival", "Republic",
)  # fmt: skip
_PLACE_NAMES = (
    "Marseille", "Lagos", "Kyoto", "Valparaiso", "Tangier", "Oslo", "Havana", "Mumbai",
    "Palermo", "Tbilisi", "Montreal", "Busan", "Galway", "Dakar", "Hobart", "Bergen",
)  # fmt: skip

_SYNOPSIS_ADJECTIVES = (
    "reclusive", "ambitious", "disgraced", "young", "retired", "stubborn", "idealistic", "weary",
    "brilliant", "reluctant", "grieving", "restless", "fearless", "naive", "cunning",
)  # fmt: skip
_OCCUPATIONS = (
    "detective", "chef", "pilot", "schoolteacher", "journalist", "boxer", "violinist",
    "smuggler", "surgeon", "architect", "farmer", "astronaut", "lawyer", "nurse", "thief",
    "diplomat", "photographer", "mechanic",
)  # fmt: skip
_GOALS = (
    "must clear a brother's name", "returns home to settle a family debt",
    "takes a job no one else wants", "searches for a missing sister",
    "inherits a failing vineyard", "stumbles onto a conspiracy", "agrees to one last job",
    "tries to win back an estranged daughter", "is posted to a remote outpost",
    "races to finish a masterpiece", "hides a fugitive from the authorities",
    "enters a tournament with everything at stake",
)  # fmt: skip
_SETTINGS = (
    "in a coastal village", "in 1970s Marseille", "on a remote island", "in divided Berlin",
    "in near-future Lagos", "in a small Ohio town", "aboard a failing space station",
    "in the Scottish Highlands", "in Seoul's nightlife districts",
    "in a snowed-in mountain hotel", "in post-war Naples", "along the Mekong",
)  # fmt: skip
_TWISTS = (
    "Nothing is what it seems.", "An old rival resurfaces with a dangerous offer.",
    "Every choice comes at a price.", "A storm traps everyone together.",
    "The truth will cost more than anyone imagined.",
    "An unlikely friendship changes everything.", "The clock is ticking.",
    "Loyalties are tested to breaking point.",
)  # fmt: skip

_FIRST_NAMES = (
    "Ada", "Amara", "Ana", "Arjun", "Beatriz", "Camille", "Chen", "Daniel", "Dmitri", "Elena",
    "Emeka", "Eva", "Farah", "Felix", "Grace", "Hana", "Hugo", "Ines", "Isaac", "Jae-won",
    "James", "Jonas", "Julia", "Kai", "Kenji", "Lars", "Leila", "Lucas", "Lucia", "Maya",
    "Mateo", "Mei", "Miguel", "Nadia", "Nikhil", "Noah", "Olga", "Omar", "Priya", "Rafael",
    "Rosa", "Ruth", "Samuel", "Sara", "Sofia", "Tariq", "Thomas", "Valentina", "Yuki", "Zoe",
)  # fmt: skip
_LAST_NAMES = (
    "Abebe", "Andersen", "Bianchi", "Brennan", "Carvalho", "Chen", "Costa", "Delacroix",
    "Diallo", "Eriksson", "Fernandez", "Fischer", "Garcia", "Haddad", "Ivanova", "Jansen",
    "Kapoor", "Kim", "Kowalski", "Laurent", "Lindqvist", "Mendes", "Moreau", "Nakamura",
    "Novak", "Okafor", "Olsen", "Park", "Patel", "Petrov", "Quinn", "Rossi", "Santos",
    "Schmidt", "Silva", "Sato", "Tanaka", "Tremblay", "Usman", "Varga", "Walsh", "Yilmaz",
)  # fmt: skip

_CREW_JOBS_PER_FILM = (2, 3, 3, 4)

# --- shape of the catalog ----------------------------------------------------------------------

# A series averages ~26 title records (itself, 2.5 seasons, 22.5 episodes), so this chance
# makes ~70% of title records films and ~30% series, seasons and episodes.
_SERIES_CHANCE = 0.016
_STAR_COUNT = 80  # recurring performers, used across the whole catalog
_COHORT_PERFORMERS = 170
_COHORT_CREW = 70
_COHORT_SIZE = _COHORT_PERFORMERS + _COHORT_CREW
_TITLES_PER_COHORT = 250
_STAR_SHARE = 0.15  # chance that a cast slot goes to a recurring star

_VISIBILITIES = ("private", "anonymized", "listed")
_VISIBILITY_WEIGHTS = (30, 20, 50)

# Video bitrates (bits per second) by rendition height; 2160p is HEVC, the rest H.264.
_BITRATES = {720: 4_000_000, 1080: 8_000_000, 2160: 20_000_000}

_ONE_DAY = timedelta(days=1)


class _Writer(Protocol):
    def write(self, text: str, /) -> object: ...


@dataclass(frozen=True, slots=True)
class _Work:
    """What children of a title inherit from it."""

    external_id: str
    name: str
    original_language: str
    genres: tuple[str, ...]
    release_year: int
    visibility: str


def _digest(*parts: object) -> str:
    return hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()


def _add_years(day: date, years: int) -> date:
    # Every generated start falls on the first of a month, so the date always exists.
    return day.replace(year=day.year + years)


class _CatalogGenerator:
    """Produces one catalog; holds only counters and the current talent cohort."""

    def __init__(self, titles: int, seed: int) -> None:
        self.titles = titles
        self.seed = seed
        # Not security-sensitive: reproducible synthetic data is the point.
        self.rng = random.Random(seed)  # noqa: S311
        self.title_count = 0
        self.cohort = -1
        self.stars_emitted: set[int] = set()
        self.cohort_emitted: set[int] = set()

    # --- identifiers ----------------------------------------------------------------------

    def _next_title_id(self) -> tuple[int, str]:
        number = self.title_count
        self.title_count += 1
        return number, f"s{self.seed}-t{number:07d}"

    def _talent_id(self, index: int) -> str:
        return f"s{self.seed}-p{index:07d}"

    # --- text -----------------------------------------------------------------------------

    def _title_name(self) -> str:
        rng = self.rng
        pattern = rng.randrange(6)
        adjective = rng.choice(_TITLE_ADJECTIVES)
        noun = rng.choice(_TITLE_NOUNS)
        if pattern == 0:
            return f"The {adjective} {noun}"
        if pattern == 1:
            return f"{noun} of the {adjective} {rng.choice(_TITLE_NOUNS)}"
        if pattern == 2:
            return f"{adjective} {noun}"
        if pattern == 3:
            return f"The {noun} of {rng.choice(_PLACE_NAMES)}"
        if pattern == 4:
            return f"{rng.choice(_PLACE_NAMES)} {noun}"
        return f"The {noun}"

    def _synopsis(self) -> str:
        rng = self.rng
        adjective = rng.choice(_SYNOPSIS_ADJECTIVES)
        article = "An" if adjective[0] in "aeiou" else "A"
        return (
            f"{article} {adjective} {rng.choice(_OCCUPATIONS)} {rng.choice(_GOALS)} "
            f"{rng.choice(_SETTINGS)}. {rng.choice(_TWISTS)}"
        )

    # --- talent ---------------------------------------------------------------------------

    def _enter_cohort(self, cohort: int) -> None:
        self.cohort = cohort
        self.cohort_emitted = set()

    def _performer(self) -> int:
        rng = self.rng
        if rng.random() < _STAR_SHARE:
            return rng.randrange(_STAR_COUNT)
        return _STAR_COUNT + self.cohort * _COHORT_SIZE + rng.randrange(_COHORT_PERFORMERS)

    def _crew_member(self) -> int:
        base = _STAR_COUNT + self.cohort * _COHORT_SIZE + _COHORT_PERFORMERS
        return base + self.rng.randrange(_COHORT_CREW)

    def _pick(self, count: int, pick: Callable[[], int], exclude: Iterable[int] = ()) -> list[int]:
        chosen: list[int] = []
        seen = set(exclude)
        while len(chosen) < count:
            index = pick()
            if index not in seen:
                seen.add(index)
                chosen.append(index)
        return chosen

    def _talent_records(self, index: int, performer: bool) -> Iterator[Record]:
        emitted = self.stars_emitted if index < _STAR_COUNT else self.cohort_emitted
        if index in emitted:
            return
        emitted.add(index)
        # Each person gets their own generator, so who they are does not depend on where in
        # the stream they are first credited.
        rng = random.Random(f"{self.seed}/talent/{index}")  # noqa: S311
        talent_id = self._talent_id(index)
        first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
        middle = f" {rng.choice('ABCDEFGHJKLMNPRSTW')}." if rng.random() < 0.2 else ""
        yield {"type": "talent", "external_id": talent_id, "name": f"{first}{middle} {last}"}
        if performer:
            for number, consent in enumerate(_consents(rng)):
                yield {
                    "type": "consent",
                    "external_id": f"{talent_id}-c{number}",
                    "talent_external_id": talent_id,
                    **consent,
                }

    def _credits(
        self, title_id: str, performers: Sequence[int], crew: Sequence[int], role: str
    ) -> Iterator[Record]:
        for indexes, performer, credit_role in ((performers, True, role), (crew, False, "crew")):
            for index in indexes:
                yield from self._talent_records(index, performer)
                yield {
                    "type": "credit",
                    "title_external_id": title_id,
                    "talent_external_id": self._talent_id(index),
                    "role": credit_role,
                }

    # --- titles ---------------------------------------------------------------------------

    def records(self) -> Iterator[Record]:
        """Yield the whole catalog."""
        while self.title_count < self.titles:
            cohort = self.title_count // _TITLES_PER_COHORT
            if cohort != self.cohort:
                self._enter_cohort(cohort)
            remaining = self.titles - self.title_count
            # A series needs a series, a season and an episode record at least.
            if remaining >= 3 and self.rng.random() < _SERIES_CHANCE:
                yield from self._series(remaining)
            else:
                yield from self._film()

    def _title_record(
        self, kind: str, work: _Work, number: int, parent: str | None, synopsis: bool
    ) -> Record:
        record: Record = {"type": "title", "external_id": work.external_id}
        if self.rng.random() < 0.85:
            record["eidr_id"] = format_eidr(_digest(self.seed, "eidr", number)[:20])
        record["kind"] = kind
        if parent is not None:
            record["parent_external_id"] = parent
        record.update(
            name=work.name,
            original_language=work.original_language,
            genres=list(work.genres),
            release_year=work.release_year,
        )
        if synopsis and self.rng.random() < 0.9:
            record["synopsis"] = self._synopsis()
        record["visibility"] = work.visibility
        return record

    def _new_work(self, external_id: str, release_year: int) -> _Work:
        rng = self.rng
        genre_count = rng.choices((1, 2, 3), weights=(40, 45, 15))[0]
        return _Work(
            external_id=external_id,
            name=self._title_name(),
            original_language=rng.choices(_LANGUAGE_CODES, cum_weights=_LANGUAGE_CUM_WEIGHTS)[0],
            genres=tuple(rng.sample(GENRES, genre_count)),
            release_year=release_year,
            visibility=rng.choices(_VISIBILITIES, weights=_VISIBILITY_WEIGHTS)[0],
        )

    def _film(self) -> Iterator[Record]:
        rng = self.rng
        number, title_id = self._next_title_id()
        # Libraries skew recent, with a long tail back to 1950.
        year = min(2025, int(rng.triangular(1950, 2026, 2016)))
        work = self._new_work(title_id, year)
        yield self._title_record("film", work, number, None, synopsis=True)
        yield from self._rights(title_id)
        duration = rng.randint(80 * 60, 170 * 60)
        fps = rng.choice((24.0, 23.976))
        yield from self._programme_assets(work, duration, fps)
        role = "voice" if "animation" in work.genres else "cast"
        performers = self._pick(rng.randint(3, 6), self._performer)
        crew = self._pick(rng.choice(_CREW_JOBS_PER_FILM), self._crew_member)
        yield from self._credits(title_id, performers, crew, role)

    def _series(self, remaining: int) -> Iterator[Record]:
        rng = self.rng
        # Plan the seasons first, trimmed so the total lands exactly on the requested count.
        budget = remaining - 1
        plan: list[int] = []
        for _ in range(rng.randint(1, 4)):
            if budget < 2:
                break
            episodes = min(rng.randint(6, 12), budget - 1)
            plan.append(episodes)
            budget -= 1 + episodes
        number, series_id = self._next_title_id()
        first_year = min(2025, int(rng.triangular(1950, 2026, 2016)))
        first_year = min(first_year, 2025 - (len(plan) - 1))
        series = self._new_work(series_id, first_year)
        yield self._title_record("series", series, number, None, synopsis=True)
        yield from self._rights(series_id)
        yield self._image(series_id, 0, 2000, 3000)
        role = "voice" if "animation" in series.genres else "cast"
        main_cast = self._pick(rng.randint(3, 6), self._performer)
        creators = self._pick(rng.randint(1, 2), self._crew_member)
        yield from self._credits(series_id, main_cast, creators, role)
        runtime = rng.choice((22, 30, 45, 60)) * 60
        fps = rng.choice((23.976, 25.0, 29.97))
        for season_number, episodes in enumerate(plan, start=1):
            number, season_id = self._next_title_id()
            season = _Work(
                external_id=season_id,
                name=f"{series.name}: Season {season_number}",
                original_language=series.original_language,
                genres=series.genres,
                release_year=series.release_year + season_number - 1,
                visibility=series.visibility,
            )
            yield self._title_record("season", season, number, series_id, synopsis=False)
            yield self._image(season_id, 0, 2000, 3000)
            for episode_number in range(1, episodes + 1):
                yield from self._episode(
                    series, season, season_number, episode_number, runtime, fps, main_cast, role
                )

    def _episode(
        self,
        series: _Work,
        season: _Work,
        season_number: int,
        episode_number: int,
        runtime: int,
        fps: float,
        main_cast: Sequence[int],
        role: str,
    ) -> Iterator[Record]:
        rng = self.rng
        number, episode_id = self._next_title_id()
        if season_number == 1 and episode_number == 1:
            episode_title = "Pilot"
        else:
            episode_title = f"{rng.choice(_TITLE_ADJECTIVES)} {rng.choice(_TITLE_NOUNS)}"
        episode = _Work(
            external_id=episode_id,
            name=f"{series.name} S{season_number:02d}E{episode_number:02d}: {episode_title}",
            original_language=series.original_language,
            genres=series.genres,
            release_year=season.release_year,
            visibility=series.visibility,
        )
        yield self._title_record("episode", episode, number, season.external_id, synopsis=True)
        duration = max(60, runtime + rng.randint(-180, 180))
        yield from self._programme_assets(episode, duration, fps)
        # Main cast are credited on every episode as well as on the series, so clearing an
        # episode on its own credits already checks everyone who appears in it.
        guests = self._pick(
            rng.choices((0, 1, 2), weights=(50, 35, 15))[0], self._performer, main_cast
        )
        crew = self._pick(rng.choice((1, 1, 2)), self._crew_member)
        yield from self._credits(episode_id, [*main_cast, *guests], crew, role)

    # --- rights ---------------------------------------------------------------------------

    def _rights(self, title_id: str) -> Iterator[Record]:
        rng = self.rng
        # Some titles carry no grant at all, so clearance has `no_rights` to report.
        if rng.random() < 0.04:
            return
        territories = ["WW"] if rng.random() < 0.85 else self._markets(6)
        start = date(rng.randint(2018, 2025), rng.randint(1, 12), 1)
        # Most grants run well past today; a few have lapsed or are about to.
        end_year = rng.randint(2024, 2026) if rng.random() < 0.05 else rng.randint(2027, 2036)
        end = start.replace(year=max(end_year, start.year + 1)) - _ONE_DAY
        uses = _permitted_uses(rng)
        exclusive = rng.random() < 0.35
        grants = [(territories, start, end, uses, exclusive)]
        extra = rng.random()
        if extra < 0.2:
            # A renewal starting the day after the first grant ends: together they cover both.
            renewal_end = _add_years(end + _ONE_DAY, rng.randint(3, 5)) - _ONE_DAY
            grants.append((territories, end + _ONE_DAY, renewal_end, uses, exclusive))
        elif extra < 0.3:
            others = self._markets(4)
            grants.append((others, start, end, _permitted_uses(rng), rng.random() < 0.35))
        for number, (where, first, last, what, exclusive_available) in enumerate(grants):
            yield {
                "type": "rights",
                "external_id": f"{title_id}-r{number}",
                "title_external_id": title_id,
                "territories": list(where),
                "start": first.isoformat(),
                "end": last.isoformat(),
                "permitted_uses": list(what),
                "exclusive_available": exclusive_available,
            }

    def _markets(self, most: int) -> list[str]:
        rng = self.rng
        chosen = set(rng.sample(MARKETS, rng.randint(1, most)))
        # The US is in most territory-limited deals.
        if rng.random() < 0.6:
            chosen.add("US")
        return sorted(chosen)

    # --- assets ---------------------------------------------------------------------------

    def _asset(
        self, title_id: str, number: int, kind: str, extension: str, byte_size: int
    ) -> Record:
        asset_id = f"{title_id}-a{number:02d}"
        return {
            "type": "asset",
            "external_id": asset_id,
            "title_external_id": title_id,
            "kind": kind,
            "storage_key": f"catalog/{title_id}/{kind}/{asset_id}.{extension}",
            "byte_size": byte_size,
            "sha256": _digest(self.seed, "asset", asset_id),
        }

    def _image(self, title_id: str, number: int, width: int, height: int) -> Record:
        record = self._asset(title_id, number, "image", "jpg", self.rng.randint(300_000, 3_000_000))
        record.update(width=width, height=height)
        return record

    def _programme_assets(self, work: _Work, duration: int, fps: float) -> Iterator[Record]:
        """Yield the renditions, tracks, subtitles, script and stills of a film or episode."""
        rng = self.rng
        title_id = work.external_id
        number = 0
        heights = [720, 1080]
        if work.release_year >= 2008 and rng.random() < 0.7:
            heights.append(2160)
        # Older works are mastered 4:3.
        aspect = (4, 3) if work.release_year < 1955 else (16, 9)
        for height in heights:
            jitter = rng.uniform(0.85, 1.15)
            record = self._asset(
                title_id, number, "video", "mp4", int(duration * _BITRATES[height] / 8 * jitter)
            )
            record.update(
                duration_seconds=duration,
                width=height * aspect[0] // aspect[1],
                height=height,
                fps=fps,
                codec="hevc" if height == 2160 else "h264",
            )
            number += 1
            yield record
        original = work.original_language
        dubs = [tag for tag in _DUB_LANGUAGES if tag.split("-")[0] != original]
        audio_languages = [
            original,
            *rng.sample(dubs, rng.choices((0, 1, 2, 3, 4), (15, 20, 30, 20, 15))[0]),
        ]
        for language in audio_languages:
            codec, bitrate = ("eac3", 384_000) if rng.random() < 0.6 else ("aac", 192_000)
            record = self._asset(title_id, number, "audio", "m4a", duration * bitrate // 8)
            record.update(duration_seconds=duration, codec=codec, language=language)
            number += 1
            yield record
        others = [tag for tag in _SUBTITLE_LANGUAGES if tag != original]
        subtitle_languages = [original, *rng.sample(others, rng.randint(1, 4))]
        for language in subtitle_languages:
            record = self._asset(title_id, number, "subtitle", "vtt", duration * rng.randint(8, 16))
            record.update(codec="webvtt", language=language)
            number += 1
            yield record
        if rng.random() < 0.8:
            record = self._asset(title_id, number, "script", "pdf", rng.randint(80_000, 600_000))
            record["language"] = original
            number += 1
            yield record
        for _ in range(rng.randint(1, 2)):
            yield self._image(title_id, number, 1920, 1080)
            number += 1


def _permitted_uses(rng: random.Random) -> list[str]:
    roll = rng.random()
    if roll < 0.4:
        return list(ALL_USES)
    if roll < 0.7:
        return ["train", "fine_tune", "evaluate"]
    if roll < 0.85:
        return ["train", "evaluate"]
    if roll < 0.9:
        return ["evaluate"]
    chosen = set(rng.sample(ALL_USES, rng.randint(1, len(ALL_USES))))
    return [use for use in ALL_USES if use in chosen]


def _consents(rng: random.Random) -> list[Record]:
    """Return one performer's consents: most give broad consent, some partial, some none."""
    roll = rng.random()
    if roll < 0.02:
        return []
    start = date(rng.randint(2019, 2024), rng.randint(1, 12), 1)
    end = date(rng.randint(2034, 2045), 12, 31)
    attributes = list(ATTRIBUTES)
    uses = list(ALL_USES) if rng.random() < 0.75 else ["train", "fine_tune", "evaluate"]
    territories = ["WW"]
    if roll < 0.07:
        # A partial consent: a narrower scope the clearance check has to notice.
        narrowing = rng.randrange(4)
        if narrowing == 0:
            attributes = ["name", "image"]
        elif narrowing == 1:
            uses = ["evaluate"]
        elif narrowing == 2:
            territories = sorted(rng.sample(MARKETS, rng.randint(1, 5)))
        else:
            end = date(2026, 6, 30)
        return [_consent(attributes, uses, territories, start, end)]
    split = rng.random()
    if split < 0.15:
        # Separate paperwork for name and image and for likeness and voice.
        return [
            _consent(["name", "image"], uses, territories, start, end),
            _consent(["likeness", "voice"], uses, territories, start, end),
        ]
    if split < 0.25:
        # A renewal that begins the day after the first consent ends.
        middle = date(rng.randint(2027, 2030), 12, 31)
        return [
            _consent(attributes, uses, territories, start, middle),
            _consent(attributes, uses, territories, middle + _ONE_DAY, end),
        ]
    return [_consent(attributes, uses, territories, start, end)]


def _consent(
    attributes: list[str], uses: list[str], territories: list[str], start: date, end: date
) -> Record:
    return {
        "attributes": attributes,
        "permitted_uses": uses,
        "territories": territories,
        "start": start.isoformat(),
        "end": end.isoformat(),
    }


def generate_catalog(titles: int, seed: int) -> Iterator[Record]:
    """Yield a synthetic catalog of exactly `titles` title records, deterministic for `seed`."""
    if titles < 0:
        raise ValueError("titles must not be negative")
    return _CatalogGenerator(titles, seed).records()


def write_jsonl(records: Iterable[Mapping[str, Any]], fp: _Writer) -> int:
    """Write records as JSON Lines to a text stream and return how many were written."""
    count = 0
    batch: list[str] = []
    for record in records:
        batch.append(json.dumps(record, ensure_ascii=False, separators=(",", ":")))
        count += 1
        # Batched writes: one call per line dominates the cost for large catalogs.
        if len(batch) >= 1024:
            fp.write("\n".join(batch) + "\n")
            batch.clear()
    if batch:
        fp.write("\n".join(batch) + "\n")
    return count
