"""Billing over HTTP: paying a contract, the signed Stripe webhook, the payout ledger."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.orm import Session

from config import Settings
from contracts.models import Contract
from marketplace.app import create_app
from marketplace.billing.errors import PaymentProviderError
from marketplace.billing.gateway import FakeGateway
from marketplace.billing.models import Payment, PayoutEntry
from marketplace.core.db import make_session_factory
from marketplace.core.storage.fake import InMemoryStorage
from tests.billing.support import intent_event, make_contract, signature_header
from tests.deals import cleared_title, signed_contract
from tests.helpers import bound_sessions, problem
from tests.world import World, build_world

WEBHOOK = "/api/v1/webhooks/stripe"


def pay(client: Any, world: World, contract_id: str, *, who: str = "developer_x") -> Any:
    return client.post(f"/api/v1/contracts/{contract_id}/payments", headers=world[who].headers)


def deliver(client: Any, payload: bytes, secret: str) -> Any:
    """POST an event as Stripe does: raw JSON, signed, and no API key."""
    return client.post(
        WEBHOOK,
        data=payload,
        headers={
            "Content-Type": "application/json",
            "Stripe-Signature": signature_header(payload, secret),
        },
    )


def intent_id_of(created: dict[str, Any]) -> str:
    # A client secret is `<intent id>_secret_<random>`, as Stripe.js reads it.
    return str(created["client_secret"]).split("_secret_")[0]


def contract_of(client: Any, world: World, contract_id: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/contracts/{contract_id}", headers=world["operator"].headers)
    assert response.status_code == 200
    body: dict[str, Any] = response.get_json()
    return body


def paid_contract(
    client: Any,
    session: Session,
    world: World,
    settings: Settings,
    *,
    studio: str = "studio_a",
    amount_cents: int = 250_000,
    currency: str = "usd",
) -> dict[str, Any]:
    """A contract paid through the API and a signed `payment_intent.succeeded`."""
    contract = make_contract(
        session, world, studio=studio, amount_cents=amount_cents, currency=currency
    )
    session.commit()
    created = pay(client, world, contract.id).get_json()
    payload = intent_event(
        "payment_intent.succeeded", intent_id_of(created), amount=amount_cents, currency=currency
    )
    assert deliver(client, payload, settings.stripe_webhook_secret).status_code == 200
    return created


class TestPayAContract:
    def test_the_licensee_pays_a_negotiated_contract(
        self, client: Any, session: Session, world: World, payments: FakeGateway
    ) -> None:
        today = datetime.now(UTC).date()
        title = cleared_title(
            session,
            world["studio_a"].org_id,
            start=today - timedelta(days=30),
            end=today + timedelta(days=3 * 365),
        )
        session.commit()
        contract = signed_contract(
            client,
            world,
            [title.id],
            start=today.isoformat(),
            end=(today + timedelta(days=90)).isoformat(),
        )
        assert (contract["status"], contract["payment_status"]) == ("signed", "unpaid")
        response = pay(client, world, contract["id"], who="developer_x")
        assert response.status_code == 201, response.get_data(as_text=True)
        body = response.get_json()
        assert body["id"].startswith("pay_") and body["status"] == "pending"
        assert body["contract_id"] == contract["id"]
        assert (body["amount_cents"], body["currency"]) == (
            contract["amount_cents"],
            contract["currency"],
        )
        [intent] = payments.intents.values()
        assert body["client_secret"] == intent.client_secret
        assert intent.amount == contract["amount_cents"]
        assert intent.metadata == {"contract_id": contract["id"], "payment_id": body["id"]}
        after = contract_of(client, world, contract["id"])
        assert (after["status"], after["payment_status"]) == ("signed", "pending")

    def test_retries_never_open_a_second_payment(
        self, client: Any, session: Session, world: World, payments: FakeGateway
    ) -> None:
        contract = make_contract(session, world)
        session.commit()
        path = f"/api/v1/contracts/{contract.id}/payments"
        keyed = {**world["developer_x"].headers, "Idempotency-Key": "pay-once-0001"}
        first = client.post(path, headers=keyed)
        replayed = client.post(path, headers=keyed)
        assert first.status_code == replayed.status_code == 201
        assert replayed.headers.get("Idempotent-Replayed") == "true"
        # Without a key (another member, another tab), the open payment is handed back.
        again = client.post(path, headers=world["developer_x"].member_headers)
        assert again.status_code == 201
        ids = {r.get_json()["id"] for r in (first, replayed, again)}
        secrets_ = {r.get_json()["client_secret"] for r in (first, replayed, again)}
        assert len(ids) == 1 and len(secrets_) == 1
        assert len(payments.created) == 1

    @pytest.mark.parametrize(
        ("who", "status", "code"),
        [
            ("studio_a", 403, "forbidden"),
            ("operator", 403, "forbidden"),
            ("developer_y", 404, "not_found"),
            ("studio_b", 404, "not_found"),
        ],
    )
    def test_only_the_licensee_may_pay(
        self,
        client: Any,
        session: Session,
        world: World,
        payments: FakeGateway,
        who: str,
        status: int,
        code: str,
    ) -> None:
        contract = make_contract(session, world)
        session.commit()
        problem(pay(client, world, contract.id, who=who), status, code)
        assert payments.created == []

    @pytest.mark.parametrize(
        "state",
        [
            {"status": "pending_signatures"},
            {"status": "active", "payment_status": "paid"},
            {"status": "terminated"},
        ],
    )
    def test_a_contract_not_awaiting_payment_is_409(
        self, client: Any, session: Session, world: World, state: dict[str, str]
    ) -> None:
        contract = make_contract(session, world, **state)
        session.commit()
        problem(pay(client, world, contract.id), 409, "invalid_state")

    def test_a_provider_outage_is_502_and_leaves_the_contract_unpaid(
        self, client: Any, session: Session, world: World, payments: FakeGateway
    ) -> None:
        contract = make_contract(session, world)
        session.commit()
        payments.failure = PaymentProviderError("the payment provider failed (503)")
        body = problem(pay(client, world, contract.id), 502, "payment_provider_error")
        assert "503" in body["detail"]
        assert contract_of(client, world, contract.id)["payment_status"] == "unpaid"
        listed = client.get(
            f"/api/v1/contracts/{contract.id}/payments", headers=world["developer_x"].headers
        )
        assert listed.get_json()["items"] == []


class TestListPayments:
    def test_both_parties_see_payments_but_never_the_client_secret(
        self, client: Any, session: Session, world: World
    ) -> None:
        contract = make_contract(session, world)
        session.commit()
        created = pay(client, world, contract.id).get_json()
        for who in ("studio_a", "developer_x", "operator"):
            response = client.get(
                f"/api/v1/contracts/{contract.id}/payments", headers=world[who].headers
            )
            assert response.status_code == 200
            [item] = response.get_json()["items"]
            assert item["id"] == created["id"] and item["status"] == "pending"
            assert "client_secret" not in item
            assert created["client_secret"] not in response.get_data(as_text=True)
        problem(
            client.get(
                f"/api/v1/contracts/{contract.id}/payments", headers=world["studio_b"].headers
            ),
            404,
            "not_found",
        )


class TestStripeWebhook:
    def test_a_signed_success_activates_the_contract_once(
        self, client: Any, session: Session, world: World, settings: Settings
    ) -> None:
        contract = make_contract(session, world, amount_cents=99_999)
        session.commit()
        created = pay(client, world, contract.id).get_json()
        payload = intent_event(
            "payment_intent.succeeded", intent_id_of(created), amount=99_999, event_id="evt_one"
        )
        response = deliver(client, payload, settings.stripe_webhook_secret)
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.get_json() == {
            "event_id": "evt_one",
            "type": "payment_intent.succeeded",
            "outcome": "processed",
        }
        after = contract_of(client, world, contract.id)
        assert (after["status"], after["payment_status"]) == ("active", "paid")
        replay = deliver(client, payload, settings.stripe_webhook_secret)
        assert replay.status_code == 200 and replay.get_json()["outcome"] == "duplicate"
        ledger = client.get("/api/v1/payouts", headers=world["studio_a"].headers).get_json()
        [entry] = ledger["items"]
        fee = 99_999 * settings.fee_bps // 10_000
        assert entry["payment_id"] == created["id"] and entry["contract_id"] == contract.id
        assert (entry["amount_cents"], entry["fee_cents"], entry["studio_amount_cents"]) == (
            99_999,
            fee,
            99_999 - fee,
        )
        paid = client.get(
            f"/api/v1/contracts/{contract.id}/payments", headers=world["developer_x"].headers
        ).get_json()["items"]
        assert [p["status"] for p in paid] == ["succeeded"]

    def test_a_failure_reopens_the_contract_for_payment(
        self, client: Any, session: Session, world: World, settings: Settings
    ) -> None:
        contract = make_contract(session, world)
        session.commit()
        created = pay(client, world, contract.id).get_json()
        payload = intent_event(
            "payment_intent.payment_failed",
            intent_id_of(created),
            amount=contract.amount_cents,
            failure="Your card was declined.",
        )
        assert deliver(client, payload, settings.stripe_webhook_secret).status_code == 200
        after = contract_of(client, world, contract.id)
        assert (after["status"], after["payment_status"]) == ("signed", "unpaid")
        [failed] = client.get(
            f"/api/v1/contracts/{contract.id}/payments", headers=world["developer_x"].headers
        ).get_json()["items"]
        assert failed["status"] == "failed"
        assert failed["failure_message"] == "Your card was declined."
        # Starting again hands back the same intent, to retry with another card: a second
        # intent beside it could be paid too.
        retry = pay(client, world, contract.id)
        assert retry.status_code == 201
        again = retry.get_json()
        assert (again["id"], again["client_secret"]) == (created["id"], created["client_secret"])
        assert again["status"] == "pending"
        assert contract_of(client, world, contract.id)["payment_status"] == "pending"

    @pytest.mark.parametrize(
        "headers",
        [
            {},
            {"Stripe-Signature": "t=1,v1=00"},
            {"Authorization": "Bearer not-a-key", "Stripe-Signature": "garbage"},
        ],
    )
    def test_an_unsigned_or_forged_event_is_400_and_changes_nothing(
        self, client: Any, session: Session, world: World, headers: dict[str, str]
    ) -> None:
        contract = make_contract(session, world)
        session.commit()
        created = pay(client, world, contract.id).get_json()
        payload = intent_event(
            "payment_intent.succeeded", intent_id_of(created), amount=contract.amount_cents
        )
        response = client.post(
            WEBHOOK, data=payload, headers={"Content-Type": "application/json", **headers}
        )
        problem(response, 400, "bad_request")
        assert contract_of(client, world, contract.id)["payment_status"] == "pending"

    @pytest.mark.parametrize("seconds", [-3600, 3600])
    def test_an_event_signed_an_hour_away_is_400(
        self, client: Any, session: Session, world: World, settings: Settings, seconds: int
    ) -> None:
        contract = make_contract(session, world)
        session.commit()
        created = pay(client, world, contract.id).get_json()
        payload = intent_event(
            "payment_intent.succeeded", intent_id_of(created), amount=contract.amount_cents
        )
        signed_then = signature_header(
            payload, settings.stripe_webhook_secret, timestamp=int(time.time()) + seconds
        )
        response = client.post(
            WEBHOOK,
            data=payload,
            headers={"Content-Type": "application/json", "Stripe-Signature": signed_then},
        )
        assert "300 s either way" in problem(response, 400, "bad_request")["detail"]
        assert contract_of(client, world, contract.id)["payment_status"] == "pending"

    def test_an_event_signed_with_another_secret_is_400(
        self, client: Any, session: Session, world: World
    ) -> None:
        payload = intent_event("payment_intent.succeeded", "pi_x", amount=1)
        problem(deliver(client, payload, "whsec_someone_else"), 400, "bad_request")

    def test_the_fee_comes_from_the_settings(
        self,
        session: Session,
        world: World,
        settings: Settings,
        connection: Connection,
        storage: InMemoryStorage,
    ) -> None:
        app = create_app(
            settings.with_overrides(fee_bps=1234),
            session_factory=bound_sessions(connection),
            storage=storage,
            payments=FakeGateway(),
        )
        client = app.test_client()
        paid_contract(client, session, world, settings, amount_cents=10_001)
        [entry] = client.get("/api/v1/payouts", headers=world["operator"].headers).get_json()[
            "items"
        ]
        assert (entry["fee_bps"], entry["fee_cents"], entry["studio_amount_cents"]) == (
            1234,
            1234,  # 12.34 % of 10 001 cents = 1234.1234, rounded down
            8767,
        )


class TestPayouts:
    def test_each_studio_reads_its_own_ledger_and_operators_all(
        self, client: Any, session: Session, world: World, settings: Settings
    ) -> None:
        a = paid_contract(client, session, world, settings, studio="studio_a")
        b = paid_contract(client, session, world, settings, studio="studio_b")

        def payment_ids(who: str) -> set[str]:
            body = client.get("/api/v1/payouts", headers=world[who].headers).get_json()
            return {e["payment_id"] for e in body["items"]}

        assert payment_ids("studio_a") == {a["id"]}
        assert payment_ids("studio_b") == {b["id"]}
        assert payment_ids("operator") == {a["id"], b["id"]}
        for developer in ("developer_x", "developer_y"):
            problem(
                client.get("/api/v1/payouts", headers=world[developer].headers), 403, "forbidden"
            )

    def test_totals_cover_every_page(
        self, client: Any, session: Session, world: World, settings: Settings
    ) -> None:
        amounts = [10_000, 20_005, 30_010]
        for amount in amounts:
            paid_contract(client, session, world, settings, amount_cents=amount)
        paid_contract(client, session, world, settings, amount_cents=700, currency="eur")
        headers = world["studio_a"].headers
        first = client.get("/api/v1/payouts?limit=2", headers=headers).get_json()
        assert len(first["items"]) == 2 and first["next_cursor"]
        rest = client.get(
            f"/api/v1/payouts?limit=2&cursor={first['next_cursor']}", headers=headers
        ).get_json()
        assert len(rest["items"]) == 2 and rest["next_cursor"] is None
        assert first["totals"] == rest["totals"]
        entries = first["items"] + rest["items"]
        assert len({e["id"] for e in entries}) == 4
        by_currency: dict[str, list[int]] = {}
        for e in entries:
            sums = by_currency.setdefault(e["currency"], [0, 0, 0])
            for i, field in enumerate(("amount_cents", "studio_amount_cents", "fee_cents")):
                sums[i] += e[field]
        assert first["totals"] == [
            {
                "currency": currency,
                "amount_cents": sums[0],
                "studio_amount_cents": sums[1],
                "fee_cents": sums[2],
            }
            for currency, sums in sorted(by_currency.items())
        ]
        assert by_currency["usd"][0] == sum(amounts)
        usd = client.get("/api/v1/payouts?currency=USD", headers=headers).get_json()
        assert [t["currency"] for t in usd["totals"]] == ["usd"]
        assert {e["currency"] for e in usd["items"]} == {"usd"}

    def test_bad_filters_are_400(self, client: Any, world: World) -> None:
        headers = world["operator"].headers
        problem(client.get("/api/v1/payouts?currency=xx1", headers=headers), 400, "bad_request")
        problem(client.get("/api/v1/payouts?cursor=forged", headers=headers), 400, "bad_request")

    def test_an_empty_ledger_has_no_totals(self, client: Any, world: World) -> None:
        body = client.get("/api/v1/payouts", headers=world["studio_b"].headers).get_json()
        assert body == {"items": [], "next_cursor": None, "totals": []}


@pytest.mark.committing
class TestConcurrency:
    """Real commits on separate connections: the database, not luck, keeps one of each."""

    def _race(self, app: Any, calls: list[Callable[[Any], Any]]) -> list[Any]:
        barrier = threading.Barrier(len(calls))
        results: list[Any] = [None] * len(calls)

        def run(i: int) -> None:
            client = app.test_client()
            barrier.wait()
            results[i] = calls[i](client)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return results

    def _setup(
        self, committing_engine: Engine, settings: Settings, storage: InMemoryStorage
    ) -> tuple[Any, World, str, FakeGateway]:
        with Session(committing_engine) as session:
            world = build_world(session)
            contract_id = make_contract(session, world).id
            session.commit()
        gateway = FakeGateway()
        app = create_app(
            settings,
            session_factory=make_session_factory(committing_engine),
            storage=storage,
            payments=gateway,
        )
        return app, world, contract_id, gateway

    def test_simultaneous_payment_starts_open_one_payment(
        self, committing_engine: Engine, settings: Settings, storage: InMemoryStorage
    ) -> None:
        app, world, contract_id, gateway = self._setup(committing_engine, settings, storage)
        payers = [world["developer_x"].headers, world["developer_x"].member_headers] * 2
        calls = [partial(pay_as, contract_id=contract_id, headers=h) for h in payers]
        results = self._race(app, calls)
        assert [r.status_code for r in results] == [201] * 4
        assert len({r.get_json()["id"] for r in results}) == 1
        assert len(gateway.created) == 1
        with Session(committing_engine) as session:
            assert count_rows(session, Payment, Payment.contract_id == contract_id) == 1

    def test_simultaneous_deliveries_of_one_event_apply_it_once(
        self, committing_engine: Engine, settings: Settings, storage: InMemoryStorage
    ) -> None:
        app, world, contract_id, _ = self._setup(committing_engine, settings, storage)
        created = pay(app.test_client(), world, contract_id).get_json()
        with Session(committing_engine) as session:
            amount = session.get_one(Contract, contract_id).amount_cents
        payload = intent_event("payment_intent.succeeded", intent_id_of(created), amount=amount)
        secret = settings.stripe_webhook_secret
        results = self._race(app, [lambda c: deliver(c, payload, secret)] * 3)
        assert [r.status_code for r in results] == [200] * 3
        outcomes = sorted(r.get_json()["outcome"] for r in results)
        assert outcomes == ["duplicate", "duplicate", "processed"]
        with Session(committing_engine) as session:
            assert count_rows(session, PayoutEntry, PayoutEntry.contract_id == contract_id) == 1
            assert session.get_one(Contract, contract_id).status == "active"


def pay_as(client: Any, contract_id: str, headers: dict[str, str]) -> Any:
    return client.post(f"/api/v1/contracts/{contract_id}/payments", headers=headers)


def count_rows(session: Session, model: Any, *where: Any) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where)) or 0
