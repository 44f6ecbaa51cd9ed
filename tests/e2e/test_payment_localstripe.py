"""End to end against the real localstripe: pay a signed contract by card, webhook and all.

The app runs in a real HTTP server thread (localstripe must reach it to deliver the webhook),
on the committing engine (the webhook arrives on another thread and connection). The payer
talks to localstripe directly, as Stripe.js would: create a card PaymentMethod, attach it to
the intent named by the client secret, confirm.

localstripe, beyond docs/SERVERS.md: a webhook cannot be removed (`DELETE /_config/data` empties
the store but keeps webhooks), so teardown re-registers ours under the same name with an
`events[]` filter that matches nothing; and each confirmed intent sends its event about a second
later, with no retry if our server was not listening.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import stripe
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from config import Settings
from contracts.models import Contract
from marketplace.app import create_app
from marketplace.billing.gateway import StripeGateway
from marketplace.billing.models import Payment
from marketplace.core.db import make_session_factory
from marketplace.core.storage.fake import InMemoryStorage
from marketplace.dev.servers import LOOPBACK, LocalStripe, configure_webhook
from tests.deals import cleared_title, signed_contract
from tests.world import World, build_world

pytestmark = [pytest.mark.servers, pytest.mark.committing]

WEBHOOK_NAME = "clearcut-e2e"
WEBHOOK_SECRET = "whsec_e2e_0123456789abcdef"  # noqa: S105 - a test-only webhook secret
GOOD_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000341"  # attaches, then is declined when charged
WAIT_SECONDS = 15.0


@dataclass
class Live:
    client: Any
    world: World
    title_id: str
    settings: Settings
    stripe: stripe.StripeClient
    engine: Engine


@pytest.fixture
def live(localstripe: LocalStripe, committing_engine: Engine, settings: Settings) -> Iterator[Live]:
    live_settings = settings.with_overrides(
        stripe_api_key="sk_test_clearcut_e2e",
        stripe_api_base=localstripe.api_base,
        stripe_webhook_secret=WEBHOOK_SECRET,
    )
    # No `payments=`: the app builds its StripeGateway from the settings, as in production.
    app = create_app(
        live_settings,
        session_factory=make_session_factory(committing_engine),
        storage=InMemoryStorage("clearcut-e2e"),
    )
    server = make_server(LOOPBACK, 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="e2e-api", daemon=True)
    thread.start()
    url = f"http://{LOOPBACK}:{server.server_port}/api/v1/webhooks/stripe"
    try:
        configure_webhook(localstripe.api_base, WEBHOOK_NAME, url, WEBHOOK_SECRET)
        with Session(committing_engine) as session:
            world = build_world(session)
            today = datetime.now(UTC).date()
            title = cleared_title(
                session,
                world["studio_a"].org_id,
                start=today - timedelta(days=30),
                end=today + timedelta(days=3 * 365),
            )
            session.commit()
            title_id = title.id
        payer = stripe.StripeClient(
            "sk_test_e2e_payer", base_addresses={"api": localstripe.api_base}
        )
        yield Live(app.test_client(), world, title_id, live_settings, payer, committing_engine)
    finally:
        configure_webhook(
            localstripe.api_base, WEBHOOK_NAME, url, WEBHOOK_SECRET, events=["clearcut.none"]
        )
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def signed(live: Live) -> dict[str, Any]:
    today = datetime.now(UTC).date()
    contract = signed_contract(
        live.client,
        live.world,
        [live.title_id],
        start=today.isoformat(),
        end=(today + timedelta(days=90)).isoformat(),
    )
    assert (contract["status"], contract["payment_status"]) == ("signed", "unpaid")
    return contract


def start_payment(live: Live, contract_id: str) -> dict[str, Any]:
    response = live.client.post(
        f"/api/v1/contracts/{contract_id}/payments", headers=live.world["developer_x"].headers
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    return body


def pay_by_card(live: Live, client_secret: str, number: str) -> str:
    """What Stripe.js does with the client secret; returns the intent's status."""
    intent_id = client_secret.split("_secret_")[0]
    method = live.stripe.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {
                "number": number,
                "exp_month": 12,
                "exp_year": datetime.now(UTC).year + 3,
                "cvc": "123",
            },
        }
    )
    # localstripe's confirm takes no payment_method: set it with an update first.
    live.stripe.v1.payment_intents.update(intent_id, params={"payment_method": method.id})
    try:
        return str(live.stripe.v1.payment_intents.confirm(intent_id).status)
    except stripe.CardError as exc:
        assert exc.code == "card_declined"
        return str(live.stripe.v1.payment_intents.retrieve(intent_id).status)


def wait_for(probe: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"no webhook within {WAIT_SECONDS:.0f} s: {what}")
        time.sleep(0.2)


def contract_of(live: Live, contract_id: str) -> dict[str, Any]:
    body: dict[str, Any] = live.client.get(
        f"/api/v1/contracts/{contract_id}", headers=live.world["operator"].headers
    ).get_json()
    return body


def payments_of(live: Live, contract_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = live.client.get(
        f"/api/v1/contracts/{contract_id}/payments", headers=live.world["developer_x"].headers
    ).get_json()["items"]
    return items


def test_a_card_payment_activates_the_contract_and_splits_the_payout(live: Live) -> None:
    contract = signed(live)
    payment = start_payment(live, contract["id"])
    assert payment["amount_cents"] == contract["amount_cents"] > 0
    assert payment["client_secret"].startswith("pi_")

    assert pay_by_card(live, payment["client_secret"], GOOD_CARD) == "succeeded"

    paid = wait_for(
        lambda: (c := contract_of(live, contract["id"]))["payment_status"] == "paid" and c,
        "contract paid",
    )
    assert paid["status"] == "active"
    assert [p["status"] for p in payments_of(live, contract["id"])] == ["succeeded"]
    ledger = live.client.get(
        f"/api/v1/payouts?contract_id={contract['id']}", headers=live.world["studio_a"].headers
    ).get_json()
    [entry] = ledger["items"]
    amount = contract["amount_cents"]
    fee = amount * live.settings.fee_bps // 10_000
    assert entry["payment_id"] == payment["id"]
    assert entry["studio_id"] == live.world["studio_a"].org_id
    assert (entry["amount_cents"], entry["studio_amount_cents"], entry["fee_cents"]) == (
        amount,
        amount - fee,
        fee,
    )
    assert ledger["totals"] == [
        {
            "currency": contract["currency"],
            "amount_cents": amount,
            "studio_amount_cents": amount - fee,
            "fee_cents": fee,
        }
    ]


def test_a_declined_card_leaves_the_contract_unpaid_until_another_payment(live: Live) -> None:
    contract = signed(live)
    payment = start_payment(live, contract["id"])

    assert pay_by_card(live, payment["client_secret"], DECLINED_CARD) == ("requires_payment_method")

    [failed] = wait_for(
        lambda: [p for p in payments_of(live, contract["id"]) if p["status"] == "failed"],
        "payment failed",
    )
    assert failed["id"] == payment["id"] and failed["failure_message"]
    after = contract_of(live, contract["id"])
    assert (after["status"], after["payment_status"]) == ("signed", "unpaid")
    ledger = live.client.get(
        f"/api/v1/payouts?contract_id={contract['id']}", headers=live.world["operator"].headers
    ).get_json()
    assert ledger["items"] == [] and ledger["totals"] == []

    # The licensee starts again: the same intent is handed back, to retry with another card
    # (Stripe.js confirms it again); no second intent exists at Stripe that could be paid too.
    retry = start_payment(live, contract["id"])
    assert (retry["id"], retry["client_secret"]) == (payment["id"], payment["client_secret"])
    assert contract_of(live, contract["id"])["payment_status"] == "pending"
    intents = live.stripe.v1.payment_intents.list(params={"limit": 100}).data
    ours = [i for i in intents if i.metadata.to_dict().get("contract_id") == contract["id"]]
    assert [i.id for i in ours] == [payment["client_secret"].split("_secret_")[0]]
    # localstripe 1.15 cannot confirm a declined intent again (Stripe can): the retry itself
    # is not played here.


def legacy_second_payment(live: Live, contract: dict[str, Any]) -> str:
    """A second intent opened beside a failed one, as the API did before issue 16's fix, so
    that both can be paid at Stripe; returns its payment id."""
    gateway = StripeGateway(live.settings.stripe_api_key, api_base=live.settings.stripe_api_base)
    payment_id = f"pay_legacy{secrets.token_hex(8)}"
    intent = gateway.create_intent(
        amount_cents=contract["amount_cents"],
        currency=contract["currency"],
        metadata={"contract_id": contract["id"], "payment_id": payment_id},
        idempotency_key=payment_id,
    )
    with Session(live.engine) as session:
        session.add(
            Payment(
                id=payment_id,
                contract_id=contract["id"],
                amount_cents=contract["amount_cents"],
                currency=contract["currency"],
                status="pending",
                intent_id=intent.id,
                created_by=live.world["developer_x"].user_id,
                created_at=datetime.now(UTC) + timedelta(seconds=1),
            )
        )
        session.execute(
            update(Contract).where(Contract.id == contract["id"]).values(payment_status="pending")
        )
        session.commit()
    return payment_id


def failed_first(live: Live) -> tuple[dict[str, Any], dict[str, Any]]:
    """A signed contract whose first payment is `failed` while its intent can still be paid.

    localstripe cannot confirm a declined intent again, so the failure is written as its
    webhook would have written it, and the intent stays payable, as Stripe keeps it.
    """
    contract = signed(live)
    payment = start_payment(live, contract["id"])
    with Session(live.engine) as session:
        session.execute(
            update(Payment)
            .where(Payment.id == payment["id"])
            .values(status="failed", failed_at=datetime.now(UTC), failure_message="declined")
        )
        session.execute(
            update(Contract).where(Contract.id == contract["id"]).values(payment_status="unpaid")
        )
        session.commit()
    return contract, payment


def test_a_second_intent_paid_at_stripe_is_refunded_there_and_pays_nobody(live: Live) -> None:
    """Issue 16: intent 1 declined, intent 2 opened; the payer pays intent 2 and retries
    intent 1. The second success is refunded at localstripe and writes no payout."""
    contract, first = failed_first(live)
    second_id = legacy_second_payment(live, contract)
    second_intent = {p["id"]: p for p in payments_of(live, contract["id"])}[second_id]
    assert second_intent["status"] == "pending"
    with Session(live.engine) as session:
        second_secret = live.stripe.v1.payment_intents.retrieve(
            session.get_one(Payment, second_id).intent_id
        ).client_secret
    assert pay_by_card(live, second_secret, GOOD_CARD) == "succeeded"
    wait_for(lambda: contract_of(live, contract["id"])["status"] == "active", "contract active")
    assert pay_by_card(live, first["client_secret"], GOOD_CARD) == "succeeded"

    statuses = wait_for(
        lambda: (
            (s := {p["id"]: p for p in payments_of(live, contract["id"])})[first["id"]]["status"]
            == "refunded"
            and s
        ),
        "second success refunded",
    )
    assert statuses[second_id]["status"] == "succeeded"
    refunded = statuses[first["id"]]
    assert refunded["refund_id"].startswith("re_") and refunded["refunded_at"]
    first_intent = first["client_secret"].split("_secret_")[0]
    [refund] = live.stripe.v1.refunds.list(params={"payment_intent": first_intent}).data
    assert (refund.id, refund.amount, refund.status) == (
        refunded["refund_id"],
        contract["amount_cents"],
        "succeeded",
    )
    after = contract_of(live, contract["id"])
    assert (after["status"], after["payment_status"]) == ("active", "paid")
    ledger = live.client.get(
        f"/api/v1/payouts?contract_id={contract['id']}", headers=live.world["operator"].headers
    ).get_json()
    assert [e["payment_id"] for e in ledger["items"]] == [second_id]
    events = live.client.get(
        f"/api/v1/audit-events?object_id={first['id']}", headers=live.world["operator"].headers
    ).get_json()["items"]
    assert "payment.refunded" in [e["action"] for e in events]


def test_starting_again_cancels_an_older_payable_intent_at_stripe(live: Live) -> None:
    contract, first = failed_first(live)
    second_id = legacy_second_payment(live, contract)
    resumed = start_payment(live, contract["id"])
    assert resumed["id"] == second_id
    first_intent = first["client_secret"].split("_secret_")[0]
    assert live.stripe.v1.payment_intents.retrieve(first_intent).status == "canceled"
    with pytest.raises(stripe.InvalidRequestError):
        pay_by_card(live, first["client_secret"], GOOD_CARD)
    statuses = {p["id"]: p["status"] for p in payments_of(live, contract["id"])}
    assert statuses == {first["id"]: "canceled", second_id: "pending"}
