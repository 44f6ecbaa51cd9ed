"""Import lines the catalog cannot hold: reported with their row and field, never a crash.

A JSON Lines line nested thousands deep, with an integer of thousands of digits or with a lone
surrogate was a RecursionError, a ValueError or a database encoding error; the report now names
each line and its field, and a failed import writes nothing (SQLite and PostgreSQL alike).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.orm import Session

from catalog.models import Asset, Talent, Title
from marketplace.core import json_input
from tests.catalog.test_imports import as_csv, asset, count, film, jsonl, post, run_import
from tests.world import World

SURROGATE = "a string holds a lone surrogate (\\ud800), which is not Unicode text"
MEMBER_NAME = "a member name holds a lone surrogate (\\udc00), which is not Unicode text"


def line(record: dict[str, Any], field: str, literal: str) -> bytes:
    """One JSON line whose `field` holds a literal no json.dumps writes."""
    return json.dumps({**record, field: "@@"}).replace('"@@"', literal).encode() + b"\n"


def talent(external_id: str, **fields: Any) -> dict[str, Any]:
    return {"type": "talent", "external_id": external_id, "name": external_id} | fields


class TestUnreadableLines:
    def test_each_line_is_reported_with_its_field_and_nothing_is_written(
        self, session: Session, world: World
    ) -> None:
        content = b"".join(
            [
                jsonl([film("f1"), asset("a1", "f1")]),  # rows 1, 2: fine
                line(film("f3"), "name", '"\\ud800 lone"'),  # 3
                line(asset("a4", "f1"), "byte_size", "9" * 5000),  # 4
                b"[" * 100_000 + b"\n",  # 5
                line(talent("p6"), "external_ids", '{"imdb": "nm\\ud800"}'),  # 6
                line(talent("p7"), "external_ids", '{"\\udc00": "nm1"}'),  # 7
                json.dumps(talent("p8")).replace('"name"', '"\\udc00"').encode() + b"\n",  # 8
                line(film("f9"), "genres", "[" * 40 + "]" * 40),  # 9: orjson reads it
            ]
        )
        job = run_import(session, world, "studio_a", content)
        assert job.status == "failed"
        assert job.rows_total == 9
        digits, depth = json_input.MAX_INTEGER_DIGITS, json_input.MAX_DEPTH
        assert [(e["row"], e["field"], e["message"]) for e in job.errors] == [
            (3, "name", SURROGATE),
            (4, "byte_size", f"an integer of more than {digits} digits"),
            (5, None, f"nested deeper than {depth} levels"),
            (6, "external_ids", f"imdb: {SURROGATE}"),
            (7, "external_ids", MEMBER_NAME),
            (8, None, MEMBER_NAME),
            (9, "genres", "must be a list of strings"),
        ]
        assert count(session, Title) == count(session, Asset) == count(session, Talent) == 0

    def test_through_the_route_the_report_names_the_line(
        self, client: Any, session: Session, world: World
    ) -> None:
        content = jsonl([film("f1")]) + line(film("f2"), "name", '"\\ud800"')
        response = post(client, world["studio_a"].headers, content, "c.jsonl")
        assert response.status_code == 201, response.get_data(as_text=True)
        body = response.get_json()
        assert body["status"] == "failed"
        assert body["errors"] == [{"row": 2, "field": "name", "message": SURROGATE}]
        assert count(session, Title) == 0

    def test_a_csv_cannot_carry_a_surrogate(self, session: Session, world: World) -> None:
        # CSV is decoded as UTF-8, which refuses the bytes of an encoded surrogate (ED A0 80).
        content = as_csv([film("f1"), film("f2", name="@@")]).replace(b"@@", b"\xed\xa0\x80")
        job = run_import(session, world, "studio_a", content)
        assert job.status == "failed"
        # The row is where the decoder's chunk began (here the header), not the cell's own.
        assert [(e["field"], e["message"]) for e in job.errors] == [(None, "not UTF-8 text")]
        assert count(session, Title) == 0
