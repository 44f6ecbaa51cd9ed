"""The synthetic catalog generator: shape, determinism, referential integrity, speed."""

from __future__ import annotations

import io
import json
import re
import time
from collections import Counter, defaultdict
from datetime import date
from functools import cache
from itertools import islice
from typing import Any

import pytest

from catalog.codes import normalize_language, normalize_territory
from catalog.coverage import (
    ALL_USES,
    ATTRIBUTES,
    Consent,
    Grant,
    Window,
    attributes_required,
    consent_covers,
    uncovered,
)
from catalog.eidr import validate_eidr
from catalog.imports.generate import GENRES, generate_catalog, write_jsonl

Record = dict[str, Any]

# Field names of API.md's import format, per record type: (required, optional).
FIELDS: dict[str, tuple[set[str], set[str]]] = {
    "title": (
        {"external_id", "kind", "name", "original_language", "genres", "release_year",
         "visibility"},
        {"eidr_id", "parent_external_id", "synopsis"},
    ),
    "asset": (
        {"external_id", "title_external_id", "kind", "storage_key", "byte_size", "sha256"},
        {"duration_seconds", "width", "height", "fps", "codec", "language"},
    ),
    "rights": (
        {"external_id", "title_external_id", "territories", "start", "end", "permitted_uses",
         "exclusive_available"},
        set(),
    ),
    "talent": ({"external_id", "name"}, set()),
    "credit": ({"title_external_id", "talent_external_id", "role"}, set()),
    "consent": (
        {"external_id", "talent_external_id", "attributes", "permitted_uses", "territories",
         "start", "end"},
        set(),
    ),
}  # fmt: skip
SHA256 = re.compile(r"[0-9a-f]{64}")


@cache
def catalog(titles: int, seed: int) -> tuple[Record, ...]:
    return tuple(generate_catalog(titles, seed))


def by_type(records: tuple[Record, ...]) -> dict[str, list[Record]]:
    grouped: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        grouped[record["type"]].append(record)
    return grouped


def day(value: str) -> date:
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)
    return date.fromisoformat(value)


class TestShape:
    @pytest.mark.parametrize("titles", [0, 1, 2, 3, 4, 5, 27, 100, 2000])
    def test_exactly_the_requested_number_of_titles(self, titles: int) -> None:
        records = catalog(titles, 3)
        assert sum(record["type"] == "title" for record in records) == titles

    def test_rejects_a_negative_count(self) -> None:
        with pytest.raises(ValueError, match="negative"):
            generate_catalog(-1, 1)

    def test_field_names_match_the_import_format(self) -> None:
        for record in catalog(2000, 1):
            required, optional = FIELDS[record["type"]]
            keys = set(record) - {"type"}
            assert required <= keys, record
            assert keys <= required | optional, record

    def test_mostly_films_and_series_are_well_formed(self) -> None:
        titles = by_type(catalog(2000, 1))["title"]
        kinds = Counter(title["kind"] for title in titles)
        assert 0.55 < kinds["film"] / len(titles) < 0.85
        assert kinds["series"] > 0
        children: dict[str, list[Record]] = defaultdict(list)
        for title in titles:
            if "parent_external_id" in title:
                children[title["parent_external_id"]].append(title)
        for title in titles:
            if title["kind"] == "series":
                assert 1 <= len(children[title["external_id"]]) <= 4
            elif title["kind"] == "season":
                assert 1 <= len(children[title["external_id"]]) <= 12
            else:
                assert not children[title["external_id"]]

    def test_title_values(self) -> None:
        titles = by_type(catalog(2000, 1))["title"]
        assert {title["visibility"] for title in titles} == {"private", "anonymized", "listed"}
        for title in titles:
            assert title["kind"] in {"film", "series", "season", "episode"}
            assert 1950 <= title["release_year"] <= 2025
            assert 1 <= len(title["genres"]) <= 3
            assert set(title["genres"]) <= set(GENRES)
            assert len(set(title["genres"])) == len(title["genres"])
            assert normalize_language(title["original_language"]) == title["original_language"]
            assert title["name"].strip() == title["name"] != ""
            if "synopsis" in title:
                assert title["synopsis"].endswith((".", "!", "?"))
        assert sum("synopsis" in title for title in titles) > len(titles) / 2
        assert sum("eidr_id" in title for title in titles) > len(titles) / 2

    def test_every_eidr_id_is_valid_and_canonical(self) -> None:
        eidr_ids = [t["eidr_id"] for t in by_type(catalog(2000, 1))["title"] if "eidr_id" in t]
        assert eidr_ids
        for eidr_id in eidr_ids:
            assert validate_eidr(eidr_id) == eidr_id
        assert len(set(eidr_ids)) == len(eidr_ids)

    def test_asset_values(self) -> None:
        grouped = by_type(catalog(2000, 1))
        assets = grouped["asset"]
        assert 8 <= len(assets) / len(grouped["title"]) <= 13
        kinds = Counter(asset["kind"] for asset in assets)
        assert set(kinds) == {"video", "audio", "subtitle", "script", "image"}
        heights = {asset["height"] for asset in assets if asset["kind"] == "video"}
        assert heights == {720, 1080, 2160}
        for asset in assets:
            assert SHA256.fullmatch(asset["sha256"])
            assert isinstance(asset["byte_size"], int)
            assert asset["byte_size"] > 0
            assert asset["storage_key"].startswith(f"catalog/{asset['title_external_id']}/")
            if asset["kind"] == "video":
                assert asset["duration_seconds"] > 0
                assert asset["width"] > asset["height"] > 0
                assert asset["fps"] in {23.976, 24.0, 25.0, 29.97}
                assert asset["codec"] in {"h264", "hevc"}
            if asset["kind"] in {"audio", "subtitle"}:
                assert normalize_language(asset["language"]) == asset["language"]
        assert len({asset["sha256"] for asset in assets}) == len(assets)
        assert len({asset["storage_key"] for asset in assets}) == len(assets)

    def test_rights_values(self) -> None:
        grouped = by_type(catalog(2000, 1))
        kind_of = {title["external_id"]: title["kind"] for title in grouped["title"]}
        for grant in grouped["rights"]:
            # Grants sit on films and series; seasons and episodes inherit them.
            assert kind_of[grant["title_external_id"]] in {"film", "series"}
            assert day(grant["start"]) <= day(grant["end"])
            assert grant["permitted_uses"]
            assert set(grant["permitted_uses"]) <= set(ALL_USES)
            assert isinstance(grant["exclusive_available"], bool)
            assert grant["territories"]
            for territory in grant["territories"]:
                assert normalize_territory(territory) == territory
        territory_sets = [set(grant["territories"]) for grant in grouped["rights"]]
        assert {"WW"} in territory_sets
        assert any("WW" not in territories for territories in territory_sets)

    def test_talent_credits_and_consents(self) -> None:
        grouped = by_type(catalog(2000, 1))
        assert {credit["role"] for credit in grouped["credit"]} == {"cast", "voice", "crew"}
        triples = [
            (c["title_external_id"], c["talent_external_id"], c["role"]) for c in grouped["credit"]
        ]
        assert len(set(triples)) == len(triples)
        for consent in grouped["consent"]:
            assert day(consent["start"]) <= day(consent["end"])
            assert consent["attributes"]
            assert set(consent["attributes"]) <= set(ATTRIBUTES)
            assert set(consent["permitted_uses"]) <= set(ALL_USES)
            for territory in consent["territories"]:
                assert normalize_territory(territory) == territory
        consenting = {consent["talent_external_id"] for consent in grouped["consent"]}
        performers = {c["talent_external_id"] for c in grouped["credit"] if c["role"] != "crew"}
        # Most performers consented, some did not: clearance has something to refuse.
        assert 0.8 < len(performers & consenting) / len(performers) < 1

    def test_external_ids_are_unique_per_type(self) -> None:
        grouped = by_type(catalog(2000, 1))
        for kind in ("title", "asset", "rights", "talent", "consent"):
            ids = [record["external_id"] for record in grouped[kind]]
            assert len(set(ids)) == len(ids), kind


class TestReferences:
    @pytest.mark.parametrize("seed", [1, 2, 99])
    def test_every_reference_resolves(self, seed: int) -> None:
        grouped = by_type(catalog(1000, seed))
        kind_of = {title["external_id"]: title["kind"] for title in grouped["title"]}
        talent = {person["external_id"] for person in grouped["talent"]}
        expected_parent = {"season": "series", "episode": "season"}
        for title in grouped["title"]:
            parent = title.get("parent_external_id")
            assert (parent is None) == (title["kind"] in {"film", "series"})
            if parent is not None:
                assert kind_of[parent] == expected_parent[title["kind"]]
        for kind in ("asset", "rights", "credit"):
            for record in grouped[kind]:
                assert record["title_external_id"] in kind_of
        for kind in ("credit", "consent"):
            for record in grouped[kind]:
                assert record["talent_external_id"] in talent

    def test_parents_and_talent_come_before_references(self) -> None:
        seen: set[tuple[str, str]] = set()
        for record in catalog(2000, 1):
            if record["type"] in {"title", "talent"}:
                seen.add((record["type"], record["external_id"]))
            if "parent_external_id" in record:
                assert ("title", record["parent_external_id"]) in seen
            if "title_external_id" in record:
                assert ("title", record["title_external_id"]) in seen
            if "talent_external_id" in record:
                assert ("talent", record["talent_external_id"]) in seen


class TestDeterminism:
    def test_same_seed_same_catalog(self) -> None:
        assert list(generate_catalog(500, 7)) == list(catalog(500, 7))

    def test_different_seed_different_catalog(self) -> None:
        first, second = catalog(100, 7), catalog(100, 8)
        assert [r.get("name") for r in first] != [r.get("name") for r in second]
        ids = {r["external_id"] for r in first if "external_id" in r}
        assert ids.isdisjoint(r["external_id"] for r in second if "external_id" in r)

    def test_streams_without_building_the_catalog(self) -> None:
        started = time.perf_counter()
        head = list(islice(generate_catalog(10**9, 1), 100))
        assert len(head) == 100
        assert time.perf_counter() - started < 1

    def test_two_thousand_titles_are_quick(self) -> None:
        started = time.perf_counter()
        count = sum(1 for _ in generate_catalog(2000, 5))
        elapsed = time.perf_counter() - started
        assert count > 2000
        assert elapsed < 3, f"generating 2,000 titles took {elapsed:.2f}s"


class TestClearanceMix:
    def test_some_titles_clear_and_some_are_refused(self) -> None:
        """Feed the catalog to the pure clearance logic the way the service will."""
        grouped = by_type(catalog(2000, 1))
        parent = {t["external_id"]: t.get("parent_external_id") for t in grouped["title"]}
        grants: dict[str, list[Grant]] = defaultdict(list)
        for r in grouped["rights"]:
            window = Window(day(r["start"]), day(r["end"]))
            grants[r["title_external_id"]].append(
                Grant(frozenset(r["territories"]), window, frozenset(r["permitted_uses"]))
            )
        consents: dict[str, list[Consent]] = defaultdict(list)
        for r in grouped["consent"]:
            consents[r["talent_external_id"]].append(
                Consent(
                    frozenset(r["attributes"]),
                    frozenset(r["permitted_uses"]),
                    frozenset(r["territories"]),
                    Window(day(r["start"]), day(r["end"])),
                )
            )
        credits: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for r in grouped["credit"]:
            credits[r["title_external_id"]].append((r["talent_external_id"], r["role"]))

        request = Window(date(2026, 1, 1), date(2026, 12, 31))
        outcome: Counter[str] = Counter()
        for title_id in parent:
            inherited: list[Grant] = []
            ancestor: str | None = title_id
            while ancestor is not None:
                inherited += grants[ancestor]
                ancestor = parent[ancestor]
            if uncovered(inherited, uses=["train"], territories=["US"], window=request):
                outcome["no_rights"] += 1
            elif not all(
                consent_covers(
                    consents[talent],
                    attributes_needed=attributes_required(role),
                    uses=["train"],
                    territories=["US"],
                    window=request,
                )
                for talent, role in credits[title_id]
            ):
                outcome["talent_consent_missing"] += 1
            else:
                outcome["cleared"] += 1
        assert outcome["cleared"] > len(parent) / 3
        assert outcome["no_rights"] > 0
        assert outcome["talent_consent_missing"] > 0


class TestWriteJsonl:
    def test_round_trip(self) -> None:
        records = list(catalog(50, 2))
        buffer = io.StringIO()
        assert write_jsonl(records, buffer) == len(records)
        text = buffer.getvalue()
        assert text.endswith("\n")
        lines = text.splitlines()
        assert len(lines) == len(records)
        assert [json.loads(line) for line in lines] == records
        assert all(line.startswith('{"type":') for line in lines)

    def test_streams_in_batches(self) -> None:
        writes: list[str] = []

        class Sink:
            def write(self, text: str, /) -> int:
                writes.append(text)
                return len(text)

        count = write_jsonl(generate_catalog(300, 4), Sink())
        assert count == len(catalog(300, 4))
        assert len(writes) > 1
        assert "".join(writes).count("\n") == count

    def test_empty(self) -> None:
        buffer = io.StringIO()
        assert write_jsonl([], buffer) == 0
        assert buffer.getvalue() == ""
