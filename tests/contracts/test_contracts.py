"""Contracts: exclusivity, termination, the ODRL policy, attestations and price guidance."""

from __future__ import annotations

import statistics
import threading
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from contracts.models import Attestation, Contract, ContractTitle
from marketplace.app import create_app
from tests.deals import cleared_title, offer_body, post, request_body, signed_contract
from tests.helpers import problem
from tests.world import World, build_world


class TestExclusivity:
    def test_an_exclusive_licence_blocks_overlapping_offers_and_clearance(
        self, client: Any, session: Session, world: World
    ) -> None:
        title = cleared_title(session, world["studio_a"].org_id)
        session.commit()
        first = signed_contract(client, world, [title.id], exclusive=True)
        assert first["status"] == "signed"
        # The same title, use and a territory inside WW... for another developer:
        request = post(
            client,
            "/api/v1/license-requests",
            world["developer_y"].headers,
            request_body([title.id], start="2026-12-01", end="2027-03-31"),
        )
        body = problem(
            client.post(
                f"/api/v1/license-requests/{request['id']}/offers",
                json=offer_body([title.id], start="2026-12-01", end="2027-03-31"),
                headers=world["studio_a"].headers,
            ),
            422,
            "not_cleared",
        )
        assert [r["code"] for r in body["errors"][title.id]] == ["exclusivity_conflict"]
        assert first["id"] not in str(body)  # another party's deal is not named
        cleared = client.post(
            "/api/v1/clearance",
            headers=world["developer_y"].headers,
            json={
                "title_ids": [title.id],
                "uses": ["train"],
                "territories": ["US"],
                "start": "2026-12-01",
                "end": "2027-03-31",
            },
        ).get_json()
        assert cleared["blocked"][0]["reasons"][0]["code"] == "exclusivity_conflict"
        # After the exclusive term, or for another use, the title is free again.
        later = client.post(
            "/api/v1/clearance",
            headers=world["developer_y"].headers,
            json={
                "title_ids": [title.id],
                "uses": ["train"],
                "territories": ["US"],
                "start": "2027-01-01",
                "end": "2027-03-31",
            },
        ).get_json()
        other_use = client.post(
            "/api/v1/clearance",
            headers=world["developer_y"].headers,
            json={
                "title_ids": [title.id],
                "uses": ["evaluate"],
                "territories": ["US"],
                "start": "2026-12-01",
                "end": "2027-03-31",
            },
        ).get_json()
        assert later["cleared"] == [title.id] and other_use["cleared"] == [title.id]

    def test_of_two_pending_exclusive_contracts_only_one_is_signed(
        self, client: Any, session: Session, world: World
    ) -> None:
        title = cleared_title(session, world["studio_a"].org_id)
        session.commit()
        contracts = []
        for developer in ("developer_x", "developer_y"):
            request = post(
                client,
                "/api/v1/license-requests",
                world[developer].headers,
                request_body([title.id], exclusive=True),
            )
            offer = post(
                client,
                f"/api/v1/license-requests/{request['id']}/offers",
                world["studio_a"].headers,
                offer_body([title.id], exclusive=True),
            )
            accepted = post(
                client, f"/api/v1/offers/{offer['id']}/accept", world[developer].headers, status=200
            )
            contracts.append((developer, accepted["contract_id"]))
        results = []
        for developer, contract_id in contracts:
            sha = client.get(
                f"/api/v1/contracts/{contract_id}", headers=world["operator"].headers
            ).get_json()["document_sha256"]
            for who in ("studio_a", developer):
                post(
                    client,
                    f"/api/v1/contracts/{contract_id}/sign",
                    world[who].headers,
                    {"document_sha256": sha},
                    status=200,
                )
            results.append(
                client.post(
                    f"/api/v1/contracts/{contract_id}/sign",
                    json={"document_sha256": sha},
                    headers=world["operator"].headers,
                )
            )
        assert results[0].status_code == 200
        problem(results[1], 409, "exclusivity_conflict")


@pytest.mark.committing
class TestConcurrency:
    """Real commits on separate connections: the database, not luck, decides the winner."""

    def _setup(self, committing_engine: Engine) -> tuple[World, str]:
        with Session(committing_engine) as session:
            world = build_world(session)
            title = cleared_title(session, world["studio_a"].org_id)
            session.commit()
            return world, title.id

    def _app(self, settings: Any, committing_engine: Engine, storage: Any) -> Any:
        from marketplace.core.db import make_session_factory

        return create_app(
            settings, session_factory=make_session_factory(committing_engine), storage=storage
        )

    def _race(self, app: Any, calls: list[tuple[str, dict[str, str], Any]]) -> list[Any]:
        barrier = threading.Barrier(len(calls))
        results: list[Any] = [None] * len(calls)

        def run(i: int, path: str, headers: dict[str, str], body: Any) -> None:
            client = app.test_client()
            barrier.wait()
            results[i] = client.post(path, json=body, headers=headers)

        threads = [threading.Thread(target=run, args=(i, *call)) for i, call in enumerate(calls)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return results

    def test_two_concurrent_accepts_make_one_contract(
        self, committing_engine: Engine, settings: Any, storage: Any
    ) -> None:
        world, title_id = self._setup(committing_engine)
        app = self._app(settings, committing_engine, storage)
        client = app.test_client()
        dev = world["developer_x"]
        request = post(client, "/api/v1/license-requests", dev.headers, request_body([title_id]))
        offer = post(
            client,
            f"/api/v1/license-requests/{request['id']}/offers",
            world["studio_a"].headers,
            offer_body([title_id]),
        )
        path = f"/api/v1/offers/{offer['id']}/accept"
        results = self._race(app, [(path, dev.headers, None), (path, dev.member_headers, None)])
        assert sorted(r.status_code for r in results) == [200, 409]
        loser = next(r for r in results if r.status_code == 409)
        assert loser.get_json()["code"] == "invalid_state"
        with Session(committing_engine) as session:
            count = session.scalar(
                select(func.count()).select_from(Contract).where(Contract.offer_id == offer["id"])
            )
            assert count == 1

    def test_two_exclusive_countersignatures_at_once_sign_one(
        self, committing_engine: Engine, settings: Any, storage: Any
    ) -> None:
        world, title_id = self._setup(committing_engine)
        app = self._app(settings, committing_engine, storage)
        client = app.test_client()
        pending = []
        for developer in ("developer_x", "developer_y"):
            request = post(
                client,
                "/api/v1/license-requests",
                world[developer].headers,
                request_body([title_id], exclusive=True),
            )
            offer = post(
                client,
                f"/api/v1/license-requests/{request['id']}/offers",
                world["studio_a"].headers,
                offer_body([title_id], exclusive=True),
            )
            contract_id = post(
                client, f"/api/v1/offers/{offer['id']}/accept", world[developer].headers, status=200
            )["contract_id"]
            sha = client.get(
                f"/api/v1/contracts/{contract_id}", headers=world["operator"].headers
            ).get_json()["document_sha256"]
            for who in ("studio_a", developer):
                post(
                    client,
                    f"/api/v1/contracts/{contract_id}/sign",
                    world[who].headers,
                    {"document_sha256": sha},
                    status=200,
                )
            pending.append(
                (
                    f"/api/v1/contracts/{contract_id}/sign",
                    world["operator"].headers,
                    {"document_sha256": sha},
                )
            )
        results = self._race(app, pending)
        assert sorted(r.status_code for r in results) == [200, 409]
        assert next(r for r in results if r.status_code == 409).get_json()["code"] == (
            "exclusivity_conflict"
        )
        with Session(committing_engine) as session:
            signed = session.scalar(
                select(func.count()).select_from(Contract).where(Contract.status == "signed")
            )
            assert signed == 1


class TestTermination:
    def test_operator_terminates_with_a_reason(
        self, client: Any, session: Session, world: World
    ) -> None:
        title = cleared_title(session, world["studio_a"].org_id)
        session.commit()
        contract = signed_contract(client, world, [title.id])
        path = f"/api/v1/contracts/{contract['id']}/terminate"
        problem(
            client.post(path, json={"reason": "x"}, headers=world["studio_a"].headers),
            403,
            "forbidden",
        )
        problem(
            client.post(path, json={"reason": "x"}, headers=world["studio_b"].headers),
            404,
            "not_found",
        )
        done = post(client, path, world["operator"].headers, {"reason": "breach"}, status=200)
        assert done["status"] == "terminated" and done["termination_reason"] == "breach"
        problem(
            client.post(path, json={"reason": "again"}, headers=world["operator"].headers),
            409,
            "invalid_state",
        )


class TestPolicy:
    def test_the_policy_is_odrl_and_matches_the_terms(
        self, client: Any, session: Session, world: World
    ) -> None:
        title = cleared_title(session, world["studio_a"].org_id, territories=("US", "CA"))
        session.commit()
        contract = signed_contract(
            client, world, [title.id], uses=["train", "fine_tune"], territories=["US", "CA"]
        )
        response = client.get(
            f"/api/v1/contracts/{contract['id']}/policy", headers=world["developer_x"].headers
        )
        assert response.content_type == "application/ld+json"
        policy = response.get_json()
        assert policy["@context"][0] == "http://www.w3.org/ns/odrl.jsonld"
        assert policy["@type"] == "Agreement"
        assert policy["uid"] == f"urn:clearcut:contract:{contract['id']}"
        assert policy["assigner"] == f"urn:clearcut:org:{world['studio_a'].org_id}"
        assert policy["assignee"] == f"urn:clearcut:org:{world['developer_x'].org_id}"
        (permission,) = policy["permission"]
        assert sorted(permission["action"]) == ["clearcut:fine_tune", "clearcut:train"]
        assert permission["target"]["source"] == [f"urn:clearcut:title:{title.id}"]
        constraints = {
            (c["leftOperand"], c["operator"]): c["rightOperand"] for c in permission["constraint"]
        }
        assert constraints[("dateTime", "gteq")]["@value"] == "2026-06-01"
        assert constraints[("dateTime", "lteq")]["@value"] == "2026-12-31"
        assert constraints[("spatial", "isAnyOf")] == ["CA", "US"]
        duties = {d["action"]: d for d in permission["duty"]}
        assert set(duties) == {"compensate", "delete"}
        pay = duties["compensate"]["constraint"][0]
        assert pay["leftOperand"] == "payAmount"
        assert pay["rightOperand"]["@value"] == f"{contract['amount_cents'] / 100:.2f}"
        (prohibition,) = policy["prohibition"]
        assert {
            "clearcut:reproduce_verbatim",
            "clearcut:replicate_likeness",
            "clearcut:derive_sequel",
        } <= set(prohibition["action"])
        assert policy["obligation"][0]["action"] == "delete"


class TestAttestations:
    def test_the_licensee_attests_and_overdue_deletions_are_listed(
        self, client: Any, session: Session, world: World
    ) -> None:
        title = cleared_title(session, world["studio_a"].org_id)
        session.commit()
        contract = signed_contract(client, world, [title.id])
        path = f"/api/v1/contracts/{contract['id']}/attestations"
        run = {
            "kind": "training_run",
            "model_name": "clip-video",
            "model_version": "3",
            "statement": "Trained for 2 epochs.",
            "started_at": "2026-07-01T00:00:00Z",
            "finished_at": "2026-07-03T00:00:00Z",
        }
        problem(client.post(path, json=run, headers=world["studio_a"].headers), 403, "forbidden")
        problem(client.post(path, json=run, headers=world["developer_y"].headers), 404, "not_found")
        created = post(client, path, world["developer_x"].headers, run)
        assert created["kind"] == "training_run"
        listed = client.get(path, headers=world["studio_a"].headers).get_json()["items"]
        assert [a["id"] for a in listed] == [created["id"]]

        # Make the contract end 31 days ago: its deletion attestation is overdue.
        session.execute(
            update(Contract)
            .where(Contract.id == contract["id"])
            .values(
                starts_on=date.today() - timedelta(days=200),
                ends_on=date.today() - timedelta(days=31),
            )
        )
        session.commit()
        overdue = client.get(
            "/api/v1/contracts?attestation_overdue=true", headers=world["studio_a"].headers
        ).get_json()["items"]
        assert [c["id"] for c in overdue] == [contract["id"]]
        assert overdue[0]["status"] == "expired"
        post(
            client,
            path,
            world["developer_x"].headers,
            {"kind": "deletion", "statement": "All copies deleted on 2026-11-01."},
        )
        assert (
            client.get(
                "/api/v1/contracts?attestation_overdue=true", headers=world["operator"].headers
            ).get_json()["items"]
            == []
        )
        assert session.scalar(select(func.count()).select_from(Attestation)) == 2

    def test_a_contract_ended_29_days_ago_is_not_yet_overdue(
        self, client: Any, session: Session, world: World
    ) -> None:
        title = cleared_title(session, world["studio_a"].org_id)
        session.commit()
        contract = signed_contract(client, world, [title.id])
        session.execute(
            update(Contract)
            .where(Contract.id == contract["id"])
            .values(
                starts_on=date.today() - timedelta(days=200),
                ends_on=date.today() - timedelta(days=29),
            )
        )
        session.commit()
        assert (
            client.get(
                "/api/v1/contracts?attestation_overdue=true", headers=world["operator"].headers
            ).get_json()["items"]
            == []
        )


class TestPriceGuidance:
    def _contract(
        self,
        session: Session,
        studio_id: str,
        developer_id: str,
        per_hour: int,
        *,
        genre_title: str,
    ) -> None:
        contract = Contract(
            offer_id=f"ofr_{per_hour}_{studio_id[-6:]}",
            request_id="req_x",
            studio_id=studio_id,
            developer_id=developer_id,
            terms={},
            title_ids=[genre_title],
            uses=["train"],
            territories=["WW"],
            starts_on=date(2026, 1, 1),
            ends_on=date(2026, 12, 31),
            amount_cents=per_hour * 2,
            currency="usd",
            content_seconds=7200.0,
            quota_bytes=1,
            quota_downloads=1,
            document="d",
            document_sha256="0" * 64,
            status="signed",
            signed_at=datetime.now(UTC),
        )
        session.add(contract)
        session.flush()
        session.add(ContractTitle(contract_id=contract.id, title_id=genre_title))
        session.flush()

    def test_quartiles_appear_only_with_five_deals_from_three_studios(
        self, client: Any, session: Session, world: World
    ) -> None:
        studios = ["studio_a", "studio_b", "operator"]  # any organization id will do as studio
        titles = {s: cleared_title(session, world["studio_a"].org_id).id for s in studios}
        prices = [100_000, 120_000, 150_000, 200_000, 400_000]
        dev = world["developer_x"].org_id
        for i, price in enumerate(prices[:4]):
            owner = studios[i % 2]
            self._contract(session, world[owner].org_id, dev, price, genre_title=titles[owner])
        session.commit()
        url = "/api/v1/pricing/benchmarks?genre=drama&permitted_use=train&territory=US"
        assert client.get(url, headers=world["developer_y"].headers).get_json() == {
            "currency": "usd",
            "insufficient_data": True,
        }
        self._contract(
            session, world["operator"].org_id, dev, prices[4], genre_title=titles["operator"]
        )
        session.commit()
        body = client.get(url, headers=world["developer_y"].headers).get_json()
        q1, median, q3 = statistics.quantiles(prices, n=4, method="inclusive")
        assert body["per_hour_cents"] == {
            "p25": round(q1),
            "median": round(median),
            "p75": round(q3),
        }
        assert body["sample_contracts"] == 5 and body["sample_studios"] == 3
        assert (
            client.get(
                "/api/v1/pricing/benchmarks?genre=comedy", headers=world["developer_y"].headers
            ).get_json()["insufficient_data"]
            is True
        )
