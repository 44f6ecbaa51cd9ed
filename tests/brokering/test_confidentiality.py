"""What negotiating tells the other party: never more than it may see (issue 12).

Each test builds two or more worlds that differ only in a hidden fact, drives the API as the
party that must not learn it, and compares the answers with ids replaced by their order of
appearance (tests.disclosure).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from catalog.models import Title
from marketplace.brokering.models import LicenseRequest
from marketplace.core.ids import new_id
from tests.catalog.factories import make_credit, make_talent
from tests.deals import cleared_title, offer_body, post, request_body
from tests.disclosure import normalized, scenario
from tests.world import World

CRITERIA = {"criteria": {"genres": ["drama"]}}


def _open_offer(client: Any, world: World, title_ids: list[str]) -> dict[str, Any]:
    """A criteria-only request of developer X, and studio A's offer of `title_ids` on it."""
    request = post(
        client,
        "/api/v1/license-requests",
        world["developer_x"].headers,
        request_body([], **CRITERIA),
    )
    return post(
        client,
        f"/api/v1/license-requests/{request['id']}/offers",
        world["studio_a"].headers,
        offer_body(title_ids),
    )


class TestCounterOffers:
    """A developer countering with a title learns nothing it could not learn from /clearance."""

    def test_an_unoffered_title_answers_alike_whoever_owns_it_and_whether_it_exists(
        self, client: Any, connection: Connection, world: World
    ) -> None:
        def anonymized_of(studio: str) -> Callable[[Session], str]:
            return lambda s: (
                cleared_title(s, world[studio].org_id, visibility="anonymized", name="Secret").id
            )

        def private_of_a(s: Session) -> str:
            return cleared_title(s, world["studio_a"].org_id, visibility="private").id

        def anonymized_of_a_with_uncredited_cast(s: Session) -> str:
            title = cleared_title(s, world["studio_a"].org_id, visibility="anonymized")
            talent = make_talent(s, world["studio_a"].org_id, name="Jae-won Novak")
            make_credit(s, title, talent, "cast")
            return title.id

        worlds: dict[str, Callable[[Session], str]] = {
            "anonymized, studio A's": anonymized_of("studio_a"),
            "anonymized, studio B's": anonymized_of("studio_b"),
            "private, studio A's": private_of_a,
            "anonymized, studio A's, cast without consent": anonymized_of_a_with_uncredited_cast,
            "no such title": lambda s: new_id("ttl"),
        }
        answers = {}
        for hidden, make in worlds.items():
            with scenario(connection) as session:
                offered = cleared_title(session, world["studio_a"].org_id)
                named = make(session)
                session.commit()
                offer = _open_offer(client, world, [offered.id])
                response = client.post(
                    f"/api/v1/offers/{offer['id']}/counter",
                    json={"title_ids": [named]},
                    headers=world["developer_x"].headers,
                )
                answers[hidden] = normalized(response)
        reference = answers.pop("no such title")
        assert reference["status"] == 422, reference
        for hidden, answer in answers.items():
            assert answer == reference, hidden

    def test_clearance_reasons_are_what_clearance_tells_the_developer(
        self, client: Any, session: Session, world: World
    ) -> None:
        title = cleared_title(session, world["studio_a"].org_id, visibility="anonymized")
        session.commit()
        offer = _open_offer(client, world, [title.id])
        # The cast credit arrives after the offer: countering and accepting are now refused.
        talent = make_talent(session, world["studio_a"].org_id, name="Jae-won Novak")
        make_credit(session, title, talent, "cast")
        session.commit()
        dev = world["developer_x"]
        terms = {k: offer[k] for k in ("title_ids", "uses", "territories", "start", "end")}
        clearance = client.post("/api/v1/clearance", json=terms, headers=dev.headers)
        assert clearance.status_code == 200, clearance.get_data(as_text=True)
        [blocked] = clearance.get_json()["blocked"]
        told = {blocked["title_id"]: blocked["reasons"]}

        counter = client.post(
            f"/api/v1/offers/{offer['id']}/counter",
            json={"pricing": {"model": "flat", "amount_cents": 1000, "currency": "usd"}},
            headers=dev.headers,
        )
        accept = client.post(f"/api/v1/offers/{offer['id']}/accept", headers=dev.headers)
        for response in (counter, accept):
            assert response.status_code == 422, response.get_data(as_text=True)
            body = response.get_json()
            assert body["code"] == "not_cleared"
            assert body["errors"] == told
            assert "Novak" not in response.get_data(as_text=True)
            assert talent.id not in response.get_data(as_text=True)

    def test_the_studio_still_reads_its_own_talent_in_the_reasons(
        self, client: Any, session: Session, world: World
    ) -> None:
        title = cleared_title(session, world["studio_a"].org_id, visibility="anonymized")
        talent = make_talent(session, world["studio_a"].org_id, name="Jae-won Novak")
        make_credit(session, title, talent, "cast")
        session.commit()
        request = post(
            client,
            "/api/v1/license-requests",
            world["developer_x"].headers,
            request_body([], **CRITERIA),
        )
        response = client.post(
            f"/api/v1/license-requests/{request['id']}/offers",
            json=offer_body([title.id]),
            headers=world["studio_a"].headers,
        )
        assert response.status_code == 422
        [reason] = response.get_json()["errors"][title.id]
        assert reason["detail"].startswith(f"Jae-won Novak ({talent.id}, cast)")

    def test_a_developer_still_counters_with_the_studios_listed_titles(
        self, client: Any, session: Session, world: World
    ) -> None:
        offered = cleared_title(session, world["studio_a"].org_id)
        listed = cleared_title(session, world["studio_a"].org_id, name="Also Listed")
        session.commit()
        offer = _open_offer(client, world, [offered.id])
        counter = post(
            client,
            f"/api/v1/offers/{offer['id']}/counter",
            world["developer_x"].headers,
            {"title_ids": [offered.id, listed.id]},
        )
        assert counter["title_ids"] == sorted([offered.id, listed.id])


def _titled_request(client: Any, world: World, title: Title) -> dict[str, Any]:
    return post(
        client, "/api/v1/license-requests", world["developer_x"].headers, request_body([title.id])
    )


class TestRequestScope:
    """A request naming titles concerns the studios owning them (and operators) only."""

    def _reads(self, client: Any, world: World, request_id: str) -> list[Any]:
        b = world["studio_b"].headers
        return [
            client.get(f"/api/v1/license-requests/{request_id}", headers=b),
            client.get(f"/api/v1/license-requests/{request_id}/offers", headers=b),
            client.get(f"/api/v1/license-requests/{request_id}/messages", headers=b),
            client.post(
                f"/api/v1/license-requests/{request_id}/messages", json={"body": "Hi"}, headers=b
            ),
            client.post(
                f"/api/v1/license-requests/{request_id}/offers",
                json=offer_body([new_id("ttl")]),
                headers=b,
            ),
            client.get("/api/v1/license-requests", headers=b),
        ]

    def test_another_studio_cannot_tell_it_from_a_request_that_does_not_exist(
        self, client: Any, connection: Connection, world: World
    ) -> None:
        answers = []
        for exists in (True, False):
            with scenario(connection) as session:
                title = cleared_title(session, world["studio_a"].org_id, visibility="anonymized")
                session.commit()
                request_id = (
                    _titled_request(client, world, title)["id"] if exists else new_id("req")
                )
                answers.append([normalized(r) for r in self._reads(client, world, request_id)])
        assert answers[0] == answers[1]
        assert [a["status"] for a in answers[0]] == [404, 404, 404, 404, 404, 200]
        assert answers[0][-1]["body"]["items"] == []

    def test_the_owning_studio_and_operators_see_it(
        self, client: Any, session: Session, world: World
    ) -> None:
        title = cleared_title(session, world["studio_a"].org_id)
        session.commit()
        request = _titled_request(client, world, title)
        for actor in ("studio_a", "operator", "developer_x"):
            response = client.get(
                f"/api/v1/license-requests/{request['id']}", headers=world[actor].headers
            )
            assert response.status_code == 200, actor
            listed = client.get("/api/v1/license-requests", headers=world[actor].headers)
            assert [r["id"] for r in listed.get_json()["items"]] == [request["id"]], actor

    def test_a_request_naming_titles_of_two_studios_reaches_both(
        self, client: Any, session: Session, world: World
    ) -> None:
        a = cleared_title(session, world["studio_a"].org_id)
        b = cleared_title(session, world["studio_b"].org_id, visibility="anonymized")
        session.commit()
        request = post(
            client,
            "/api/v1/license-requests",
            world["developer_x"].headers,
            request_body([a.id, b.id]),
        )
        for studio in ("studio_a", "studio_b"):
            response = client.get(
                f"/api/v1/license-requests/{request['id']}", headers=world[studio].headers
            )
            assert response.status_code == 200, studio

    def test_a_request_by_criteria_alone_reaches_every_studio(
        self, client: Any, world: World
    ) -> None:
        request = post(
            client,
            "/api/v1/license-requests",
            world["developer_x"].headers,
            request_body([], **CRITERIA),
        )
        for studio in ("studio_a", "studio_b"):
            headers = world[studio].headers
            assert (
                client.get(f"/api/v1/license-requests/{request['id']}", headers=headers).status_code
                == 200
            )
            listed = client.get("/api/v1/license-requests", headers=headers).get_json()
            assert [r["id"] for r in listed["items"]] == [request["id"]]

    def test_a_request_whose_titles_are_gone_reaches_no_studio(
        self, client: Any, session: Session, world: World
    ) -> None:
        # As migration 0020 leaves a request whose named titles were all deleted: no link.
        request = LicenseRequest(
            developer_id=world["developer_x"].org_id,
            created_by=world["developer_x"].user_id,
            title_ids=[new_id("ttl")],
            criteria={},
            uses=["train"],
            territories=["US"],
            start=date(2026, 6, 1),
            end=date(2026, 12, 31),
            currency="usd",
        )
        session.add(request)
        session.commit()
        for actor, status in (("studio_a", 404), ("studio_b", 404), ("operator", 200)):
            response = client.get(
                f"/api/v1/license-requests/{request.id}", headers=world[actor].headers
            )
            assert response.status_code == status, actor
