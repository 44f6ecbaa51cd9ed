"""Billing services on a real session with the FakeGateway: payments, webhook events, ledger."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from contracts.models import Contract
from marketplace.audit.models import AuditEvent, AuditEventParty
from marketplace.billing import payouts, service, webhooks
from marketplace.billing.errors import PaymentProviderError
from marketplace.billing.gateway import FakeGateway, StripeGateway
from marketplace.billing.models import Payment, PayoutEntry, WebhookEvent
from marketplace.core.errors import (
    BadRequest,
    Forbidden,
    InvalidState,
    NotFound,
    ValidationFailed,
)
from tests.billing.support import (
    intent_event,
    make_contract,
    principal,
    signature_header,
)
from tests.world import World

SECRET = "whsec_service_tests"


def receive(
    session: Session,
    payload: bytes,
    *,
    fee_bps: int = 2000,
    secret: str = SECRET,
    gateway: FakeGateway | None = None,
) -> webhooks.WebhookReceipt:
    return webhooks.receive_webhook(
        session,
        payload,
        signature_header(payload, secret),
        secret=SECRET,
        fee_bps=fee_bps,
        gateway=gateway or FakeGateway(),
    )


def events_about(session: Session, object_id: str) -> list[AuditEvent]:
    return list(
        session.scalars(
            select(AuditEvent).where(AuditEvent.object_id == object_id).order_by(AuditEvent.id)
        )
    )


def parties_of(session: Session, event: AuditEvent) -> set[str]:
    return set(
        session.scalars(
            select(AuditEventParty.organization_id).where(AuditEventParty.event_id == event.id)
        )
    )


def count(session: Session, model: Any, *where: Any) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def start(
    session: Session, world: World, contract: Contract, gateway: FakeGateway, **kw: Any
) -> service.PaymentStart:
    payer = principal(world, kw.pop("payer", "developer_x"), member=kw.pop("member", False))
    return service.start_payment(session, payer, contract.id, gateway=gateway, **kw)


class TestStartPayment:
    def test_creates_an_intent_and_a_pending_payment(self, session: Session, world: World) -> None:
        gateway = FakeGateway()
        contract = make_contract(session, world, amount_cents=123_456, currency="eur")
        started = start(session, world, contract, gateway, member=True)
        payment = started.payment
        assert not started.reused
        assert (payment.status, payment.amount_cents, payment.currency) == (
            "pending",
            123_456,
            "eur",
        )
        assert payment.created_by == world["developer_x"].member_id
        [call] = gateway.created
        assert call["amount_cents"] == 123_456 and call["currency"] == "eur"
        assert call["metadata"] == {"contract_id": contract.id, "payment_id": payment.id}
        assert call["idempotency_key"] == service.idempotency_key_for(payment.id)
        intent = gateway.intents[payment.intent_id]
        assert started.client_secret == intent.client_secret
        assert contract.payment_status == "pending" and contract.status == "signed"
        [event] = events_about(session, payment.id)
        assert event.action == "payment.created"
        assert event.organization_id == world["studio_a"].org_id
        assert event.actor_user_id == world["developer_x"].member_id
        assert parties_of(session, event) == {world["studio_a"].org_id, world["developer_x"].org_id}

    def test_a_second_start_reuses_the_open_payment(self, session: Session, world: World) -> None:
        gateway = FakeGateway()
        contract = make_contract(session, world)
        first = start(session, world, contract, gateway)
        again = start(session, world, contract, gateway)
        assert again.reused
        assert again.payment.id == first.payment.id
        assert again.client_secret == first.client_secret
        assert len(gateway.created) == 1
        assert count(session, Payment, Payment.contract_id == contract.id) == 1

    def test_an_intent_canceled_at_stripe_is_replaced(self, session: Session, world: World) -> None:
        gateway = FakeGateway()
        contract = make_contract(session, world)
        first = start(session, world, contract, gateway)
        gateway.set_status(first.payment.intent_id, "canceled")
        second = start(session, world, contract, gateway)
        assert not second.reused and second.payment.id != first.payment.id
        assert first.payment.status == "canceled"
        assert second.payment.status == "pending" and len(gateway.created) == 2
        assert [e.action for e in events_about(session, first.payment.id)] == [
            "payment.created",
            "payment.canceled",
        ]

    def test_the_database_refuses_a_second_open_payment(
        self, session: Session, world: World
    ) -> None:
        contract = make_contract(session, world)
        start(session, world, contract, FakeGateway())
        with pytest.raises(IntegrityError), session.begin_nested():
            session.add(
                Payment(
                    contract_id=contract.id,
                    amount_cents=1,
                    currency="usd",
                    intent_id="pi_other",
                    created_by=world["developer_x"].user_id,
                )
            )
            session.flush()

    @pytest.mark.parametrize(
        ("payer", "error"),
        [
            ("studio_a", Forbidden),
            ("operator", Forbidden),
            ("developer_y", NotFound),
            ("studio_b", NotFound),
        ],
    )
    def test_only_the_licensee_pays(
        self, session: Session, world: World, payer: str, error: type[Exception]
    ) -> None:
        gateway = FakeGateway()
        contract = make_contract(session, world)
        with pytest.raises(error):
            start(session, world, contract, gateway, payer=payer)
        assert gateway.created == []

    @pytest.mark.parametrize(
        ("overrides", "days_left"),
        [
            ({"status": "pending_signatures"}, 30),
            ({"status": "terminated"}, 30),
            ({"status": "active", "payment_status": "paid"}, 30),
            ({"payment_status": "paid"}, 30),
            ({}, -2),  # signed, but its term ended: expired
        ],
    )
    def test_only_a_signed_unpaid_contract_can_be_paid(
        self, session: Session, world: World, overrides: dict[str, str], days_left: int
    ) -> None:
        gateway = FakeGateway()
        contract = make_contract(session, world, days_left=days_left, **overrides)
        with pytest.raises(InvalidState):
            start(session, world, contract, gateway)
        assert gateway.created == []

    def test_a_price_past_one_charge_is_422_naming_the_limit(
        self, session: Session, world: World
    ) -> None:
        # Brokering refuses such a deal; a contract made before it did is still never charged.
        gateway = FakeGateway()
        contract = make_contract(session, world, amount_cents=100_000_000)
        with pytest.raises(ValidationFailed) as refused:
            start(session, world, contract, gateway)
        assert "99,999,999" in refused.value.detail and gateway.created == []
        assert contract.payment_status == "unpaid"
        assert count(session, Payment, Payment.contract_id == contract.id) == 0
        ok = make_contract(session, world, amount_cents=99_999_999)
        assert start(session, world, ok, gateway).payment.amount_cents == 99_999_999

    def test_a_provider_failure_stores_nothing(self, session: Session, world: World) -> None:
        gateway = FakeGateway()
        gateway.failure = PaymentProviderError("down")
        contract = make_contract(session, world)
        with pytest.raises(PaymentProviderError):
            start(session, world, contract, gateway)
        assert count(session, Payment, Payment.contract_id == contract.id) == 0
        assert contract.payment_status == "unpaid"


class TestVerifyEvent:
    def test_a_stripe_signature_is_accepted(self) -> None:
        payload = intent_event("payment_intent.succeeded", "pi_1", amount=10, event_id="evt_a")
        event = webhooks.verify_event(payload, signature_header(payload, SECRET), SECRET)
        assert event["id"] == "evt_a" and event["data"]["object"]["id"] == "pi_1"

    @pytest.mark.parametrize(
        "forge",
        [
            pytest.param(lambda p: (p, None), id="no header"),
            pytest.param(lambda p: (p, signature_header(p, "whsec_other")), id="other secret"),
            pytest.param(
                lambda p: (
                    p.replace(b'"amount": 10', b'"amount": 99'),
                    signature_header(p, SECRET),
                ),
                id="changed payload",
            ),
            pytest.param(
                lambda p: (p, signature_header(p, SECRET, timestamp=int(time.time()) - 600)),
                id="stale timestamp",
            ),
            pytest.param(lambda p: (p, "garbage"), id="malformed header"),
            pytest.param(
                lambda p: (b"\xff\xfe", signature_header(b"\xff\xfe", SECRET)), id="not UTF-8"
            ),
            pytest.param(lambda p: (b"[1]", signature_header(b"[1]", SECRET)), id="not an event"),
        ],
    )
    def test_anything_else_is_a_bad_request(self, forge: Any) -> None:
        payload = intent_event("payment_intent.succeeded", "pi_1", amount=10)
        body, header = forge(payload)
        with pytest.raises(BadRequest):
            webhooks.verify_event(body, header, SECRET)


def _legacy_second_payment(session: Session, contract: Contract, gateway: FakeGateway) -> Payment:
    """A second intent opened beside a failed one, as start_payment did before (issue 16)."""
    intent = gateway.create_intent(
        amount_cents=contract.amount_cents,
        currency=contract.currency,
        metadata={"contract_id": contract.id},
        idempotency_key="legacy-second",
    )
    payment = Payment(
        contract_id=contract.id,
        amount_cents=contract.amount_cents,
        currency=contract.currency,
        status="pending",
        intent_id=intent.id,
        created_by="usr_legacy",
        created_at=datetime.now(UTC) + timedelta(seconds=1),
    )
    session.add(payment)
    contract.payment_status = "pending"
    session.flush()
    return payment


def _refuse(intent_id: str, *, idempotency_key: str) -> Any:
    raise PaymentProviderError("the payment provider failed to cancel a payment (400)")


class TestSignatureTimestamp:
    """Stripe signs `t=<unix time>`: more than five minutes from our clock, either way, is
    refused (an old one may be a replay; a future one comes from a clock we cannot trust)."""

    NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)

    def verify(self, seconds_from_now: int) -> dict[str, Any]:
        payload = intent_event("payment_intent.succeeded", "pi_1", amount=10, event_id="evt_t")
        t = int(self.NOW.timestamp()) + seconds_from_now
        return webhooks.verify_event(
            payload, signature_header(payload, SECRET, timestamp=t), SECRET, now=self.NOW
        )

    @pytest.mark.parametrize("seconds", [-300, -1, 0, 1, 300])
    def test_within_five_minutes_either_way_is_accepted(self, seconds: int) -> None:
        assert self.verify(seconds)["id"] == "evt_t"

    @pytest.mark.parametrize(
        ("seconds", "words"),
        [
            (-301, "301 s behind"),
            (-86_400, "86400 s behind"),
            (301, "301 s ahead of"),
            (3600, "3600 s ahead of"),
        ],
    )
    def test_further_either_way_is_a_bad_request(self, seconds: int, words: str) -> None:
        with pytest.raises(BadRequest) as refused:
            self.verify(seconds)
        assert words in refused.value.detail and "300 s either way" in refused.value.detail

    def test_a_future_event_changes_nothing(self, session: Session, world: World) -> None:
        gateway = FakeGateway()
        contract = make_contract(session, world)
        payment = start(session, world, contract, gateway).payment
        payload = intent_event(
            "payment_intent.succeeded", payment.intent_id, amount=payment.amount_cents
        )
        an_hour_ahead = int(self.NOW.timestamp()) + 3600
        with pytest.raises(BadRequest):
            webhooks.receive_webhook(
                session,
                payload,
                signature_header(payload, SECRET, timestamp=an_hour_ahead),
                secret=SECRET,
                fee_bps=2000,
                gateway=gateway,
                now=self.NOW,
            )
        assert payment.status == "pending" and contract.payment_status == "pending"
        assert count(session, WebhookEvent) == 0


class TestPaymentEvents:
    def _pending(
        self, session: Session, world: World, **kw: Any
    ) -> tuple[Contract, Payment, FakeGateway]:
        gateway = FakeGateway()
        contract = make_contract(session, world, **kw)
        started = start(session, world, contract, gateway)
        return contract, started.payment, gateway

    def test_success_activates_the_contract_and_writes_the_ledger(
        self, session: Session, world: World
    ) -> None:
        contract, payment, _ = self._pending(session, world, amount_cents=100_001)
        payload = intent_event(
            "payment_intent.succeeded", payment.intent_id, amount=100_001, event_id="evt_ok"
        )
        receipt = receive(session, payload, fee_bps=1500)
        assert (receipt.event_id, receipt.outcome) == ("evt_ok", "processed")
        assert payment.status == "succeeded" and payment.succeeded_at is not None
        assert (contract.status, contract.payment_status) == ("active", "paid")
        assert contract.activated_at is not None
        [entry] = session.scalars(select(PayoutEntry).where(PayoutEntry.payment_id == payment.id))
        assert (entry.contract_id, entry.studio_id) == (contract.id, world["studio_a"].org_id)
        assert (entry.amount_cents, entry.fee_bps, entry.currency) == (100_001, 1500, "usd")
        assert entry.fee_cents == 15_000  # 15 % of 100 001 cents, rounded down
        assert entry.studio_amount_cents == 85_001
        audit = [e.action for e in events_about(session, payment.id)]
        assert audit == ["payment.created", "payment.succeeded"]
        [activated] = events_about(session, contract.id)
        assert activated.action == "contract.activated" and activated.actor_user_id is None
        assert activated.organization_id == world["studio_a"].org_id
        assert world["developer_x"].org_id in parties_of(session, activated)
        [recorded] = events_about(session, entry.id)
        assert recorded.action == "payout.recorded" and recorded.data["fee_cents"] == 15_000

    def test_a_replayed_event_is_processed_once(self, session: Session, world: World) -> None:
        contract, payment, _ = self._pending(session, world)
        payload = intent_event(
            "payment_intent.succeeded", payment.intent_id, amount=payment.amount_cents
        )
        assert receive(session, payload).outcome == "processed"
        audit_before = count(session, AuditEvent)
        # The same event again, even re-signed later: nothing changes.
        assert receive(session, payload).outcome == "duplicate"
        assert receive(session, payload).outcome == "duplicate"
        assert count(session, PayoutEntry, PayoutEntry.payment_id == payment.id) == 1
        assert count(session, AuditEvent) == audit_before
        event_id = json.loads(payload)["id"]
        assert count(session, WebhookEvent, WebhookEvent.event_id == event_id) == 1

    def test_a_failure_reopens_the_contract_then_a_retry_succeeds(
        self, session: Session, world: World
    ) -> None:
        contract, payment, _ = self._pending(session, world)
        failed = intent_event(
            "payment_intent.payment_failed",
            payment.intent_id,
            amount=payment.amount_cents,
            failure="Your card was declined.",
        )
        assert receive(session, failed).outcome == "processed"
        assert (payment.status, payment.failure_message) == ("failed", "Your card was declined.")
        assert (contract.status, contract.payment_status) == ("signed", "unpaid")
        assert count(session, PayoutEntry, PayoutEntry.payment_id == payment.id) == 0
        # The payer tries another card on the same intent, and it goes through.
        succeeded = intent_event(
            "payment_intent.succeeded", payment.intent_id, amount=payment.amount_cents
        )
        assert receive(session, succeeded).outcome == "processed"
        assert (payment.status, payment.failure_message) == ("succeeded", None)
        assert (contract.status, contract.payment_status) == ("active", "paid")
        assert count(session, PayoutEntry, PayoutEntry.payment_id == payment.id) == 1
        assert [e.action for e in events_about(session, payment.id)] == [
            "payment.created",
            "payment.failed",
            "payment.succeeded",
        ]

    def test_after_a_failure_a_new_start_hands_back_the_same_intent(
        self, session: Session, world: World
    ) -> None:
        contract, payment, gateway = self._pending(session, world)
        receive(
            session,
            intent_event(
                "payment_intent.payment_failed", payment.intent_id, amount=payment.amount_cents
            ),
        )
        assert (payment.status, contract.payment_status) == ("failed", "unpaid")
        again = start(session, world, contract, gateway)
        # The declined intent is still payable at Stripe: it is the one to retry.
        assert again.reused and again.payment.id == payment.id
        assert again.client_secret == gateway.intents[payment.intent_id].client_secret
        assert (payment.status, contract.payment_status) == ("pending", "pending")
        assert len(gateway.created) == 1 and gateway.canceled == []
        assert [e.action for e in events_about(session, payment.id)] == [
            "payment.created",
            "payment.failed",
            "payment.reopened",
        ]
        # It can fail again, and be retried again.
        receive(
            session,
            intent_event(
                "payment_intent.payment_failed", payment.intent_id, amount=payment.amount_cents
            ),
        )
        assert (payment.status, contract.payment_status) == ("failed", "unpaid")

    def test_after_a_failure_an_intent_canceled_at_stripe_is_replaced(
        self, session: Session, world: World
    ) -> None:
        contract, payment, gateway = self._pending(session, world)
        receive(
            session,
            intent_event(
                "payment_intent.payment_failed", payment.intent_id, amount=payment.amount_cents
            ),
        )
        gateway.set_status(payment.intent_id, "canceled")
        again = start(session, world, contract, gateway)
        assert not again.reused and again.payment.id != payment.id
        assert payment.status == "canceled" and gateway.canceled == []  # nothing left to cancel
        assert contract.payment_status == "pending" and len(gateway.created) == 2

    def test_an_intent_that_cannot_pay_this_contract_is_canceled_at_stripe_first(
        self, session: Session, world: World
    ) -> None:
        contract, payment, gateway = self._pending(session, world)
        # Payable at Stripe, but not for this amount: never handed out, never left payable.
        intent = gateway.intents[payment.intent_id]
        gateway.intents[payment.intent_id] = replace(intent, amount=intent.amount + 1)
        again = start(session, world, contract, gateway)
        assert not again.reused and again.payment.id != payment.id
        assert gateway.canceled == [payment.intent_id]
        assert gateway.intents[payment.intent_id].status == "canceled"
        assert payment.status == "canceled" and again.payment.status == "pending"
        [canceled] = [e for e in events_about(session, payment.id) if e.action != "payment.created"]
        assert canceled.action == "payment.canceled" and canceled.data["canceled_at_stripe"]

    def test_older_payable_intents_are_canceled_at_stripe_and_the_newest_resumed(
        self, session: Session, world: World
    ) -> None:
        """What the version before this one left: a failed payment beside a newer one."""
        contract, first, gateway = self._pending(session, world)
        receive(
            session,
            intent_event(
                "payment_intent.payment_failed", first.intent_id, amount=first.amount_cents
            ),
        )
        second = _legacy_second_payment(session, contract, gateway)
        again = start(session, world, contract, gateway)
        assert again.reused and again.payment.id == second.id
        assert gateway.canceled == [first.intent_id]
        assert (first.status, second.status, contract.payment_status) == (
            "canceled",
            "pending",
            "pending",
        )

    def test_a_canceling_refusal_at_stripe_changes_nothing(
        self, session: Session, world: World
    ) -> None:
        contract, payment, gateway = self._pending(session, world)
        intent = gateway.intents[payment.intent_id]
        gateway.intents[payment.intent_id] = replace(intent, amount=intent.amount + 1)
        gateway.cancel_intent = _refuse  # type: ignore[method-assign]
        with pytest.raises(PaymentProviderError):
            start(session, world, contract, gateway)
        assert len(gateway.created) == 1  # no second intent while the first may be paid

    def test_a_second_success_is_refunded_and_pays_nobody(
        self, session: Session, world: World
    ) -> None:
        contract, first, gateway = self._pending(session, world)
        receive(
            session,
            intent_event(
                "payment_intent.payment_failed", first.intent_id, amount=first.amount_cents
            ),
            gateway=gateway,
        )
        second = _legacy_second_payment(session, contract, gateway)
        # The payer retries the first intent at Stripe, and also pays the second.
        for payment in (second, first):
            gateway.set_status(payment.intent_id, "succeeded")
            succeeded = intent_event(
                "payment_intent.succeeded", payment.intent_id, amount=payment.amount_cents
            )
            assert receive(session, succeeded, gateway=gateway).outcome == "processed"
        assert (second.status, first.status) == ("succeeded", "refunded")
        assert (contract.status, contract.payment_status) == ("active", "paid")
        [refund] = gateway.refunds
        assert refund["intent_id"] == first.intent_id and first.refund_id == refund["id"]
        assert refund["metadata"]["paid_by"] == second.id
        assert first.refunded_at is not None
        assert count(session, PayoutEntry, PayoutEntry.contract_id == contract.id) == 1
        assert count(session, PayoutEntry, PayoutEntry.payment_id == first.id) == 0
        [refunded] = [e for e in events_about(session, first.id) if e.action == "payment.refunded"]
        assert refunded.data["refund_id"] == refund["id"]
        assert refunded.data["paid_by"] == second.id
        assert parties_of(session, refunded) == {
            world["studio_a"].org_id,
            world["developer_x"].org_id,
        }
        # Stripe sending the event again (a new event id) refunds nothing more.
        again = intent_event("payment_intent.succeeded", first.intent_id, amount=first.amount_cents)
        assert receive(session, again, gateway=gateway).outcome == "ignored"
        assert len(gateway.refunds) == 1

    def test_a_refund_stripe_refuses_is_a_provider_error_and_records_nothing(
        self, session: Session, world: World
    ) -> None:
        contract, first, gateway = self._pending(session, world)
        receive(
            session,
            intent_event(
                "payment_intent.payment_failed", first.intent_id, amount=first.amount_cents
            ),
        )
        second = _legacy_second_payment(session, contract, gateway)
        receive(
            session,
            intent_event("payment_intent.succeeded", second.intent_id, amount=second.amount_cents),
        )
        payload = intent_event(
            "payment_intent.succeeded", first.intent_id, amount=first.amount_cents
        )
        gateway.failure = PaymentProviderError("stripe is down")
        with pytest.raises(PaymentProviderError), session.begin_nested():
            receive(session, payload, gateway=gateway)
        assert first.status == "failed"
        event_id = json.loads(payload)["id"]
        assert count(session, WebhookEvent, WebhookEvent.event_id == event_id) == 0

    def test_the_database_refuses_a_second_succeeded_payment(
        self, session: Session, world: World
    ) -> None:
        contract, first, gateway = self._pending(session, world)
        receive(
            session,
            intent_event("payment_intent.succeeded", first.intent_id, amount=first.amount_cents),
        )
        with pytest.raises(IntegrityError), session.begin_nested():
            session.add(
                Payment(
                    contract_id=contract.id,
                    amount_cents=1,
                    currency="usd",
                    status="succeeded",
                    intent_id="pi_second_success",
                    created_by=world["developer_x"].user_id,
                )
            )
            session.flush()

    def test_a_late_failure_does_not_undo_a_success(self, session: Session, world: World) -> None:
        contract, payment, _ = self._pending(session, world)
        amount = payment.amount_cents
        receive(session, intent_event("payment_intent.succeeded", payment.intent_id, amount=amount))
        late = intent_event("payment_intent.payment_failed", payment.intent_id, amount=amount)
        assert receive(session, late).outcome == "ignored"
        assert payment.status == "succeeded"
        assert (contract.status, contract.payment_status) == ("active", "paid")

    def test_a_mismatched_amount_is_not_applied(self, session: Session, world: World) -> None:
        contract, payment, _ = self._pending(session, world)
        payload = intent_event(
            "payment_intent.succeeded", payment.intent_id, amount=payment.amount_cents - 1
        )
        assert receive(session, payload).outcome == "ignored"
        assert payment.status == "pending" and contract.status == "signed"
        assert count(session, PayoutEntry, PayoutEntry.payment_id == payment.id) == 0

    @pytest.mark.parametrize(
        "payload",
        [
            intent_event("payment_intent.succeeded", "pi_not_ours", amount=100),
            intent_event("payment_intent.created", "pi_not_ours", amount=100),
            intent_event("customer.created", "cus_1", amount=0),
        ],
    )
    def test_other_events_are_acknowledged_and_ignored(
        self, session: Session, world: World, payload: bytes
    ) -> None:
        audit_before = count(session, AuditEvent)
        receipt = receive(session, payload)
        assert receipt.outcome == "ignored"
        assert count(session, AuditEvent) == audit_before
        assert receive(session, payload).outcome == "duplicate"

    def test_paying_a_terminated_contract_records_the_money_but_keeps_it_terminated(
        self, session: Session, world: World
    ) -> None:
        contract, payment, _ = self._pending(session, world)
        contract.status = "terminated"
        session.flush()
        receive(
            session,
            intent_event(
                "payment_intent.succeeded", payment.intent_id, amount=payment.amount_cents
            ),
        )
        assert (contract.status, contract.payment_status) == ("terminated", "paid")
        assert contract.activated_at is None
        assert count(session, PayoutEntry, PayoutEntry.payment_id == payment.id) == 1


class TestLedger:
    @given(
        amount=st.integers(min_value=0, max_value=10**15),
        fee_bps=st.integers(min_value=0, max_value=10_000),
    )
    def test_the_split_always_adds_up_and_rounds_the_fee_down(
        self, amount: int, fee_bps: int
    ) -> None:
        studio, fee = payouts.split_amount(amount, fee_bps)
        assert studio + fee == amount
        assert 0 <= fee <= amount and studio >= 0
        # fee is the largest whole number of cents not above amount × bps / 10 000.
        assert fee * 10_000 <= amount * fee_bps < (fee + 1) * 10_000

    @pytest.mark.parametrize(("amount", "fee_bps"), [(-1, 100), (100, -1), (100, 10_001)])
    def test_impossible_splits_are_refused(self, amount: int, fee_bps: int) -> None:
        with pytest.raises(ValueError):
            payouts.split_amount(amount, fee_bps)

    def test_the_database_refuses_an_entry_that_does_not_add_up(
        self, session: Session, world: World
    ) -> None:
        contract = make_contract(session, world)
        payment = start(session, world, contract, FakeGateway()).payment
        with pytest.raises(IntegrityError), session.begin_nested():
            session.add(
                PayoutEntry(
                    contract_id=contract.id,
                    studio_id=contract.studio_id,
                    payment_id=payment.id,
                    amount_cents=1000,
                    studio_amount_cents=800,
                    fee_cents=199,
                    fee_bps=2000,
                    currency="usd",
                )
            )
            session.flush()

    def _paid(
        self, session: Session, world: World, studio: str, amount: int, currency: str
    ) -> None:
        contract = make_contract(
            session, world, studio=studio, amount_cents=amount, currency=currency
        )
        payment = start(session, world, contract, FakeGateway()).payment
        receive(
            session,
            intent_event(
                "payment_intent.succeeded", payment.intent_id, amount=amount, currency=currency
            ),
            fee_bps=1000,
        )

    def test_totals_per_currency_over_what_each_viewer_may_see(
        self, session: Session, world: World
    ) -> None:
        self._paid(session, world, "studio_a", 10_000, "usd")
        self._paid(session, world, "studio_a", 5_005, "usd")
        self._paid(session, world, "studio_a", 7_000, "eur")
        self._paid(session, world, "studio_b", 90_000, "usd")

        def totals(name: str, **filters: str) -> dict[str, tuple[int, int, int]]:
            stmt = payouts.visible_payouts(principal(world, name), **filters)
            return {
                t.currency: (t.amount_cents, t.studio_amount_cents, t.fee_cents)
                for t in payouts.payout_totals(session, stmt)
            }

        assert totals("studio_a") == {"eur": (7_000, 6_300, 700), "usd": (15_005, 13_505, 1_500)}
        assert totals("studio_b") == {"usd": (90_000, 81_000, 9_000)}
        assert totals("operator") == {
            "eur": (7_000, 6_300, 700),
            "usd": (105_005, 94_505, 10_500),
        }
        assert totals("operator", currency="usd", studio_id=world["studio_b"].org_id) == {
            "usd": (90_000, 81_000, 9_000)
        }
        # A studio naming another studio sees nothing of it.
        assert totals("studio_a", studio_id=world["studio_b"].org_id) == {}

    def test_developers_have_no_ledger(self, world: World) -> None:
        with pytest.raises(Forbidden):
            payouts.visible_payouts(principal(world, "developer_x"))

    def test_record_payout_uses_the_payment_amount(self, session: Session, world: World) -> None:
        contract = make_contract(session, world, amount_cents=999)
        payment = start(session, world, contract, FakeGateway()).payment
        now = datetime.now(UTC) - timedelta(minutes=1)
        entry = payouts.record_payout(session, payment, contract, fee_bps=10_000, now=now)
        assert (entry.studio_amount_cents, entry.fee_cents, entry.created_at) == (0, 999, now)


class TestStripeGateway:
    def test_production_parameters_are_left_out_for_the_emulator(self) -> None:
        metadata = {"contract_id": "ctr_1", "payment_id": "pay_1"}
        production = StripeGateway("sk_test_unit").production_params(metadata)
        assert production["description"] == "Clearcut licence ctr_1"
        assert production["transfer_group"] == "ctr_1"
        # localstripe refuses both (400), and real Stripe refuses automatic_payment_methods
        # beside payment_method_types.
        assert "automatic_payment_methods" not in production
        emulated = StripeGateway("sk_test_unit", api_base="http://127.0.0.1:9")
        assert emulated.production_params(metadata) == {}

    def test_a_refusal_becomes_a_provider_error(self) -> None:
        # Nothing listens on port 9 (discard): the connection is refused at once.
        gateway = StripeGateway("sk_test_unit", api_base="http://127.0.0.1:9")
        with pytest.raises(PaymentProviderError) as raised:
            gateway.retrieve_intent("pi_missing")
        assert "retry later" in raised.value.detail
