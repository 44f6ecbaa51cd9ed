"""JSON bodies the API does not accept: nesting, numbers and strings nothing could store.

Each was a 500 (RecursionError, Python's int-from-text limit, a lone surrogate the database
driver cannot encode, an integer past the column); each is now a problem document naming the
field, and nothing is written. The suite runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog.models import Asset, Talent, Title
from marketplace.audit.models import AuditEvent
from marketplace.brokering.models import LicenseRequest, Offer
from marketplace.core import json_input
from marketplace.core.money import CHARGE_LIMIT_MESSAGE, MAX_CHARGE_MINOR_UNITS
from tests.deals import cleared_title, offer_body, post, request_body
from tests.helpers import problem
from tests.world import World

API = "/api/v1"
BIGINT_MAX = 2**63 - 1
TITLE = {"external_id": "t-1", "kind": "film", "name": "The Long Harbour"}
CLEARANCE = {
    "title_ids": ["ttl_x"],
    "uses": ["train"],
    "territories": ["US"],
    "start": "2026-01-01",
    "end": "2026-12-31",
}


def count(session: Session, model: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def send(client: Any, path: str, headers: dict[str, str], raw: str | bytes) -> Any:
    return client.post(f"{API}{path}", data=raw, content_type="application/json", headers=headers)


def with_value(body: dict[str, Any], field: str, literal: str) -> str:
    """`body` as JSON text with `field`'s value replaced by a literal no json.dumps writes."""
    return json.dumps({**body, field: "@@"}).replace('"@@"', literal)


class TestRefusedJSON:
    @pytest.mark.parametrize(
        ("path", "body", "field"),
        [
            ("/titles", TITLE, "name"),
            ("/talent", {"name": "Ada Quill"}, "name"),
            ("/clearance", CLEARANCE, "title_ids.0"),
        ],
    )
    def test_a_lone_surrogate_is_400_naming_the_field(
        self, client: Any, session: Session, world: World, path: str, body: Any, field: str
    ) -> None:
        head, _, index = field.partition(".")
        value = '["\\ud800"]' if index else '"x \\ud800 y"'
        before = count(session, AuditEvent)
        response = send(client, path, world["studio_a"].headers, with_value(body, head, value))
        refused = problem(response, 400, "bad_request")
        message = "a string holds a lone surrogate (\\ud800), which is not Unicode text"
        assert refused["errors"] == {field: [message]}
        assert field in refused["detail"]
        assert count(session, Title) == count(session, Talent) == 0
        assert count(session, AuditEvent) == before

    def test_a_lone_surrogate_in_a_member_name_names_its_object(
        self, client: Any, session: Session, world: World
    ) -> None:
        raw = json.dumps({"name": "Ada Quill", "external_ids": {"@@": "nm1"}})
        raw = raw.replace("@@", "\\udc00")
        response = send(client, "/talent", world["studio_a"].headers, raw)
        refused = problem(response, 400, "bad_request")
        assert list(refused["errors"]) == ["external_ids"]
        assert "member name" in refused["errors"]["external_ids"][0]
        assert count(session, Talent) == 0

    def test_a_surrogate_pair_is_one_character_and_is_kept(
        self, client: Any, session: Session, world: World
    ) -> None:
        raw = with_value(TITLE, "name", '"Clapper \\ud83c\\udfac"')
        response = send(client, "/titles", world["studio_a"].headers, raw)
        assert response.status_code == 201, response.get_data(as_text=True)
        assert session.scalars(select(Title.name)).one() == "Clapper \U0001f3ac"

    def test_an_integer_of_5000_digits_is_400_naming_the_field(
        self, client: Any, session: Session, world: World
    ) -> None:
        raw = with_value(TITLE, "release_year", "1" * 5000)
        response = send(client, "/titles", world["studio_a"].headers, raw)
        refused = problem(response, 400, "bad_request")
        digits = json_input.MAX_INTEGER_DIGITS
        assert refused["errors"] == {"release_year": [f"an integer of more than {digits} digits"]}
        assert count(session, Title) == 0

    @pytest.mark.parametrize(
        ("literal", "message"),
        [
            ("NaN", "NaN is not a JSON number"),
            ("-Infinity", "-Infinity is not a JSON number"),
            ("1e400", "a number too large for a double"),
        ],
    )
    def test_numbers_that_are_not_finite_are_400_naming_the_field(
        self, client: Any, session: Session, world: World, literal: str, message: str
    ) -> None:
        raw = with_value(TITLE, "release_year", literal)
        response = send(client, "/titles", world["studio_a"].headers, raw)
        assert problem(response, 400, "bad_request")["errors"] == {"release_year": [message]}
        assert count(session, Title) == 0

    def test_a_body_nested_100_000_deep_is_400(
        self, app: Any, client: Any, session: Session, world: World
    ) -> None:
        # The production limit on a body (1 MiB) rather than the tests' 64 KiB.
        app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024
        for raw in ("[" * 100_000, "[" * 100_000 + "]" * 100_000):
            response = send(client, "/titles", world["studio_a"].headers, raw)
            refused = problem(response, 400, "bad_request")
            depth = json_input.MAX_DEPTH
            assert refused["errors"] == {"_schema": [f"nested deeper than {depth} levels"]}
        assert count(session, Title) == 0

    def test_nesting_past_the_limit_in_a_field_names_it(
        self, client: Any, session: Session, world: World
    ) -> None:
        depth = json_input.MAX_DEPTH
        # The body is one level; genres a second: the innermost list is one too many.
        raw = with_value(TITLE, "genres", "[" * depth + "]" * depth)
        response = send(client, "/titles", world["studio_a"].headers, raw)
        refused = problem(response, 400, "bad_request")
        assert refused["errors"] == {
            "genres" + ".0" * (depth - 1): [f"nested deeper than {depth} levels"]
        }
        # One level less is read, and refused by the schema as any wrong type is.
        raw = with_value(TITLE, "genres", "[" * (depth - 1) + "]" * (depth - 1))
        response = send(client, "/titles", world["studio_a"].headers, raw)
        assert "genres.0" in problem(response, 422, "validation_error")["errors"]
        assert count(session, Title) == 0


class TestIntegersWithinTheirColumns:
    def _request(self, client: Any, session: Session, world: World) -> tuple[str, str]:
        title = cleared_title(session, world["studio_a"].org_id)
        request = post(client, f"{API}/license-requests", world["developer_x"].headers,
                       request_body([title.id]))  # fmt: skip
        return title.id, request["id"]

    @pytest.mark.parametrize(
        ("pricing", "message"),
        [
            # Past the column, and far past what one payment can carry (core.money).
            ({"model": "flat", "amount_cents": 2**63}, CHARGE_LIMIT_MESSAGE),
            ({"model": "flat", "amount_cents": 2**64 + 1}, CHARGE_LIMIT_MESSAGE),
            ({"model": "flat", "amount_cents": 10.5}, "Not a valid integer."),
            ({"model": "flat", "amount_cents": 1000.0}, "Not a valid integer."),
            # Within the limit alone, but not once multiplied by the titles' two hours.
            ({"model": "per_hour", "amount_cents": MAX_CHARGE_MINOR_UNITS}, CHARGE_LIMIT_MESSAGE),
        ],
    )
    def test_an_offer_amount_past_the_column_or_not_whole_is_422(
        self, client: Any, session: Session, world: World, pricing: Any, message: str
    ) -> None:
        title_id, request_id = self._request(client, session, world)
        before = count(session, AuditEvent)
        body = offer_body([title_id], pricing={**pricing, "currency": "usd"})
        response = client.post(
            f"{API}/license-requests/{request_id}/offers",
            json=body,
            headers=world["studio_a"].headers,
        )
        refused = problem(response, 422, "validation_error")
        assert list(refused["errors"]) == ["pricing.amount_cents"]
        assert message in refused["errors"]["pricing.amount_cents"][0]
        assert count(session, Offer) == 0
        assert count(session, AuditEvent) == before

    @pytest.mark.parametrize(
        "quota", [{"bytes": 10.5, "downloads": 1}, {"bytes": 1, "downloads": 1.5}]
    )
    def test_a_quota_not_whole_is_422(
        self, client: Any, session: Session, world: World, quota: dict[str, Any]
    ) -> None:
        title_id, request_id = self._request(client, session, world)
        response = client.post(
            f"{API}/license-requests/{request_id}/offers",
            json=offer_body([title_id], quota=quota),
            headers=world["studio_a"].headers,
        )
        refused = problem(response, 422, "validation_error")
        assert refused["errors"] == {
            f"quota.{name}": ["Not a valid integer."] for name, v in quota.items() if v != 1
        }
        assert count(session, Offer) == 0

    @pytest.mark.parametrize(
        ("field", "value"),
        [("budget_cents", 2**63), ("budget_cents", 99.5), ("criteria", {"min_height": 720.5})],
    )
    def test_a_request_budget_past_the_column_or_not_whole_is_422(
        self, client: Any, session: Session, world: World, field: str, value: Any
    ) -> None:
        body = request_body(["ttl_x"], **{field: value})
        response = client.post(
            f"{API}/license-requests", json=body, headers=world["developer_x"].headers
        )
        refused = problem(response, 422, "validation_error")
        assert set(refused["errors"]) <= {"budget_cents", "criteria.min_height"}
        assert count(session, LicenseRequest) == 0

    @pytest.mark.parametrize("field", ["width", "height"])
    def test_an_asset_dimension_past_its_column_is_422(
        self, client: Any, session: Session, world: World, field: str
    ) -> None:
        title = cleared_title(session, world["studio_a"].org_id)
        assets = count(session, Asset)
        body = {
            "kind": "video",
            "filename": "feature.mp4",
            "byte_size": 1000,
            "sha256": "b" * 64,
            field: 2**63,
        }
        response = client.post(
            f"{API}/titles/{title.id}/assets", json=body, headers=world["studio_a"].headers
        )
        assert list(problem(response, 422, "validation_error")["errors"]) == [field]
        assert count(session, Asset) == assets
