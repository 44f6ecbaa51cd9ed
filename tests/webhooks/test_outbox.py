"""publish(): the outbox written in the caller's transaction, for subscribed enabled endpoints
only; every event the marketplace publishes; an endpoint disabled after days of failures."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from config import Settings
from marketplace.audit.models import AuditEvent
from marketplace.brokering.models import Offer
from marketplace.brokering.service import expire_offers
from marketplace.core.jobs import Job
from marketplace.webhooks.crypto import secret_box
from marketplace.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookMessage
from marketplace.webhooks.service import (
    DELIVERY_ATTEMPTS,
    DELIVERY_JOB,
    RETRY_DELAYS,
    publish,
    record_attempt,
)
from tests.deals import cleared_title, offer_body, post, request_body, signed_contract
from tests.world import World

TEST_BOX = secret_box(Settings(env="test", secret_key="test-secret-key-0123456789abcdef0123456789"))


def endpoint(session: Session, org_id: str, events: list[str], *, enabled: bool = True) -> str:
    row = WebhookEndpoint(
        organization_id=org_id,
        url="http://127.0.0.1:9/h",
        event_types=events,
        enabled=enabled,
        secret_encrypted=TEST_BOX.seal("whsec_" + "A" * 44),
        consecutive_failures=0,
    )
    session.add(row)
    session.flush()
    return row.id


def types_for(session: Session, org_id: str) -> list[str]:
    session.expire_all()
    return list(
        session.scalars(
            select(WebhookMessage.type)
            .where(WebhookMessage.organization_id == org_id)
            .order_by(WebhookMessage.created_at, WebhookMessage.id)
        )
    )


class TestPublish:
    def test_only_subscribed_enabled_endpoints_get_a_delivery_and_a_job(
        self, session: Session, world: World
    ) -> None:
        a, b, x = (world[n].org_id for n in ("studio_a", "studio_b", "developer_x"))
        subscribed = endpoint(session, a, ["offer.made"])
        endpoint(session, a, ["offer.rejected"])
        endpoint(session, b, ["*"], enabled=False)
        developers = endpoint(session, x, ["*"])
        seen: list[str] = []

        def payload_for(who: Any) -> dict[str, Any]:
            seen.append(who.organization_id)
            return {"for": who.organization_id}

        messages = publish(
            session,
            "offer.made",
            organization_ids=[a, b, x, a],
            payload_for=payload_for,
            path="/api/v1/offers/ofr_x",
        )
        # Rendered once per organization that receives it, for that organization.
        assert seen == [a, x]
        assert [m.organization_id for m in messages] == [a, x]
        assert [json.loads(m.body)["data"]["object"] for m in messages] == [{"for": a}, {"for": x}]
        deliveries = session.scalars(select(WebhookDelivery)).all()
        assert sorted(d.endpoint_id for d in deliveries) == sorted([subscribed, developers])
        jobs = session.scalars(select(Job).where(Job.name == DELIVERY_JOB)).all()
        assert sorted((j.args["delivery_id"], j.ordering_key) for j in jobs) == sorted(
            (d.id, d.endpoint_id) for d in deliveries
        )
        assert {j.max_attempts for j in jobs} == {DELIVERY_ATTEMPTS}

    def test_the_schedule_spans_about_three_days(self) -> None:
        assert timedelta(days=3) <= timedelta(seconds=sum(RETRY_DELAYS)) < timedelta(days=4)


class TestEventsPublished:
    def test_a_deal_tells_each_party_each_step(
        self, client: Any, session: Session, world: World
    ) -> None:
        studio, developer = world["studio_a"].org_id, world["developer_x"].org_id
        endpoint(session, studio, ["*"])
        endpoint(session, developer, ["*"])
        title = cleared_title(session, studio)
        session.commit()
        contract = signed_contract(client, world, [title.id])
        post(
            client,
            f"/api/v1/contracts/{contract['id']}/terminate",
            world["operator"].headers,
            {"reason": "breach"},
            status=200,
        )
        steps = [
            "offer.made",
            "offer.accepted",
            "contract.signature_added",
            "contract.signature_added",
            "contract.signed",
            "contract.terminated",
        ]
        assert types_for(session, studio) == ["license_request.received", *steps]
        assert types_for(session, developer) == steps

    def test_expiring_offers_publish_offer_expired(
        self, client: Any, session: Session, world: World
    ) -> None:
        studio = world["studio_a"].org_id
        endpoint(session, studio, ["offer.expired"])
        title = cleared_title(session, studio)
        session.commit()
        req = post(
            client,
            "/api/v1/license-requests",
            world["developer_x"].headers,
            request_body([title.id]),
        )
        offer = post(
            client,
            f"/api/v1/license-requests/{req['id']}/offers",
            world["studio_a"].headers,
            offer_body([title.id]),
        )
        row = session.get(Offer, offer["id"])
        assert row is not None
        expire_offers(session, now=row.expires_at + timedelta(seconds=1))
        assert types_for(session, studio) == ["offer.expired"]


class TestDisabling:
    def test_a_delivery_failing_for_good_disables_its_endpoint_with_an_audit_event(
        self, session: Session, world: World
    ) -> None:
        endpoint_id = endpoint(session, world["studio_a"].org_id, ["*"])
        message = WebhookMessage(
            organization_id=world["studio_a"].org_id, type="offer.made", body="{}"
        )
        session.add(message)
        session.flush()
        delivery = WebhookDelivery(message_id=message.id, endpoint_id=endpoint_id, status="pending")
        session.add(delivery)
        session.flush()
        now = datetime(2026, 12, 6, tzinfo=UTC)
        for attempt in range(1, DELIVERY_ATTEMPTS + 1):
            disabled = record_attempt(
                session,
                delivery.id,
                status=503,
                duration_ms=3,
                error=None,
                now=now,
                final=attempt == DELIVERY_ATTEMPTS,
            )
            assert (disabled is not None) == (attempt == DELIVERY_ATTEMPTS)
        row = session.get(WebhookEndpoint, endpoint_id)
        assert row is not None and not row.enabled and row.disabled_reason
        assert delivery.status == "failed" and delivery.attempts == DELIVERY_ATTEMPTS
        assert session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "webhook_endpoint.disabled",
                AuditEvent.object_id == endpoint_id,
            )
        ).one()
