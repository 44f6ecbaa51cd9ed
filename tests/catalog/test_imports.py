"""Bulk catalog import: the route, the service, and the `marketplace catalog` commands."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import re
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from datetime import date
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Connection, Engine, func, select, text
from sqlalchemy.orm import Session
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from catalog.assets import complete_asset, register_asset, sign_upload_parts
from catalog.imports.generate import generate_catalog, write_jsonl
from catalog.imports.parse import FIELDS
from catalog.imports.service import import_catalog
from catalog.models import (
    Asset,
    Consent,
    Credit,
    ImportJob,
    RightsGrant,
    RightsTerm,
    Talent,
    Title,
    TitleGenre,
)
from catalog.rights import create_grant
from catalog.talent import add_consent, create_talent
from catalog.titles import create_title
from config import Settings
from marketplace.accounts.principal import Principal
from marketplace.app import create_app
from marketplace.audit.models import AuditEvent
from marketplace.cli import main
from marketplace.core.storage.fake import InMemoryStorage
from tests.helpers import bound_sessions, problem
from tests.world import World

IMPORTS = "/api/v1/catalog/imports"
EIDR = "10.5240/7791-8534-2C23-9030-8610-5"  # valid check character


# --- building files ---------------------------------------------------------------------------


def jsonl(records: Iterable[Mapping[str, Any]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "|".join(value)
    if isinstance(value, dict):
        return "|".join(f"{k}:{v}" for k, v in value.items())
    return str(value)


def as_csv(records: Iterable[Mapping[str, Any]]) -> bytes:
    columns = ["type"] + sorted({f[0] for spec in FIELDS.values() for f in spec})
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for record in records:
        writer.writerow([_cell(record.get(c)) for c in columns])
    return out.getvalue().encode()


def film(external_id: str, **fields: Any) -> dict[str, Any]:
    return (
        {"type": "title", "external_id": external_id, "kind": "film", "name": external_id}
        | {
            "genres": ["Drama"],
            "original_language": "en",
            "release_year": 2001,
        }
        | fields
    )


def asset(external_id: str, title: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": "asset",
        "external_id": external_id,
        "title_external_id": title,
        "kind": "video",
        "storage_key": f"masters/{external_id}.mp4",
        "byte_size": 1000,
        "sha256": hashlib.sha256(external_id.encode()).hexdigest(),
        "duration_seconds": 5400,
        "height": 1080,
    } | fields


def rights(external_id: str, title: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": "rights",
        "external_id": external_id,
        "title_external_id": title,
        "territories": ["fr", "US"],
        "start": "2025-01-01",
        "end": "2030-12-31",
        "permitted_uses": ["evaluate", "train"],
    } | fields


def small_catalog() -> list[dict[str, Any]]:
    """A series with a season and an episode, a film, assets, rights, talent, credit, consent."""
    return [
        {"type": "title", "external_id": "ser", "kind": "series", "name": "The Harbor"},
        {"type": "title", "external_id": "s1", "kind": "season", "name": "Season 1",
         "parent_external_id": "ser"},
        {"type": "title", "external_id": "e1", "kind": "episode", "name": "Pilot",
         "parent_external_id": "s1", "synopsis": "A storm traps everyone together."},
        film("f1", eidr_id=EIDR, visibility="listed", genres=["Drama", " drama ", "Crime"]),
        asset("f1-v", "f1"),
        asset("e1-v", "e1", duration_seconds=1800),
        rights("f1-r", "f1"),
        rights("ser-r", "ser", territories=["WW"], permitted_uses=["train"]),
        {"type": "talent", "external_id": "p1", "name": "Ada Okafor",
         "external_ids": {"imdb": "nm0000001"}},
        {"type": "credit", "title_external_id": "f1", "talent_external_id": "p1", "role": "cast"},
        {"type": "consent", "external_id": "p1-c", "talent_external_id": "p1",
         "attributes": ["voice", "name", "image", "likeness"], "permitted_uses": ["train"],
         "territories": ["WW"], "start": "2024-01-01", "end": "2040-12-31"},
    ]  # fmt: skip


def post(client: Any, headers: dict[str, str], content: bytes, name: str, **form: str) -> Any:
    # Encoded in memory: the test client would spool a large body to a temporary file that it
    # never closes.
    upload = FileStorage(io.BytesIO(content), filename=name)
    boundary, body = encode_multipart({"file": upload, **form})
    return client.post(
        IMPORTS,
        data=body,
        headers=headers,
        content_type=f"multipart/form-data; boundary={boundary}",
    )


def principal_of(world: World, name: str) -> Principal:
    actor = world[name]
    return Principal(actor.user_id, actor.org_id, actor.kind, "owner")


def run_import(session: Session, world: World, name: str, content: bytes, **kw: Any) -> ImportJob:
    return import_catalog(session, principal_of(world, name), io.BytesIO(content), **kw)


def give_a_catalog(session: Session, world: World, name: str) -> None:
    """Give a studio records of every type made through the services, and a previous import."""
    studio = principal_of(world, name)
    made = create_title(session, studio, external_id="api-f", kind="film", name="Made")
    storage = InMemoryStorage("b")
    video = register_asset(
        session, studio, made.id, kind="video", byte_size=4,
        sha256=hashlib.sha256(b"abcd").hexdigest(), external_id="api\\v",
    )  # fmt: skip
    storage.put_bytes(video.storage_key, b"abcd")
    complete_asset(session, studio, video.id, storage=storage)
    create_grant(
        session, studio, made.id, territories=["US"], start=date(2026, 1, 1),
        end=date(2027, 1, 1), permitted_uses=["train"], external_id="api-r",
    )  # fmt: skip
    person = create_talent(session, studio, name="Made Person", external_id="api-p")
    add_consent(
        session, studio, person.id, attributes=["voice"], permitted_uses=["train"],
        territories=["US"], start=date(2026, 1, 1), end=date(2027, 1, 1), external_id="api-c",
    )  # fmt: skip
    previous = io.StringIO()
    write_jsonl(generate_catalog(3, seed=4), previous)
    assert run_import(session, world, name, previous.getvalue().encode()).status == "succeeded"


def count(session: Session, model: Any, **where: Any) -> int:
    stmt = select(func.count()).select_from(model).filter_by(**where)
    return int(session.scalar(stmt) or 0)


def snapshot(session: Session, studio_id: str) -> dict[str, set[tuple[Any, ...]]]:
    """Every catalog row of a studio (ids included), to compare catalogs exactly."""
    titles = select(Title.id).where(Title.studio_id == studio_id)
    grants = select(RightsGrant.id).where(RightsGrant.studio_id == studio_id)

    def rows(model: Any, *conditions: Any) -> set[tuple[Any, ...]]:
        columns = [c for c in model.__table__.c if c.name not in ("updated_at",)]
        return {
            tuple(json.dumps(v, sort_keys=True) if isinstance(v, list | dict) else v for v in r)
            for r in session.execute(select(*columns).where(*conditions))
        }

    return {
        "titles": rows(Title, Title.studio_id == studio_id),
        "genres": rows(TitleGenre, TitleGenre.title_id.in_(titles)),
        "assets": rows(Asset, Asset.studio_id == studio_id),
        "grants": rows(RightsGrant, RightsGrant.studio_id == studio_id),
        "terms": rows(RightsTerm, RightsTerm.grant_id.in_(grants)),
        "talent": rows(Talent, Talent.studio_id == studio_id),
        "credits": rows(Credit, Credit.title_id.in_(titles)),
        "consents": rows(Consent, Consent.studio_id == studio_id),
    }


# --- the route --------------------------------------------------------------------------------


class TestImportRoute:
    def test_jsonl_import_builds_the_catalog_and_reports_it(
        self, client: Any, session: Session, world: World
    ) -> None:
        studio = world["studio_a"]
        response = post(client, studio.headers, jsonl(small_catalog()), "catalog.jsonl")
        assert response.status_code == 201, response.get_data(as_text=True)
        body = response.get_json()
        assert body["status"] == "succeeded"
        assert (body["rows_total"], body["rows_ok"], body["errors"]) == (11, 11, [])
        assert body["format"] == "jsonl" and body["studio_id"] == studio.org_id
        assert body["results"]["title"] == {"created": 4, "updated": 0, "unchanged": 0}
        assert body["results"]["asset"]["created"] == 2
        assert body["id"].startswith("imp_")

        titles = {t.external_id: t for t in session.scalars(select(Title))}
        assert set(titles) == {"ser", "s1", "e1", "f1"}
        assert all(
            t.studio_id == studio.org_id and t.id.startswith("ttl_") for t in titles.values()
        )
        # The hierarchy as the title service stores it: root_id is the series.
        assert (titles["s1"].parent_id, titles["s1"].root_id) == (
            titles["ser"].id,
            titles["ser"].id,
        )
        assert (titles["e1"].parent_id, titles["e1"].root_id) == (titles["s1"].id, titles["ser"].id)
        assert titles["ser"].root_id is None and titles["f1"].parent_id is None
        assert titles["f1"].genres == ["drama", "crime"]
        assert titles["f1"].eidr_id == EIDR and titles["f1"].visibility == "listed"
        assert titles["ser"].visibility == "private"
        genres = session.scalars(
            select(TitleGenre.genre).where(TitleGenre.title_id == titles["f1"].id)
        )
        assert sorted(genres) == ["crime", "drama"]

        assets = {a.external_id: a for a in session.scalars(select(Asset))}
        video = assets["f1-v"]
        assert video.status == "pending" and video.studio_id == studio.org_id
        assert video.storage_key == (
            f"studios/{studio.org_id}/titles/{titles['f1'].id}/{video.id}/f1-v.mp4"
        )
        grant = session.scalars(select(RightsGrant).filter_by(external_id="f1-r")).one()
        assert grant.territories == ["FR", "US"] and grant.permitted_uses == ["train", "evaluate"]
        terms = session.execute(
            select(RightsTerm.territory, RightsTerm.use, RightsTerm.title_id).filter_by(
                grant_id=grant.id
            )
        )
        assert set(terms) == {
            (t, u, titles["f1"].id) for t in ("FR", "US") for u in ("train", "evaluate")
        }
        consent = session.scalars(select(Consent)).one()
        assert consent.attributes == ["name", "image", "likeness", "voice"]
        credit = session.scalars(select(Credit)).one()
        talent = session.scalars(select(Talent)).one()
        assert (credit.title_id, credit.talent_id) == (titles["f1"].id, talent.id)
        assert talent.external_ids == {"imdb": "nm0000001"}

        again = client.get(f"{IMPORTS}/{body['id']}", headers=studio.member_headers)
        assert again.status_code == 200
        assert again.get_json() == body

    def test_csv_gives_the_same_catalog_as_json_lines(
        self, client: Any, session: Session, world: World
    ) -> None:
        a, b = world["studio_a"], world["studio_b"]
        records = small_catalog()
        assert post(client, a.headers, jsonl(records), "c.jsonl").get_json()["status"] == (
            "succeeded"
        )
        response = post(client, b.headers, as_csv(records), "c.csv")
        assert response.get_json()["status"] == "succeeded", response.get_json()["errors"]
        assert response.get_json()["format"] == "csv"

        def shape(studio_id: str) -> set[tuple[Any, ...]]:
            rows = session.execute(
                select(
                    Title.external_id, Title.kind, Title.name, Title.genres, Title.synopsis
                ).where(Title.studio_id == studio_id)
            )
            return {(*r[:3], tuple(r[3]), r[4]) for r in rows}

        assert shape(a.org_id) == shape(b.org_id) and len(shape(a.org_id)) == 4
        assert count(session, Asset, studio_id=b.org_id) == 2
        assert count(session, Consent, studio_id=b.org_id) == 1

    def test_one_bad_row_among_ten_thousand_writes_nothing_and_is_reported(
        self, client: Any, session: Session, world: World
    ) -> None:
        records = [film(f"t{i:05d}") for i in range(10_000)]
        records[6_000]["release_year"] = "nineteen"
        response = post(client, world["studio_a"].headers, as_csv(records), "big.csv")
        assert response.status_code == 201
        body = response.get_json()
        assert body["status"] == "failed"
        assert (body["rows_total"], body["rows_ok"], body["errors_total"]) == (10_000, 9_999, 1)
        # The header is row 1, so record 6,000 (0-based) is on row 6,002.
        assert body["errors"] == [
            {"row": 6_002, "field": "release_year", "message": "must be an integer"}
        ]
        assert count(session, Title) == 0 and count(session, TitleGenre) == 0
        # The report is the one thing kept.
        stored = client.get(f"{IMPORTS}/{body['id']}", headers=world["operator"].headers)
        assert stored.get_json()["errors"] == body["errors"]

    def test_the_same_file_twice_gives_the_same_catalog(
        self, client: Any, session: Session, world: World
    ) -> None:
        studio = world["studio_a"]
        content = io.StringIO()
        write_jsonl(generate_catalog(25, seed=11), content)
        first = post(client, studio.headers, content.getvalue().encode(), "g.jsonl").get_json()
        assert first["status"] == "succeeded", first["errors"][:3]
        before = snapshot(session, studio.org_id)
        assert len(before["titles"]) == 25 and before["assets"] and before["credits"]

        second = post(client, studio.headers, content.getvalue().encode(), "g.jsonl").get_json()
        assert second["status"] == "succeeded"
        assert snapshot(session, studio.org_id) == before
        for kind, counts in second["results"].items():
            assert counts == {"created": 0, "updated": 0, "unchanged": first["records"][kind]}

    def test_a_file_too_large_is_refused_with_413(
        self,
        settings: Settings,
        connection: Connection,
        storage: InMemoryStorage,
        payments: Any,
        world: World,
    ) -> None:
        client = create_app(
            settings.with_overrides(max_import_bytes=20_000),
            session_factory=bound_sessions(connection),
            storage=storage,
            payments=payments,
        ).test_client()
        records = [film(f"t{i:04d}") for i in range(300)]
        content = jsonl(records)
        assert len(content) > 20_000
        response = post(client, world["studio_a"].headers, content, "c.jsonl")
        problem(response, 413, "payload_too_large")

    def test_files_beyond_the_json_body_limit_are_accepted(
        self, client: Any, settings: Any, world: World
    ) -> None:
        content = jsonl(film(f"t{i:04d}", synopsis="x" * 200) for i in range(400))
        assert len(content) > settings.max_content_length
        response = post(client, world["studio_a"].headers, content, "c.jsonl")
        assert response.get_json()["status"] == "succeeded"

    def test_developers_may_not_import(self, client: Any, session: Session, world: World) -> None:
        response = post(client, world["developer_x"].headers, jsonl([film("f")]), "c.jsonl")
        problem(response, 403, "forbidden")
        assert count(session, Title) == 0

    def test_a_studio_imports_into_its_own_catalog_only(
        self, client: Any, session: Session, world: World
    ) -> None:
        a, b = world["studio_a"], world["studio_b"]
        response = post(client, a.headers, jsonl([film("f")]), "c.jsonl", studio_id=b.org_id)
        problem(response, 403, "forbidden")
        created = post(client, a.member_headers, jsonl([film("f")]), "c.jsonl").get_json()
        assert created["studio_id"] == a.org_id
        # Others must not learn that the report exists.
        for other in ("studio_b", "developer_x"):
            response = client.get(f"{IMPORTS}/{created['id']}", headers=world[other].headers)
            problem(response, 404, "not_found")
        # Studio B's file cannot name studio A's titles.
        response = post(client, b.headers, jsonl([asset("x", "f")]), "c.jsonl").get_json()
        assert response["status"] == "failed"
        assert response["errors"] == [
            {
                "row": 1,
                "field": "title_external_id",
                "message": "no title 'f' in this file or in the catalog",
            }
        ]
        # The same external ids in two studios are two catalogs.
        assert post(client, b.headers, jsonl([film("f")]), "c.jsonl").get_json()["status"] == (
            "succeeded"
        )
        assert count(session, Title, external_id="f") == 2

    def test_an_operator_imports_on_behalf_of_a_studio(
        self, client: Any, session: Session, world: World
    ) -> None:
        operator, studio = world["operator"], world["studio_b"]
        response = post(
            client, operator.headers, jsonl([film("f")]), "c.jsonl", studio_id=studio.org_id
        )
        assert response.status_code == 201
        assert response.get_json()["studio_id"] == studio.org_id
        assert session.scalars(select(Title.studio_id)).one() == studio.org_id
        problem(
            post(client, operator.headers, jsonl([film("g")]), "c.jsonl"), 422, "validation_error"
        )
        not_a_studio = post(
            client, operator.headers, jsonl([film("g")]), "c.jsonl",
            studio_id=world["developer_x"].org_id,
        )  # fmt: skip
        problem(not_a_studio, 422, "validation_error")
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "catalog.import.succeeded")
        ).one()
        assert (event.actor_user_id, event.organization_id) == (operator.user_id, studio.org_id)

    def test_unknown_form_fields_and_a_missing_file_are_refused(
        self, client: Any, world: World
    ) -> None:
        headers = world["studio_a"].headers
        problem(post(client, headers, b"", "c.jsonl", colour="red"), 422, "validation_error")
        missing = client.post(IMPORTS, data={}, headers=headers, content_type="multipart/form-data")
        problem(missing, 422, "validation_error")

    def test_imported_titles_are_found_by_search(self, client: Any, world: World) -> None:
        studio = world["studio_a"]
        post(client, studio.headers, jsonl(small_catalog()), "c.jsonl")
        response = client.get("/api/v1/titles?q=storm", headers=studio.headers)
        assert response.status_code == 200
        assert [t["external_id"] for t in response.get_json()["items"]] == ["e1"]


# --- validation -------------------------------------------------------------------------------


class TestValidation:
    def test_every_bad_row_is_reported_with_its_field(self, session: Session, world: World) -> None:
        records: list[Any] = [
            film("ok"),  # row 1
            film("f2", kind="movie"),  # 2
            film("f3", eidr_id="10.5240/7791-8534-2C23-9030-8610-6"),  # 3: wrong check char
            rights("r1", "ok", territories=["UK"]),  # 4
            rights("r2", "ok", permitted_uses=["train", "resell"]),  # 5
            rights("r3", "ok", start="2030-01-01", end="2029-12-31"),  # 6
            asset("a1", "nowhere"),  # 7
            film("ok"),  # 8: duplicate
            film("f9", colour="red"),  # 9
            {"type": "poster"},  # 10
            asset("a1", "ok"),  # 11: a1 again (row 7 is valid on its own)
            film("f12", original_language="xx"),  # 12
            {"type": "credit", "title_external_id": "ok", "talent_external_id": "nobody",
             "role": "cast"},  # 13
        ]  # fmt: skip
        content = jsonl(records).replace(b'{"type": "poster"}', b'{"type": "poster"')
        job = run_import(session, world, "studio_a", content)
        assert job.status == "failed"
        assert job.rows_total == 13 and job.rows_ok == 1
        reported = {(e["row"], e["field"]) for e in job.errors}
        assert reported == {
            (2, "kind"),
            (3, "eidr_id"),
            (4, "territories"),
            (5, "permitted_uses"),
            (6, "end"),
            (7, "title_external_id"),
            (8, "external_id"),
            (9, "colour"),
            (10, None),
            (11, "external_id"),
            (12, "original_language"),
            (13, "talent_external_id"),
        }
        messages = {e["row"]: e["message"] for e in job.errors}
        assert messages[8] == "duplicate title 'ok': already on row 1"
        assert messages[11] == "duplicate asset 'a1': already on row 7"
        assert "use GB" in messages[4]
        assert messages[6] == "must not be before start (2030-01-01)"
        assert messages[10].startswith("not valid JSON")
        assert [e["row"] for e in job.errors] == sorted(e["row"] for e in job.errors)
        assert count(session, Title) == 0 and count(session, RightsGrant) == 0

    def test_numbers_are_checked_as_the_json_module_reads_them(
        self, session: Session, world: World
    ) -> None:
        # orjson, which reads most lines, refuses NaN and Infinity and reads integers past 64
        # bits as floats: such lines are read again by the json module, as they always were.
        records: list[Any] = [
            film("f"),  # row 1
            asset("a2", "f", byte_size=10**30),  # 2
            asset("a3", "f", byte_size=-(2**63) - 1),  # 3
            asset("a4", "f", byte_size=1e19),  # 4: a float, whatever its size
            asset("a5", "f", fps=float("nan")),  # 5
            asset("a6", "f", duration_seconds=float("inf")),  # 6
            film("g", eidr_id=10**30),  # 7
            asset("a8", "f", byte_size=2**64 - 1, width=2**63),  # 8: orjson reads these as ints
            asset("a9", "f", genres=[10**30]),  # 9: not an asset's field, whatever it holds
            # 10, 11: a number in a list or an object is refused whatever its type (orjson's
            # float for an integer past 64 bits is left as it is there).
            film("h", genres=[10**30]),
            {"type": "talent", "external_id": "p", "name": "P", "external_ids": {"x": 10**30}},
        ]
        job = run_import(session, world, "studio_a", jsonl(records))
        assert [(e["row"], e["field"], e["message"]) for e in job.errors] == [
            (2, "byte_size", "must be between 1 and 5497558138880"),
            (3, "byte_size", "must be between 1 and 5497558138880"),
            (4, "byte_size", "must be an integer"),
            (5, "fps", "must not be negative"),
            (6, "duration_seconds", "must not be negative"),
            (7, "eidr_id", "EIDR ID must be a string, not int"),
            (8, "byte_size", "must be between 1 and 5497558138880"),
            (8, "width", "must be between 1 and 100000"),
            (9, "genres", "not a field of a asset record"),
            (10, "genres", "must be a list of strings"),
            (11, "external_ids", "the id for 'x' must be a non-empty string"),
        ]

    def test_json_lines_read_as_the_json_module_reads_them(self) -> None:
        from catalog.imports.parse import read_records

        lines = [
            b'\xef\xbb\xbf{"type": "title", "external_id": "bom"}',
            b'{"type":"asset","byte_size":123456789012345678901234567890,"width":-9223372036854775809}',
            b'{"type":"asset","byte_size":18446744073709551615,"fps":1.5e3,"height":-0}',
            b'{"type":"title","name":"\\ud800 lone surrogate"}',
            b'{"type":"title","name":"caf\xc3\xa9 \\u00e9","a":1,"a":2}',
            b'  {"type": "talent"}  \r',
            b"",
            b"   ",
            b'{"type":"title"} {"type":"title"}',
            b'{"type":"title",}',
            b'["type", "title"]',
            b'"title"',
            b'{"type":"title","name":"\xff"}',
            b'{"type":"title","name":"tab\there"}',
        ]
        content = b"\n".join(lines) + b"\n"

        def as_json_module_reads(data: bytes) -> list[Any]:
            rows: list[Any] = []
            for row, line in enumerate(data.split(b"\n")[:-1], 1):
                try:
                    text = line.removeprefix(b"\xef\xbb\xbf").decode()
                except UnicodeDecodeError:
                    rows.append((row, None, [(None, "not UTF-8 text")]))
                    continue
                if not text.strip():
                    continue
                try:
                    fields = json.loads(text)
                except json.JSONDecodeError as exc:
                    message = f"not valid JSON: {exc.msg} at column {exc.colno}"
                    rows.append((row, None, [(None, message)]))
                    continue
                if not isinstance(fields, dict):
                    rows.append((row, None, [(None, "must be a JSON object, one per line")]))
                    continue
                if fields.get("name", "").startswith("\ud800"):
                    # Except a lone surrogate, which no database can store (core.json_input).
                    message = "a string holds a lone surrogate (\\ud800), which is not Unicode text"
                    rows.append((row, None, [("name", message)]))
                    continue
                rows.append((row, fields, []))
            return rows

        read = list(read_records(io.BytesIO(content), "jsonl"))
        # repr: the types must match too (an int is not a float of the same value).
        assert repr(read) == repr(as_json_module_reads(content))
        assert read[1][1] == {
            "type": "asset",
            "byte_size": 123456789012345678901234567890,
            "width": -9223372036854775809,
        }

    def test_records_may_come_in_any_order(self, session: Session, world: World) -> None:
        records = list(reversed(small_catalog()))
        job = run_import(session, world, "studio_a", jsonl(records))
        assert job.status == "succeeded", job.errors
        episode = session.scalars(select(Title).filter_by(external_id="e1")).one()
        series = session.scalars(select(Title).filter_by(external_id="ser")).one()
        assert episode.root_id == series.id
        assert count(session, Credit) == 1

    def test_a_parent_of_the_wrong_kind_is_refused(self, session: Session, world: World) -> None:
        create_title(
            session, principal_of(world, "studio_a"), external_id="old", kind="film", name="Old"
        )
        records = [
            film("f"),
            {"type": "title", "external_id": "s", "kind": "season", "name": "S",
             "parent_external_id": "f"},
            {"type": "title", "external_id": "e", "kind": "episode", "name": "E",
             "parent_external_id": "old"},
            {"type": "title", "external_id": "x", "kind": "film", "name": "X",
             "parent_external_id": "f"},
            {"type": "title", "external_id": "y", "kind": "season", "name": "Y"},
        ]  # fmt: skip
        job = run_import(session, world, "studio_a", jsonl(records))
        assert [(e["row"], e["field"], e["message"]) for e in job.errors] == [
            (2, "parent_external_id", "the parent of a season is a series, and 'f' is a film"),
            (3, "parent_external_id",
             "the parent of a episode is a series or season, and 'old' is a film"),
            (4, "parent_external_id", "a film has no parent"),
            (5, "parent_external_id", "required: a season belongs to a parent title"),
        ]  # fmt: skip
        assert count(session, Title) == 1

    def test_kind_and_parent_are_fixed_once_created(self, session: Session, world: World) -> None:
        assert run_import(session, world, "studio_a", jsonl(small_catalog())).status == (
            "succeeded"
        )
        changed = [
            film("ser", kind="film"),
            {"type": "title", "external_id": "other", "kind": "series", "name": "Other"},
            {"type": "title", "external_id": "s1", "kind": "season", "name": "Season 1",
             "parent_external_id": "other"},
        ]  # fmt: skip
        job = run_import(session, world, "studio_a", jsonl(changed))
        assert [(e["row"], e["field"]) for e in job.errors] == [
            (1, "kind"),
            (3, "parent_external_id"),
        ]
        assert "fixed at creation" in job.errors[0]["message"]

    def test_a_duplicate_credit_is_reported(self, session: Session, world: World) -> None:
        credit = {"type": "credit", "title_external_id": "f", "talent_external_id": "p",
                  "role": "cast"}  # fmt: skip
        records = [film("f"), {"type": "talent", "external_id": "p", "name": "P"}, credit, credit]
        job = run_import(session, world, "studio_a", jsonl(records))
        assert job.errors == [
            {
                "row": 4,
                "field": "talent_external_id",
                "message": "duplicate credit: 'p' is already credited as cast on 'f' on row 3",
            }
        ]

    def test_csv_cells_are_read_by_column(self, session: Session, world: World) -> None:
        content = (
            b"type,external_id,kind,name,release_year,genres,title_external_id,territories,"
            b"start,end,permitted_uses,exclusive_available\n"
            b"title,f,film,Film,1999,drama|crime,,,,,,\n"
            b"rights,r,,,,,f,fr| US,2025-01-01,2026-01-01,train,yes\n"
            b"rights,r2,,,,,f,WW,2025-01-01,2026-01-01,train,maybe\n"
            b'title,g,film,"Two\nlines",abc,,,,,,,\n'
            b"title,h,film,H,,,,,,,,,extra\n"
        )
        job = run_import(session, world, "studio_a", content, filename="c.csv")
        assert job.format == "csv"
        assert [(e["row"], e["field"], e["message"]) for e in job.errors] == [
            (4, "exclusive_available", "must be true or false"),
            (5, "release_year", "must be an integer"),
            (7, None, "has 13 cells but the header has 12"),
        ]

    def test_errors_beyond_the_first_thousand_are_counted(
        self, session: Session, world: World
    ) -> None:
        records = [film(f"f{i}", kind="short") for i in range(1_200)]
        job = run_import(session, world, "studio_a", jsonl(records))
        assert len(job.errors) == 1_000 and job.summary["errors_total"] == 1_200
        assert job.errors[-1]["row"] == 1_000
        assert job.rows_ok == 0

    def test_an_empty_or_unreadable_csv_header_is_reported(
        self, session: Session, world: World
    ) -> None:
        job = run_import(session, world, "studio_a", b"name,type\nf,title\n", filename="x.csv")
        assert job.errors == [
            {"row": 1, "field": "type", "message": "the first column must be `type`"}
        ]
        job = run_import(session, world, "studio_a", b"type,colour\n", filename="x.csv")
        assert job.errors == [{"row": 1, "field": "colour", "message": "unknown column"}]


# --- idempotency and updates ------------------------------------------------------------------


class TestUpdates:
    def test_a_changed_row_is_updated_in_place(self, session: Session, world: World) -> None:
        records = small_catalog()
        first = run_import(session, world, "studio_a", jsonl(records))
        assert first.status == "succeeded"
        title_id = session.scalars(select(Title.id).filter_by(external_id="f1")).one()
        grant_id = session.scalars(select(RightsGrant.id).filter_by(external_id="f1-r")).one()

        records[3] = records[3] | {"name": "F1 (restored)", "genres": ["Noir"]}
        records[6] = records[6] | {"territories": ["DE"]}
        job = run_import(session, world, "studio_a", jsonl(records))
        assert job.status == "succeeded"
        assert job.summary["results"]["title"] == {"created": 0, "updated": 1, "unchanged": 3}
        assert job.summary["results"]["rights"] == {"created": 0, "updated": 1, "unchanged": 1}
        session.expire_all()
        title = session.get(Title, title_id)
        assert title is not None and (title.name, title.genres) == ("F1 (restored)", ["noir"])
        genres = session.scalars(select(TitleGenre.genre).filter_by(title_id=title_id)).all()
        assert genres == ["noir"]
        terms = session.execute(
            select(RightsTerm.territory, RightsTerm.use).filter_by(grant_id=grant_id)
        )
        assert set(terms) == {("DE", "train"), ("DE", "evaluate")}
        assert count(session, Title) == 4 and count(session, RightsGrant) == 2

    def test_an_omitted_optional_field_is_cleared(self, session: Session, world: World) -> None:
        run_import(
            session, world, "studio_a", jsonl([film("f", synopsis="Old", visibility="listed")])
        )
        run_import(session, world, "studio_a", jsonl([film("f")]))
        title = session.scalars(select(Title).execution_options(populate_existing=True)).one()
        assert (title.synopsis, title.visibility) == (None, "private")

    def test_a_new_checksum_drops_an_upload_in_parts_of_the_old_object(
        self, session: Session, world: World
    ) -> None:
        storage = InMemoryStorage("b")
        master = asset("m", "f", byte_size=6 * 1024**3)  # past one PUT: it goes up in parts
        run_import(session, world, "studio_a", jsonl([film("f"), master]))
        video = session.scalars(select(Asset)).one()
        studio = principal_of(world, "studio_a")
        sign_upload_parts(
            session, studio, video.id, [(1, "c" * 64)], storage=storage, ttl_seconds=60
        )
        assert video.upload_id in storage.uploads
        run_import(session, world, "studio_a", jsonl([film("f"), master]))  # unchanged
        assert session.scalars(select(Asset.upload_id)).one() == video.upload_id
        changed = master | {"sha256": "b" * 64}
        run_import(session, world, "studio_a", jsonl([film("f"), changed]))
        assert session.scalars(select(Asset.upload_id)).one() is None

    def test_a_new_checksum_sends_a_ready_asset_back_to_pending(
        self, session: Session, world: World
    ) -> None:
        storage = InMemoryStorage("b")
        records = [
            film("f"),
            asset("v", "f", byte_size=4, sha256=hashlib.sha256(b"abcd").hexdigest()),
        ]
        run_import(session, world, "studio_a", jsonl(records))
        video = session.scalars(select(Asset)).one()
        storage.put_bytes(video.storage_key, b"abcd")
        complete_asset(session, principal_of(world, "studio_a"), video.id, storage=storage)
        assert video.sha256_verified_at is not None
        title = session.scalars(select(Title)).one()
        assert (title.own_seconds, title.max_height) == (5400.0, 1080)

        same = run_import(session, world, "studio_a", jsonl(records))
        assert same.summary["results"]["asset"]["unchanged"] == 1
        assert session.scalars(select(Asset.status)).one() == "ready"

        records[1] = records[1] | {"sha256": hashlib.sha256(b"abce").hexdigest()}
        changed = run_import(session, world, "studio_a", jsonl(records))
        assert changed.summary["results"]["asset"]["updated"] == 1
        video = session.scalars(select(Asset).execution_options(populate_existing=True)).one()
        assert (video.status, video.ready_at, video.sha256_verified_at) == ("pending", None, None)
        title = session.scalars(select(Title).execution_options(populate_existing=True)).one()
        # Its runtime came from the asset that is no longer verified.
        assert (title.own_seconds, title.content_seconds, title.max_height) == (0.0, 0.0, None)

    def test_a_title_created_through_the_api_is_updated_not_duplicated(
        self, session: Session, world: World
    ) -> None:
        made = create_title(
            session, principal_of(world, "studio_a"), external_id="f1", kind="film", name="Old"
        )
        job = run_import(session, world, "studio_a", jsonl([film("f1", name="New")]))
        assert job.summary["results"]["title"] == {"created": 0, "updated": 1, "unchanged": 0}
        assert session.scalars(select(Title.id)).all() == [made.id]

    def test_a_studio_with_a_catalog_looks_up_nothing_for_new_records(
        self, session: Session, world: World, monkeypatch: Any
    ) -> None:
        # Issue 16: the lookups of the second pass depended on the studio having any record of
        # a type, not on the file's keys; on PostgreSQL all new records then also left the fast
        # path (TestStreamingWrites).
        import catalog.imports.apply
        import catalog.imports.check

        monkeypatch.setattr(catalog.imports.check, "SPILL_BATCH", 7)  # several batches
        content = io.StringIO()
        write_jsonl(generate_catalog(25, seed=3), content)
        statements: list[str] = []
        execute = catalog.imports.apply.Apply._execute

        def counted(self: Any, stmt: Any) -> Any:
            statements.append(str(stmt).split(" WHERE")[0])
            return execute(self, stmt)

        monkeypatch.setattr(catalog.imports.apply.Apply, "_execute", counted)
        empty = run_import(session, world, "studio_b", content.getvalue().encode())
        into_empty = list(statements)
        give_a_catalog(session, world, "studio_a")
        statements.clear()
        job = run_import(session, world, "studio_a", content.getvalue().encode())
        assert job.summary == empty.summary
        assert statements == into_empty

    def test_imported_rows_are_stored_as_the_services_store_them(
        self, session: Session, world: World
    ) -> None:
        create_title(
            session, principal_of(world, "studio_a"), external_id="api", kind="film", name="A"
        )
        run_import(session, world, "studio_a", jsonl([film("imported")]))
        raw = dict(
            session.execute(text("SELECT external_id, CAST(created_at AS TEXT) FROM titles")).all()
        )
        # The same textual form on each database: on SQLite naive UTC text (sqlite3 would
        # append "+00:00" to a datetime handed to it as is), on PostgreSQL a timestamptz.
        stamp = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d{1,6})?(.*)")
        forms = [stamp.fullmatch(raw[name]) for name in ("api", "imported")]
        assert forms[0] is not None and forms[1] is not None, raw
        assert forms[0].group(1) == forms[1].group(1)
        title = session.scalars(select(Title).filter_by(external_id="imported")).one()
        assert title.created_at.tzinfo is not None and title.genres == ["drama"]

    def test_one_audit_event_per_import(self, session: Session, world: World) -> None:
        run_import(session, world, "studio_a", jsonl(small_catalog()))
        run_import(session, world, "studio_a", jsonl([film("f", kind="x")]))
        events = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
        assert [e.action for e in events] == ["catalog.import.succeeded", "catalog.import.failed"]
        assert events[0].data["created"]["title"] == 4
        assert events[0].data["rows_total"] == 11 and events[1].data["errors"] == 1


# --- the command line -------------------------------------------------------------------------


class TestCommands:
    def test_generate_is_deterministic(self, tmp_path: Any) -> None:
        runner = CliRunner()
        first = runner.invoke(main, ["catalog", "generate", "--titles", "20", "--seed", "5"])
        again = runner.invoke(main, ["catalog", "generate", "--titles", "20", "--seed", "5"])
        other = runner.invoke(main, ["catalog", "generate", "--titles", "20", "--seed", "6"])
        assert first.exit_code == 0 and first.output == again.output
        assert first.output != other.output
        records = [json.loads(line) for line in first.output.splitlines()]
        assert sum(r["type"] == "title" for r in records) == 20
        out = tmp_path / "c.jsonl"
        written = runner.invoke(
            main, ["catalog", "generate", "--titles", "20", "--seed", "5", "--output", str(out)]
        )
        assert written.exit_code == 0 and out.read_text() == first.output

    @pytest.mark.committing
    def test_import_commits_a_good_file_and_refuses_a_bad_one(
        self, committing_engine: Engine, database_url: str, monkeypatch: Any, tmp_path: Any
    ) -> None:
        from marketplace.accounts.models import Organization

        monkeypatch.setenv("DATABASE_URL", database_url)
        with Session(committing_engine) as session:
            org = Organization(name="Studio", kind="studio")
            session.add(org)
            session.commit()
            studio_id = org.id
        good = tmp_path / "good.jsonl"
        runner = CliRunner()
        runner.invoke(main, ["catalog", "generate", "--titles", "30", "--output", str(good)])
        result = runner.invoke(main, ["catalog", "import", str(good), "--studio", studio_id])
        assert result.exit_code == 0, result.output
        assert "succeeded" in result.output
        with Session(committing_engine) as session:
            assert count(session, Title, studio_id=studio_id) == 30
            assets = count(session, Asset, studio_id=studio_id)

        bad = tmp_path / "bad.csv"
        bad.write_bytes(as_csv([film("new"), film("x", release_year=1500)]))
        result = runner.invoke(main, ["catalog", "import", str(bad), "--studio", studio_id])
        assert result.exit_code == 1
        assert "row 3, release_year: must be between 1870 and 2100" in result.output
        again = runner.invoke(main, ["catalog", "import", str(good), "--studio", studio_id])
        assert again.exit_code == 0 and "0 created" in again.output
        with Session(committing_engine) as session:
            assert count(session, Title, studio_id=studio_id) == 30
            assert count(session, Title, external_id="new") == 0
            assert count(session, Asset, studio_id=studio_id) == assets
            # Only the two successful imports left a report.
            assert count(session, ImportJob, studio_id=studio_id) == 2

    def test_import_refuses_an_organization_that_is_not_a_studio(
        self, session: Session, world: World
    ) -> None:
        from marketplace.core.errors import ValidationFailed

        with pytest.raises(ValidationFailed):
            import_catalog(
                session, None, io.BytesIO(jsonl([film("f")])), studio_id=world["developer_x"].org_id
            )


# --- demo seeding -----------------------------------------------------------------------------


class TestDemoCatalog:
    def test_each_demo_studio_gets_a_catalog_with_ready_videos_and_a_rerun_changes_nothing(
        self, session: Session
    ) -> None:
        from marketplace.dev.demo import seed_demo_accounts, seed_demo_catalog

        storage = InMemoryStorage("demo")
        accounts = seed_demo_accounts(session, secret_key="demo-secret-key-0123456789abcdefghij")
        studios = [a.organization_id for a in accounts if a.account.kind == "studio"]
        jobs = seed_demo_catalog(session, storage, accounts, titles=12, ready_videos=3)
        assert set(jobs) == set(studios) and len(studios) == 2
        before = {studio: snapshot(session, studio) for studio in studios}
        for studio in studios:
            assert len(before[studio]["titles"]) == 12
            ready = session.scalars(
                select(Asset).where(Asset.studio_id == studio, Asset.status == "ready")
            ).all()
            assert len(ready) == 3 and all(a.kind == "video" for a in ready)
            # The objects are really in the store, as declared.
            for item in ready:
                info = storage.head(item.storage_key)
                assert info is not None and info.byte_size == item.byte_size
            hours = session.scalars(
                select(Title.content_seconds).where(Title.id.in_([a.title_id for a in ready]))
            ).all()
            assert all(seconds > 0 for seconds in hours)

        again = seed_demo_catalog(session, storage, accounts, titles=12, ready_videos=3)
        assert {studio: snapshot(session, studio) for studio in studios} == before
        assert all(job.summary["results"]["title"]["created"] == 0 for job in again.values())

    @pytest.mark.servers
    def test_demo_videos_are_uploaded_to_a_real_store(
        self, session: Session, s3_storage: Any
    ) -> None:
        from marketplace.dev.demo import seed_demo_accounts, seed_demo_catalog

        accounts = seed_demo_accounts(session, secret_key="demo-secret-key-0123456789abcdefghij")
        seed_demo_catalog(session, s3_storage, accounts, titles=5, ready_videos=2)
        ready = session.scalars(select(Asset).where(Asset.status == "ready")).all()
        assert len(ready) == 4
        for item in ready:
            info = s3_storage.head(item.storage_key)
            assert info is not None
            assert (info.byte_size, info.sha256_hex) == (item.byte_size, item.sha256)


class TestPostgresqlIndexesAfterTheImport:
    def test_a_large_import_refreshes_postgresql_statistics(
        self, session: Session, world: World, dialect: str, monkeypatch: Any
    ) -> None:
        import catalog.imports.apply

        # Small numbers stand in for a large catalog.
        monkeypatch.setattr(catalog.imports.apply, "ANALYZE_AFTER_ROWS", 3)
        records = [film("f"), *(asset(f"a{i}", "f") for i in range(5))]
        job = run_import(session, world, "studio_a", jsonl(records))
        assert job.status == "succeeded"
        if dialect != "postgresql":
            return  # SQLite plans these lookups by its indexes alone
        reltuples = session.scalar(text("SELECT reltuples FROM pg_class WHERE relname = 'assets'"))
        assert reltuples == 5

    def test_an_import_leaves_nothing_pending_in_the_search_index(
        self, session: Session, world: World, dialect: str
    ) -> None:
        from catalog.search.index import settle_title_index

        if dialect != "postgresql":
            pytest.skip("PostgreSQL's GIN pending list (migration 0011)")
        job = run_import(
            session,
            world,
            "studio_a",
            jsonl([film(f"f{i}", visibility="listed") for i in range(2)]),
        )
        assert job.status == "succeeded"
        # Had the import not merged them, the listed titles' entries would still be pending in
        # both GIN indexes here.
        assert settle_title_index(session) == 0


@pytest.mark.postgres
class TestStreamingWrites:
    """On PostgreSQL new records are written while the file is checked (catalog.imports.stream)."""

    @pytest.fixture(autouse=True)
    def _small_batches(self, dialect: str, monkeypatch: Any) -> None:
        import catalog.imports.stream

        if dialect != "postgresql":
            pytest.skip("PostgreSQL's COPY from a thread")
        # Small numbers stand in for a large file: several batches are sent during the check.
        monkeypatch.setattr(catalog.imports.stream, "BATCH_ROWS", 2)

    @staticmethod
    def _rows_streamed(monkeypatch: Any) -> list[int]:
        from catalog.imports.write import CopyThread

        sent: list[int] = []
        put = CopyThread.put

        def counting(self: CopyThread, table: Any, columns: Any, rows: list[Any]) -> None:
            sent.append(len(rows))
            put(self, table, columns, rows)

        monkeypatch.setattr(CopyThread, "put", counting)
        return sent

    def test_streamed_and_second_pass_writes_build_the_same_catalog(
        self, session: Session, world: World, monkeypatch: Any
    ) -> None:
        import catalog.imports.service

        content = io.StringIO()
        write_jsonl(generate_catalog(25, seed=3), content)
        sent = self._rows_streamed(monkeypatch)
        streamed = run_import(session, world, "studio_a", content.getvalue().encode())
        assert streamed.status == "succeeded" and sum(sent) > 25

        @contextlib.contextmanager
        def no_stream(*args: Any) -> Iterator[None]:
            yield None

        monkeypatch.setattr(catalog.imports.service, "_streaming", no_stream)
        applied = run_import(session, world, "studio_b", content.getvalue().encode())
        assert applied.summary == streamed.summary

        def shape(studio_id: str) -> dict[str, set[tuple[Any, ...]]]:
            # The catalog without its ids (which differ), references by external id.
            ids = {
                t.id: t.external_id
                for t in session.scalars(select(Title).filter_by(studio_id=studio_id))
            }
            talent = {
                t.id: t.external_id
                for t in session.scalars(select(Talent).filter_by(studio_id=studio_id))
            }
            credits = session.execute(
                select(Credit.title_id, Credit.talent_id, Credit.role).where(
                    Credit.title_id.in_(ids)
                )
            )
            return {
                "titles": {
                    (t.external_id, t.kind, ids.get(t.parent_id), ids.get(t.root_id), t.name,
                     tuple(t.genres), t.visibility, t.release_year)
                    for t in session.scalars(select(Title).filter_by(studio_id=studio_id))
                },
                "genres": set(
                    session.execute(
                        select(Title.external_id, TitleGenre.genre).join(
                            Title, Title.id == TitleGenre.title_id
                        ).where(Title.studio_id == studio_id)
                    )
                ),
                "assets": {
                    (a.external_id, ids[a.title_id], a.kind, a.storage_key.rsplit("/", 1)[-1],
                     a.byte_size, a.sha256, a.status, a.duration_seconds, a.language)
                    for a in session.scalars(select(Asset).filter_by(studio_id=studio_id))
                },
                "grants": {
                    (g.external_id, ids[g.title_id], tuple(g.territories), g.start, g.end,
                     tuple(g.permitted_uses), g.exclusive_available)
                    for g in session.scalars(select(RightsGrant).filter_by(studio_id=studio_id))
                },
                "terms": set(
                    session.execute(
                        select(RightsGrant.external_id, RightsTerm.territory, RightsTerm.use)
                        .join(RightsGrant, RightsGrant.id == RightsTerm.grant_id)
                        .where(RightsGrant.studio_id == studio_id)
                    )
                ),
                "talent": {
                    (t.external_id, t.name, json.dumps(t.external_ids, sort_keys=True))
                    for t in session.scalars(select(Talent).filter_by(studio_id=studio_id))
                },
                "credits": {(ids[t], talent[p], r) for t, p, r in credits},
                "consents": {
                    (c.external_id, talent[c.talent_id], tuple(c.attributes), c.start, c.end)
                    for c in session.scalars(select(Consent).filter_by(studio_id=studio_id))
                },
            }  # fmt: skip

        a, b = shape(world["studio_a"].org_id), shape(world["studio_b"].org_id)
        assert a == b and all(a.values())
        # And the streamed catalog is one a re-import finds unchanged.
        again = run_import(session, world, "studio_a", content.getvalue().encode())
        assert all(counts["created"] == counts["updated"] == 0 for counts in
                   again.summary["results"].values())  # fmt: skip

    def test_records_made_through_the_api_leave_every_new_record_on_the_fast_path(
        self, session: Session, world: World, monkeypatch: Any
    ) -> None:
        # Issue 16: one asset and one grant made through the API sent every asset and grant of
        # the next import to the second pass, whose lookups grew with the rows before them.
        import catalog.imports.apply

        content = io.StringIO()
        write_jsonl(generate_catalog(25, seed=3), content)
        give_a_catalog(session, world, "studio_a")
        second_pass: list[tuple[str, int]] = []
        lookup = catalog.imports.apply.Apply._stored_by_external_id

        def spied(self: Any, kind: str, table: Any, fields: Any, batch: list[Any]) -> Any:
            second_pass.append((kind, len(batch)))
            return lookup(self, kind, table, fields, batch)

        monkeypatch.setattr(catalog.imports.apply.Apply, "_stored_by_external_id", spied)
        sent = self._rows_streamed(monkeypatch)
        job = run_import(session, world, "studio_a", content.getvalue().encode())
        assert job.status == "succeeded"
        assert second_pass == []  # no asset, grant or consent was left for the second pass
        streamed = sum(sent)
        # The same file into an empty studio streams the same rows.
        sent.clear()
        empty = run_import(session, world, "studio_b", content.getvalue().encode())
        assert empty.summary == job.summary and sum(sent) == streamed
        assert all(counts["created"] == sum(counts.values()) for counts in
                   job.summary["results"].values())  # fmt: skip
        # And an existing key in a file still updates its record (the second pass looks it up).
        again = run_import(
            session, world, "studio_a",
            jsonl([film("api-f", name="Made"), asset("api\\v", "api-f", byte_size=5)]),
        )  # fmt: skip
        assert again.summary["results"]["asset"] == {"created": 0, "updated": 1, "unchanged": 0}
        assert second_pass == [("asset", 1)]

    def test_rows_written_before_a_bad_row_is_found_are_rolled_back(
        self, session: Session, world: World, monkeypatch: Any
    ) -> None:
        sent = self._rows_streamed(monkeypatch)
        records: list[Any] = [film(f"f{i}") for i in range(10)]
        records += [asset(f"a{i}", f"f{i}") for i in range(10)]
        records += [asset("a3", "f4")]  # a repeated key: the COPY fails before the check sees it
        records += [film(f"g{i}") for i in range(10)]
        records += [film("late", release_year=1500)]
        job = run_import(session, world, "studio_a", jsonl(records))
        assert sum(sent) > 10
        assert job.status == "failed"
        assert [(e["row"], e["field"]) for e in job.errors] == [
            (21, "external_id"),
            (32, "release_year"),
        ]
        assert count(session, Title) == 0 and count(session, Asset) == 0
        assert count(session, TitleGenre) == 0
        # The report and its audit event are kept, in a transaction still usable.
        assert count(session, ImportJob) == 1
        assert session.scalars(select(AuditEvent.action)).all() == ["catalog.import.failed"]
        assert run_import(session, world, "studio_a", jsonl(records[:10])).status == "succeeded"
        assert count(session, Title) == 10

    def test_a_title_written_meanwhile_by_someone_else_is_a_conflict(
        self, session: Session, world: World, monkeypatch: Any
    ) -> None:
        import catalog.imports.service
        from marketplace.core.errors import Conflict

        create_title(
            session, principal_of(world, "studio_a"), external_id="f1", kind="film", name="Old"
        )
        # As if the title had been created after the importer read the catalog.
        monkeypatch.setattr(catalog.imports.service, "_existing_titles", lambda *args: {})
        with pytest.raises(Conflict, match="catalog changed"):
            run_import(session, world, "studio_a", jsonl([film("f0"), film("f1")]))
        assert session.scalars(select(Title.name)).all() == ["Old"]


class TestBulkWrites:
    """The second pass writes in bulk (catalog.imports.write): COPY, or multi-row INSERTs."""

    @pytest.mark.parametrize("by", ["rows", "columns"])
    def test_sqlite_takes_whole_statements_then_the_rest(self, monkeypatch: Any, by: str) -> None:
        import catalog.imports.write
        from catalog.imports.write import SqliteInserter

        monkeypatch.setattr(catalog.imports.write, "SQLITE_ROWS_PER_STATEMENT", 3)
        dbapi = sqlite3.connect(":memory:")
        dbapi.execute("CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT, c REAL, d TEXT)")
        statements: list[str] = []
        dbapi.set_trace_callback(statements.append)
        names = ("a", "b", "c", "d")

        def write(rows: list[tuple[Any, ...]]) -> None:
            statements.clear()
            inserter = SqliteInserter(dbapi)  # reads the limit on bound parameters
            if by == "rows":
                inserter.insert("t", names, rows)
            else:
                columns: list[Any] = [[row[i] for row in rows] for i in range(len(names))]
                inserter.insert_columns("t", names, columns)

        rows = [(i, f"b{i}", i / 2, None) for i in range(8)]
        write(rows)
        assert dbapi.execute("SELECT * FROM t ORDER BY a").fetchall() == rows
        assert _rows_per_insert(statements) == [3, 3, 1, 1]
        # Fewer rows a statement when the columns would pass the limit on bound parameters.
        dbapi.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 9)
        write([(i, "x", 0.0, "y") for i in range(8, 13)])
        assert _rows_per_insert(statements) == [2, 2, 1]
        assert dbapi.execute("SELECT count(*) FROM t").fetchone() == (13,)
        write([])
        assert statements == []
        dbapi.close()

    def test_a_catalog_written_in_statements_of_a_few_rows_is_the_same(
        self, session: Session, world: World, monkeypatch: Any
    ) -> None:
        import catalog.imports.write

        content = io.StringIO()
        write_jsonl(generate_catalog(8, seed=5), content)
        first = run_import(session, world, "studio_a", content.getvalue().encode())
        monkeypatch.setattr(catalog.imports.write, "SQLITE_ROWS_PER_STATEMENT", 3)
        again = run_import(session, world, "studio_b", content.getvalue().encode())
        assert first.status == again.status == "succeeded"
        assert first.summary == again.summary
        # Same rows but for their ids: compare what does not name one.
        a, b = (
            snapshot(session, world["studio_a"].org_id),
            snapshot(session, world["studio_b"].org_id),
        )
        assert {name: len(rows) for name, rows in a.items()} == {
            name: len(rows) for name, rows in b.items()
        }
        names = {(t[2], t[7], t[9]) for t in a["titles"]}  # external id, name, genres
        assert names == {(t[2], t[7], t[9]) for t in b["titles"]} and names

    def test_a_row_written_meanwhile_by_someone_else_is_a_conflict(
        self, session: Session, world: World, monkeypatch: Any
    ) -> None:
        import catalog.imports.service
        from marketplace.core.errors import Conflict

        create_title(
            session, principal_of(world, "studio_a"), external_id="f1", kind="film", name="Old"
        )
        # As if the title had been created after the importer read the catalog: the bulk write
        # itself (a DB-API error, not SQLAlchemy's) finds the key taken.
        monkeypatch.setattr(catalog.imports.service, "_existing_titles", lambda *args: {})
        # The caller's transaction (a savepoint here) is rolled back, as the routes' and CLI's are.
        with pytest.raises(Conflict, match="catalog changed"), session.begin_nested():
            run_import(session, world, "studio_a", jsonl([film("f0"), film("f1")]))
        assert session.scalars(select(Title.name)).all() == ["Old"]

    def test_new_assets_and_credits_by_column_are_the_rows_made_one_by_one(
        self, tmp_path: Any
    ) -> None:
        # A batch of which nothing is stored yet is built column by column (NewRows.*_columns):
        # the same rows, but for their new ids, as the record-by-record path builds.
        from catalog.imports.apply import ASSET_COLUMNS, CREDIT_COLUMNS, NewRows
        from catalog.imports.check import Check, Spill
        from catalog.imports.parse import read_records

        content = io.StringIO()
        write_jsonl(generate_catalog(6, seed=11), content)
        records = [
            *small_catalog(),
            asset("no-name", "f1", storage_key="x/.."),  # nothing left of it: no last segment
            # Sanitized to 120 characters that start with "_": sanitized again for the key.
            asset("long", "f1", filename="a" + "_" * 200 + "b.mp4"),
        ]
        check = Check({}, {}, Spill(tmp_path))
        check.feed(read_records(io.BytesIO(jsonl(records) + content.getvalue().encode()), "jsonl"))
        check.spill.close()
        assert not check.errors.total
        make = NewRows("org_x", check, "2026-01-01 00:00:00.000000")
        make.plan_ids()
        for stream, columns_of, one_by_one, names in (
            ("asset", make.asset_columns, make.asset, ASSET_COLUMNS),
            ("credit", make.credit_columns, lambda r: make.credit(*_credit_ids(make, r)),
             CREDIT_COLUMNS),
        ):  # fmt: skip
            batch = [record for spilled in check.spill.batches(stream) for record in spilled]
            by_column = columns_of(batch)
            assert [len(column) for column in by_column] == [len(batch)] * len(names)
            by_row = [one_by_one(record) for record in batch]
            for made, expected in zip(zip(*by_column, strict=True), by_row, strict=True):
                new_id, old_id = made[0], expected[0]
                assert new_id != old_id and new_id[:4] == old_id[:4]
                # The asset's id is part of its storage key.
                assert made[1:] == tuple(str(v).replace(old_id, new_id) if isinstance(v, str)
                                         else v for v in expected[1:])  # fmt: skip
            ids = list(by_column[0])
            assert ids == sorted(ids)

    def test_json_lists_are_remembered_within_a_bound(
        self, monkeypatch: Any, tmp_path: Any
    ) -> None:
        import catalog.imports.apply
        from catalog.imports.apply import NewRows
        from catalog.imports.check import Check, Spill
        from catalog.imports.write import json_text

        monkeypatch.setattr(catalog.imports.apply, "JSON_LISTS_KEPT", 3)
        make = NewRows("org_x", Check({}, {}, Spill(tmp_path)), "now")
        lists = [["WW"], ["FR", "US"], ['say "hi"', "café"], ["a\\b", "\n"], ["FR", "US"], []]
        for values in lists * 3:
            assert make.json_list(values) == json_text(values)
            assert len(make._json_lists) <= 3
        # Each import has its own: nothing is kept from one to the next.
        assert NewRows("org_x", Check({}, {}, Spill(tmp_path)), "now")._json_lists == {}

    def test_a_first_import_runs_no_collection_of_cycles_per_batch(
        self, session: Session, world: World, monkeypatch: Any
    ) -> None:
        import gc

        import catalog.imports.check

        # Small batches stand in for a large file.
        monkeypatch.setattr(catalog.imports.check, "SPILL_BATCH", 3)
        content = io.StringIO()
        write_jsonl(generate_catalog(4, seed=2), content)
        collections: list[int] = []
        monkeypatch.setattr(gc, "collect", lambda generation=2: collections.append(generation))
        first = run_import(session, world, "studio_a", content.getvalue().encode())
        assert first.status == "succeeded" and collections == []
        # A re-import runs lookups in each batch, whose cycles are collected young.
        run_import(session, world, "studio_a", content.getvalue().encode())
        assert collections and set(collections) == {0}


class TestKeyFilter:
    @pytest.mark.parametrize("exact", [True, False])
    def test_a_known_key_is_always_found_and_a_new_one_rarely(
        self, monkeypatch: Any, exact: bool
    ) -> None:
        import catalog.imports.check
        from catalog.imports.check import KeyFilter

        if not exact:
            monkeypatch.setattr(catalog.imports.check, "EXACT_KEYS", 0)  # the Bloom filter
        known = [f"s7-t{i:07d}-a{i % 10:02d}" for i in range(50_000)]
        keys = KeyFilter.of(known)
        assert keys.count == len(known)
        assert all(key in keys for key in known)
        taken = sum(f"s8-t{i:07d}-a{i % 10:02d}" in keys for i in range(50_000))
        assert taken == 0 if exact else taken < 50_000 / 64
        assert "anything" not in KeyFilter.of([])


def _credit_ids(make: Any, record: Any) -> tuple[str, str, str]:
    _, title, talent, role = record
    return make.title_ids[title], make.talent_ids[talent], role


def _rows_per_insert(statements: list[str]) -> list[int]:
    # The trace shows each statement with its values: `... VALUES (0, 'b0', 0.0, NULL), (1, ...`.
    return [s.count("), (") + 1 for s in statements if s.startswith("INSERT")]
