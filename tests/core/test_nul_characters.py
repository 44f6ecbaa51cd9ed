"""A NUL character (U+0000, JSON's `\\u0000`) in a string is refused where it arrives, naming
the field: PostgreSQL's text cannot hold it, so it was a 500 there (found by the fuzz run)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog.models import Title
from marketplace.accounts.models import Organization
from tests.catalog.test_imports import film, jsonl, post
from tests.helpers import problem
from tests.world import World


def test_a_nul_in_a_body_is_a_400_naming_the_field(
    client: Any, session: Session, world: World
) -> None:
    before = session.scalar(select(func.count()).select_from(Organization))
    response = client.post(
        "/api/v1/organizations",
        data='{"name": "North\\u0000light", "kind": "studio"}',
        content_type="application/json",
        headers=world["operator"].headers,
    )
    body = problem(response, 400, "bad_request")
    assert list(body["errors"]) == ["name"] and "NUL" in body["errors"]["name"][0]
    assert session.scalar(select(func.count()).select_from(Organization)) == before


def test_a_nul_in_an_import_line_fails_the_import_naming_the_row(
    client: Any, session: Session, world: World
) -> None:
    studio = world["studio_a"]
    content = (
        jsonl([film("ok-1")])
        + b'{"type": "title", "external_id": "n\\u0000", '
        + (b'"kind": "film", "name": "x", "original_language": "en", "release_year": 2001}\n')
    )
    report = post(client, studio.headers, content, "c.jsonl")
    assert report.status_code == 201
    body = report.get_json()
    assert body["status"] == "failed"
    assert [(e["row"], e["field"]) for e in body["errors"]] == [(2, "external_id")]
    session.expire_all()
    assert session.scalar(select(func.count()).where(Title.studio_id == studio.org_id)) == 0
