"""A whole negotiation through the API, and every refusal on the way."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from marketplace.brokering.models import Offer
from tests.deals import cleared_title, offer_body, post, request_body
from tests.helpers import problem
from tests.world import World


def test_request_offer_counter_brokered_counter_accept_sign(
    client: Any, session: Session, world: World
) -> None:
    title = cleared_title(session, world["studio_a"].org_id)
    session.commit()
    dev, studio, op = world["developer_x"], world["studio_a"], world["operator"]

    request = post(client, "/api/v1/license-requests", dev.headers, request_body([title.id]))
    assert request["status"] == "open" and request["developer_id"] == dev.org_id

    offer = post(
        client,
        f"/api/v1/license-requests/{request['id']}/offers",
        studio.headers,
        offer_body([title.id]),
    )
    assert offer["status"] == "open" and offer["proposed_by"] == "studio"
    # per_hour: 1,500.00 an hour for 2 hours of content.
    assert offer["total_cents"] == 300_000

    counter = post(
        client,
        f"/api/v1/offers/{offer['id']}/counter",
        dev.headers,
        {"pricing": {"model": "flat", "amount_cents": 200_000, "currency": "usd"}},
    )
    assert counter["proposed_by"] == "developer"
    assert counter["previous_offer_id"] == offer["id"]
    assert (
        client.get(f"/api/v1/offers/{offer['id']}", headers=dev.headers).get_json()["status"]
        == "countered"
    )

    brokered = post(
        client,
        f"/api/v1/offers/{counter['id']}/counter",
        op.headers,
        {"pricing": {"model": "flat", "amount_cents": 250_000, "currency": "usd"}},
    )
    assert brokered["brokered"] is True and brokered["proposed_by"] == "studio"

    # The studio cannot accept what is proposed on its own behalf; the developer can.
    problem(
        client.post(f"/api/v1/offers/{brokered['id']}/accept", headers=studio.headers),
        403,
        "forbidden",
    )
    accepted = post(client, f"/api/v1/offers/{brokered['id']}/accept", dev.headers, status=200)
    assert accepted["status"] == "accepted" and accepted["contract_id"].startswith("ctr_")

    contract_id = accepted["contract_id"]
    contract = client.get(f"/api/v1/contracts/{contract_id}", headers=studio.headers).get_json()
    assert contract["status"] == "pending_signatures"
    assert contract["amount_cents"] == 250_000 and contract["title_ids"] == [title.id]
    document = client.get(f"/api/v1/contracts/{contract_id}/document", headers=dev.headers)
    text = document.get_data(as_text=True)
    assert hashlib.sha256(text.encode()).hexdigest() == contract["document_sha256"]
    for needle in (
        "Studio A",
        "Developer X",
        "The Long Harbour",
        "training of AI models",
        "2026-06-01",
        "2026-12-31",
        "2500.00 USD",
        "verbatim",
        "likeness",
        "sequels",
        "Delete every copy",
    ):
        assert needle in text, needle

    sha = {"document_sha256": contract["document_sha256"]}
    problem(
        client.post(f"/api/v1/contracts/{contract_id}/sign", json=sha, headers=op.headers),
        409,
        "invalid_state",
    )  # the operator countersigns last
    post(client, f"/api/v1/contracts/{contract_id}/sign", studio.headers, sha, status=200)
    after_two = post(client, f"/api/v1/contracts/{contract_id}/sign", dev.headers, sha, status=200)
    assert after_two["status"] == "pending_signatures"
    final = post(client, f"/api/v1/contracts/{contract_id}/sign", op.headers, sha, status=200)
    assert final["status"] == "signed"
    assert sorted(s["role"] for s in final["signatures"]) == ["developer", "operator", "studio"]

    events = client.get(
        f"/api/v1/audit-events?object_id={contract_id}&limit=200", headers=op.headers
    ).get_json()["items"]
    assert [e["action"] for e in events] == [
        "contract.created",
        "contract.signed",
        "contract.signed",
        "contract.signed",
        "contract.status_changed",
    ]


class TestRefusals:
    def _offer(self, client: Any, session: Session, world: World, **terms: Any) -> dict[str, Any]:
        title = cleared_title(session, world["studio_a"].org_id)
        session.commit()
        request = post(
            client,
            "/api/v1/license-requests",
            world["developer_x"].headers,
            request_body([title.id]),
        )
        return post(
            client,
            f"/api/v1/license-requests/{request['id']}/offers",
            world["studio_a"].headers,
            offer_body([title.id], **terms),
        )

    def test_accepting_an_expired_offer_is_409(
        self, client: Any, session: Session, world: World
    ) -> None:
        offer = self._offer(client, session, world)
        session.execute(
            update(Offer)
            .where(Offer.id == offer["id"])
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        session.commit()
        assert (
            client.get(
                f"/api/v1/offers/{offer['id']}", headers=world["developer_x"].headers
            ).get_json()["status"]
            == "expired"
        )
        problem(
            client.post(
                f"/api/v1/offers/{offer['id']}/accept", headers=world["developer_x"].headers
            ),
            409,
            "invalid_state",
        )

    def test_accepting_a_withdrawn_or_countered_offer_is_409(
        self, client: Any, session: Session, world: World
    ) -> None:
        dev = world["developer_x"].headers
        offer = self._offer(client, session, world)
        post(
            client, f"/api/v1/offers/{offer['id']}/withdraw", world["studio_a"].headers, status=200
        )
        problem(
            client.post(f"/api/v1/offers/{offer['id']}/accept", headers=dev), 409, "invalid_state"
        )
        second = self._offer(client, session, world)
        post(
            client,
            f"/api/v1/offers/{second['id']}/counter",
            dev,
            {"quota": {"bytes": 1_000_000, "downloads": 3}},
        )
        problem(
            client.post(f"/api/v1/offers/{second['id']}/accept", headers=dev), 409, "invalid_state"
        )

    def test_signing_a_stale_hash_is_409(self, client: Any, session: Session, world: World) -> None:
        offer = self._offer(client, session, world)
        accepted = post(
            client, f"/api/v1/offers/{offer['id']}/accept", world["developer_x"].headers, status=200
        )
        response = client.post(
            f"/api/v1/contracts/{accepted['contract_id']}/sign",
            json={"document_sha256": "0" * 64},
            headers=world["studio_a"].headers,
        )
        body = problem(response, 409, "conflict")
        assert "document_sha256" in body["errors"]

    def test_an_offer_outside_the_rights_is_not_cleared(
        self, client: Any, session: Session, world: World
    ) -> None:
        title = cleared_title(session, world["studio_a"].org_id, territories=("US", "CA"))
        session.commit()
        request = post(
            client,
            "/api/v1/license-requests",
            world["developer_x"].headers,
            request_body([title.id]),
        )
        response = client.post(
            f"/api/v1/license-requests/{request['id']}/offers",
            json=offer_body([title.id], territories=["US", "FR"]),
            headers=world["studio_a"].headers,
        )
        body = problem(response, 422, "not_cleared")
        assert [r["code"] for r in body["errors"][title.id]] == ["no_rights"]
        assert "FR" in body["errors"][title.id][0]["detail"]

    def test_a_studio_cannot_offer_another_studios_titles(
        self, client: Any, session: Session, world: World
    ) -> None:
        title = cleared_title(session, world["studio_b"].org_id)
        session.commit()
        # A brief by criteria alone reaches studio A too (one naming B's title would be a 404).
        request = post(
            client,
            "/api/v1/license-requests",
            world["developer_x"].headers,
            request_body([], criteria={"genres": ["drama"]}),
        )
        body = problem(
            client.post(
                f"/api/v1/license-requests/{request['id']}/offers",
                json=offer_body([title.id]),
                headers=world["studio_a"].headers,
            ),
            422,
            "validation_error",
        )
        assert "title_ids" in body["errors"]

    def test_only_the_receiving_party_rejects_and_only_the_maker_withdraws(
        self, client: Any, session: Session, world: World
    ) -> None:
        offer = self._offer(client, session, world)
        problem(
            client.post(f"/api/v1/offers/{offer['id']}/reject", headers=world["studio_a"].headers),
            403,
            "forbidden",
        )
        problem(
            client.post(
                f"/api/v1/offers/{offer['id']}/withdraw", headers=world["developer_x"].headers
            ),
            403,
            "forbidden",
        )
        rejected = post(
            client, f"/api/v1/offers/{offer['id']}/reject", world["developer_x"].headers, status=200
        )
        assert rejected["status"] == "rejected"

    def test_other_tenants_see_nothing(self, client: Any, session: Session, world: World) -> None:
        offer = self._offer(client, session, world)
        for outsider in ("studio_b", "developer_y"):
            problem(
                client.get(f"/api/v1/offers/{offer['id']}", headers=world[outsider].headers),
                404,
                "not_found",
            )
        problem(
            client.get(
                f"/api/v1/license-requests/{offer['request_id']}",
                headers=world["developer_y"].headers,
            ),
            404,
            "not_found",
        )


class TestAnonymity:
    def test_studio_learns_the_developer_only_once_signed(
        self, client: Any, session: Session, world: World
    ) -> None:
        title = cleared_title(session, world["studio_a"].org_id)
        session.commit()
        dev, studio, op = world["developer_x"], world["studio_a"], world["operator"]
        request = post(
            client,
            "/api/v1/license-requests",
            dev.headers,
            request_body([title.id], anonymous=True),
        )
        seen = client.get(f"/api/v1/license-requests/{request['id']}", headers=studio.headers)
        assert seen.get_json()["developer_id"] is None
        post(
            client,
            f"/api/v1/license-requests/{request['id']}/messages",
            dev.headers,
            {"body": "Can you include 4K masters?", "studio_id": studio.org_id},
        )
        offer = post(
            client,
            f"/api/v1/license-requests/{request['id']}/offers",
            studio.headers,
            offer_body([title.id]),
        )
        accepted = post(client, f"/api/v1/offers/{offer['id']}/accept", dev.headers, status=200)
        contract_id = accepted["contract_id"]
        for path in (
            f"/api/v1/license-requests/{request['id']}",
            f"/api/v1/license-requests/{request['id']}/messages",
            f"/api/v1/contracts/{contract_id}",
            f"/api/v1/contracts/{contract_id}/document",
            f"/api/v1/contracts/{contract_id}/policy",
            "/api/v1/audit-events?limit=200",
        ):
            text = client.get(path, headers=studio.headers).get_data(as_text=True)
            assert dev.org_id not in text and "Developer X" not in text, path
            # A user id is a pseudonym that a later, signed deal would unmask.
            assert dev.user_id not in text, path
        policy = client.get(f"/api/v1/contracts/{contract_id}/policy", headers=studio.headers)
        assert policy.get_json()["assignee"].startswith("urn:clearcut:licensee:LICENSEE-")
        sha = client.get(f"/api/v1/contracts/{contract_id}", headers=studio.headers).get_json()[
            "document_sha256"
        ]
        for who in (studio, dev, op):
            post(
                client,
                f"/api/v1/contracts/{contract_id}/sign",
                who.headers,
                {"document_sha256": sha},
                status=200,
            )
        contract = client.get(f"/api/v1/contracts/{contract_id}", headers=studio.headers)
        assert contract.get_json()["developer_id"] == dev.org_id
        assert (
            client.get(
                f"/api/v1/license-requests/{request['id']}", headers=studio.headers
            ).get_json()["developer_id"]
            == dev.org_id
        )


class TestMessages:
    def test_each_studio_reads_only_its_own_thread(
        self, client: Any, session: Session, world: World
    ) -> None:
        a = cleared_title(session, world["studio_a"].org_id)
        b = cleared_title(session, world["studio_b"].org_id)
        session.commit()
        dev = world["developer_x"]
        request = post(client, "/api/v1/license-requests", dev.headers, request_body([a.id, b.id]))
        path = f"/api/v1/license-requests/{request['id']}/messages"
        post(client, path, world["studio_a"].headers, {"body": "from A"})
        post(client, path, world["studio_b"].headers, {"body": "from B"})
        post(client, path, dev.headers, {"body": "to the marketplace"})

        def bodies(actor: str) -> list[str]:
            items = client.get(path, headers=world[actor].headers).get_json()["items"]
            return [m["body"] for m in items]

        assert bodies("studio_a") == ["from A"]
        assert bodies("studio_b") == ["from B"]
        assert bodies("developer_x") == ["from A", "from B", "to the marketplace"]
        assert bodies("operator") == ["from A", "from B", "to the marketplace"]
        problem(client.get(path, headers=world["developer_y"].headers), 404, "not_found")


class TestAmounts:
    """Prices are integer minor units that one Stripe charge can carry (99,999,999)."""

    def _request(self, client: Any, session: Session, world: World) -> tuple[str, str]:
        title = cleared_title(session, world["studio_a"].org_id)  # 2 hours of content
        session.commit()
        request = post(
            client,
            "/api/v1/license-requests",
            world["developer_x"].headers,
            request_body([title.id]),
        )
        return request["id"], title.id

    def _offer(
        self, client: Any, world: World, request_id: str, title_id: str, pricing: Any
    ) -> Any:
        return client.post(
            f"/api/v1/license-requests/{request_id}/offers",
            json=offer_body([title_id], pricing=pricing),
            headers=world["studio_a"].headers,
        )

    def _offers(self, session: Session, request_id: str) -> int:
        return (
            session.scalar(
                select(func.count()).select_from(Offer).where(Offer.request_id == request_id)
            )
            or 0
        )

    @pytest.mark.parametrize(
        "amount",
        [10.5, 10.0, "1000", True, 2**63, 2**64, -1],
        ids=["fraction", "float", "string", "bool", "2^63", "2^64", "negative"],
    )
    def test_an_amount_that_is_not_a_whole_payable_number_is_422(
        self, client: Any, session: Session, world: World, amount: Any
    ) -> None:
        request_id, title_id = self._request(client, session, world)
        pricing = {"model": "flat", "amount_cents": amount, "currency": "usd"}
        body = problem(
            self._offer(client, world, request_id, title_id, pricing), 422, "validation_error"
        )
        assert "pricing.amount_cents" in body["errors"]
        assert self._offers(session, request_id) == 0

    def test_a_flat_price_past_one_charge_is_422_naming_the_limit(
        self, client: Any, session: Session, world: World
    ) -> None:
        request_id, title_id = self._request(client, session, world)
        pricing = {"model": "flat", "amount_cents": 100_000_000, "currency": "usd"}
        body = problem(
            self._offer(client, world, request_id, title_id, pricing), 422, "validation_error"
        )
        assert "99,999,999" in body["errors"]["pricing.amount_cents"][0]
        pricing["amount_cents"] = 99_999_999  # the limit itself is payable
        assert self._offer(client, world, request_id, title_id, pricing).status_code == 201

    def test_a_per_hour_price_whose_total_passes_one_charge_is_422(
        self, client: Any, session: Session, world: World
    ) -> None:
        request_id, title_id = self._request(client, session, world)
        # 50,000,000 an hour is within the limit; for 2 hours, the total is not.
        pricing = {"model": "per_hour", "amount_cents": 50_000_000, "currency": "usd"}
        body = problem(
            self._offer(client, world, request_id, title_id, pricing), 422, "validation_error"
        )
        assert "100,000,000" in body["detail"] and "99,999,999" in body["detail"]
        assert "99,999,999" in body["errors"]["pricing.amount_cents"][0]
        assert self._offers(session, request_id) == 0

    @pytest.mark.parametrize(
        ("amount", "model"),
        [(10.5, "flat"), (2**63, "flat"), (100_000_000, "flat"), (50_000_000, "per_hour")],
    )
    def test_a_counter_past_one_charge_is_422_and_the_offer_stays_open(
        self, client: Any, session: Session, world: World, amount: Any, model: str
    ) -> None:
        request_id, title_id = self._request(client, session, world)
        flat = {"model": "flat", "amount_cents": 200_000, "currency": "usd"}
        offer = self._offer(client, world, request_id, title_id, flat).get_json()
        response = client.post(
            f"/api/v1/offers/{offer['id']}/counter",
            json={"pricing": {"model": model, "amount_cents": amount, "currency": "usd"}},
            headers=world["developer_x"].headers,
        )
        problem(response, 422, "validation_error")
        again = client.get(f"/api/v1/offers/{offer['id']}", headers=world["developer_x"].headers)
        assert again.get_json()["status"] == "open"
        assert self._offers(session, request_id) == 1

    @pytest.mark.parametrize("budget", [10.5, 2**63])
    def test_a_budget_that_is_not_a_storable_integer_is_422(
        self, client: Any, session: Session, world: World, budget: Any
    ) -> None:
        title = cleared_title(session, world["studio_a"].org_id)
        session.commit()
        response = client.post(
            "/api/v1/license-requests",
            json=request_body([title.id], budget_cents=budget),
            headers=world["developer_x"].headers,
        )
        assert "budget_cents" in problem(response, 422, "validation_error")["errors"]
