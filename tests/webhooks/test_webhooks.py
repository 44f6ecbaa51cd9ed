"""Webhooks end to end: endpoints over the API, events published with the change that causes
them, delivered by the job runner to a real receiver on loopback that verifies each with the
standardwebhooks library; retries, rotation, confidentiality of payloads."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, select
from sqlalchemy.orm import Session
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from config import Settings
from marketplace.audit.models import AuditEvent
from marketplace.bootstrap import build_runtime
from marketplace.core.jobs import Job
from marketplace.core.queue import ListQueue
from marketplace.core.runtime import Runtime
from marketplace.core.storage.fake import InMemoryStorage
from marketplace.webhooks.crypto import secret_box
from marketplace.webhooks.models import WebhookDelivery, WebhookEndpoint
from marketplace.webhooks.service import DELIVERY_JOB, signing_secrets
from marketplace.worker.runner import JobRunner
from marketplace.worker.tasks import HANDLERS
from tests.deals import cleared_title, offer_body, post, request_body
from tests.disclosure import by_appearance, scenario
from tests.helpers import bound_sessions
from tests.webhooks.receiver import Receiver, running_receiver
from tests.world import World


class Clock:
    """Real time (the receiver checks webhook-timestamp against its own clock), moved on by
    hand to make retries due."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def runtime(
    settings: Settings, connection: Connection, clock: Clock, payments: Any
) -> Iterator[Runtime]:
    yield build_runtime(
        settings,
        session_factory=bound_sessions(connection),
        storage=InMemoryStorage("webhooks"),
        payments=payments,
        queue=ListQueue(),
        clock=clock,
    )


@pytest.fixture
def runner(runtime: Runtime) -> JobRunner:
    return JobRunner(runtime, {h.name: h for h in HANDLERS})


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as r:
        yield r


def run_deliveries(runner: JobRunner, session: Session, clock: Clock) -> list[str]:
    """Run every delivery job that is due, as workers would, until none can progress."""
    outcomes: list[str] = []
    while True:
        session.expire_all()
        due = session.scalars(
            select(Job.id)
            .where(Job.name == DELIVERY_JOB, Job.status == "queued", Job.run_after <= clock())
            .order_by(Job.id)
        ).all()
        ran = [runner.run(job_id) for job_id in due]
        outcomes += ran
        if all(r == "skipped" for r in ran):
            return outcomes


def add_endpoint(
    client: Any, world: World, who: str, receiver: Receiver, events: list[str] | None = None
) -> dict[str, Any]:
    created = post(
        client,
        "/api/v1/webhook-endpoints",
        world[who].headers,
        {"url": receiver.url, "event_types": events or ["*"], "description": "ours"},
    )
    receiver.secret = created["secret"]
    return created


def deal_opened(
    client: Any, session: Session, world: World, *, developer: str = "developer_x", **request: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A request naming studio A's film, and studio A's offer on it."""
    title = cleared_title(session, world["studio_a"].org_id)
    session.commit()
    req = post(
        client,
        "/api/v1/license-requests",
        world[developer].headers,
        request_body([title.id], **request),
    )
    offer = post(
        client,
        f"/api/v1/license-requests/{req['id']}/offers",
        world["studio_a"].headers,
        offer_body([title.id]),
    )
    return req, offer


class TestDelivery:
    def test_each_event_reaches_the_receiver_signed_and_verified(
        self,
        client: Any,
        session: Session,
        world: World,
        receiver: Receiver,
        runner: JobRunner,
        clock: Clock,
    ) -> None:
        add_endpoint(client, world, "studio_a", receiver)
        req, offer = deal_opened(client, session, world)
        assert receiver.requests == []  # nothing is sent by the request itself
        run_deliveries(runner, session, clock)
        assert [r.verified for r in receiver.requests] == [True, True]
        received, made = receiver.accepted
        assert received["type"] == "license_request.received"
        assert received["data"]["object"]["id"] == req["id"]
        assert received["data"]["links"] == {"self": f"/api/v1/license-requests/{req['id']}"}
        assert made["type"] == "offer.made"
        # The payload is the API's own view of the offer for the studio, field for field.
        assert (
            made["data"]["object"]
            == client.get(
                f"/api/v1/offers/{offer['id']}", headers=world["studio_a"].headers
            ).get_json()
        )
        headers = receiver.requests[1].headers
        assert headers["webhook-id"] == made["id"] and made["id"].startswith("evt_")
        delivery = session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)).first()
        assert delivery is not None
        assert (delivery.status, delivery.attempts, delivery.response_status) == (
            "succeeded",
            1,
            204,
        )
        assert delivery.duration_ms is not None

    def test_a_tampered_body_or_an_old_timestamp_fails_the_receivers_check(
        self,
        client: Any,
        session: Session,
        world: World,
        receiver: Receiver,
        runner: JobRunner,
        clock: Clock,
    ) -> None:
        add_endpoint(client, world, "studio_a", receiver)
        deal_opened(client, session, world)
        run_deliveries(runner, session, clock)
        genuine = receiver.requests[0]
        hook = Webhook(receiver.secret)
        assert hook.verify(genuine.body, genuine.headers)["type"] == "license_request.received"
        tampered = genuine.body.replace(b'"exclusive":false', b'"exclusive":true')
        assert tampered != genuine.body
        with pytest.raises(WebhookVerificationError):
            hook.verify(tampered, genuine.headers)
        # An old message signed correctly, replayed: too old.
        old = datetime.now(UTC) - timedelta(minutes=10)
        replayed = {
            **genuine.headers,
            "webhook-timestamp": str(int(old.timestamp())),
            "webhook-signature": hook.sign(genuine.headers["webhook-id"], old, genuine.body),
        }
        with pytest.raises(WebhookVerificationError, match="too old"):
            hook.verify(genuine.body, replayed)

    def test_a_receiver_down_then_up_gets_every_event_once_in_order(
        self,
        client: Any,
        session: Session,
        world: World,
        receiver: Receiver,
        runner: JobRunner,
        clock: Clock,
    ) -> None:
        add_endpoint(client, world, "studio_a", receiver)
        receiver.status = 503
        req, offer = deal_opened(client, session, world)
        post(
            client, f"/api/v1/offers/{offer['id']}/withdraw", world["studio_a"].headers, status=200
        )
        outcomes = run_deliveries(runner, session, clock)
        # The first delivery fails; the endpoint's later ones wait behind it (in order).
        assert outcomes.count("retrying") == 1 and "succeeded" not in outcomes
        first = session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)).first()
        assert first is not None
        assert (first.status, first.attempts, first.response_status) == ("pending", 1, 503)
        assert first.last_error == "HTTP 503"
        receiver.status = 204
        clock.advance(seconds=5)  # the first retry's delay
        run_deliveries(runner, session, clock)
        ids = [p["id"] for p in receiver.accepted]
        assert len(ids) == len(set(ids)) == 3
        assert [p["type"] for p in receiver.accepted] == [
            "license_request.received",
            "offer.made",
            "offer.withdrawn",
        ]
        # The failed attempt carried the same event id and the same body as the good one.
        down = receiver.requests[0]
        assert down.answered == 503 and down.headers["webhook-id"] == ids[0]
        assert json.loads(down.body) == receiver.accepted[0]
        session.expire_all()
        assert session.get(WebhookDelivery, first.id).attempts == 2  # type: ignore[union-attr]

    def test_during_a_rotation_both_secrets_verify(
        self,
        client: Any,
        session: Session,
        world: World,
        receiver: Receiver,
        runner: JobRunner,
        clock: Clock,
        settings: Settings,
    ) -> None:
        created = add_endpoint(client, world, "studio_a", receiver)
        old_secret = created["secret"]
        rotated = post(
            client,
            f"/api/v1/webhook-endpoints/{created['id']}/rotate-secret",
            world["studio_a"].headers,
            status=200,
        )
        assert rotated["secret"] != old_secret and rotated["secret"].startswith("whsec_")
        assert rotated["previous_secret_expires_at"] is not None
        receiver.secret = rotated["secret"]
        deal_opened(client, session, world)
        run_deliveries(runner, session, clock)
        delivered = receiver.requests[0]
        assert delivered.verified
        assert len(delivered.headers["webhook-signature"].split(" ")) == 2
        assert Webhook(old_secret).verify(delivered.body, delivered.headers)
        # After the grace period only the new secret signs.
        endpoint = session.get(WebhookEndpoint, created["id"])
        assert endpoint is not None
        box = secret_box(settings)
        assert signing_secrets(endpoint, box, clock() + timedelta(hours=23)) == [
            rotated["secret"],
            old_secret,
        ]
        assert signing_secrets(endpoint, box, clock() + timedelta(hours=25)) == [rotated["secret"]]

    def test_a_redirect_is_not_followed(
        self,
        client: Any,
        session: Session,
        world: World,
        receiver: Receiver,
        runner: JobRunner,
        clock: Clock,
    ) -> None:
        add_endpoint(client, world, "studio_a", receiver, events=["license_request.received"])
        receiver.status = 307
        deal_opened(client, session, world)
        assert run_deliveries(runner, session, clock) == ["retrying"]
        assert len(receiver.requests) == 1
        delivery = session.scalars(select(WebhookDelivery)).one()
        assert (delivery.response_status, delivery.status) == (307, "pending")


class TestConfidentiality:
    def test_a_studio_never_learns_which_developer_sent_an_anonymous_request(
        self,
        client: Any,
        connection: Connection,
        world: World,
        receiver: Receiver,
        runner: JobRunner,
        clock: Clock,
    ) -> None:
        worlds = []
        for developer in ("developer_x", "developer_y"):
            receiver.requests.clear()
            with scenario(connection) as session:
                add_endpoint(client, world, "studio_a", receiver)
                _, offer = deal_opened(client, session, world, developer=developer, anonymous=True)
                post(
                    client,
                    f"/api/v1/offers/{offer['id']}/counter",
                    world[developer].headers,
                    {"pricing": {"model": "flat", "amount_cents": 90_000, "currency": "usd"}},
                )
                run_deliveries(runner, session, clock)
                payloads = receiver.accepted
                assert [p["type"] for p in payloads] == [
                    "license_request.received",
                    "offer.made",
                    "offer.countered",
                ]
                text = json.dumps(payloads)
                for secret in (world[developer].org_id, world[developer].user_id, "Developer"):
                    assert secret not in text
                worlds.append(by_appearance(payloads))
        assert worlds[0] == worlds[1]


class TestEndpoints:
    def test_the_secret_is_shown_once_and_stored_encrypted(
        self, client: Any, session: Session, world: World
    ) -> None:
        created = post(
            client,
            "/api/v1/webhook-endpoints",
            world["studio_a"].headers,
            {"url": "https://hooks.example.com/clearcut", "event_types": ["offer.made"]},
        )
        secret = created["secret"]
        assert secret.startswith("whsec_") and len(secret) >= 6 + 32
        shown = client.get(
            f"/api/v1/webhook-endpoints/{created['id']}", headers=world["studio_a"].headers
        ).get_json()
        listed = client.get("/api/v1/webhook-endpoints", headers=world["studio_a"].headers)
        assert "secret" not in shown and secret not in listed.get_data(as_text=True)
        stored = session.get(WebhookEndpoint, created["id"])
        assert stored is not None and secret not in stored.secret_encrypted
        audit = session.scalars(select(AuditEvent).where(AuditEvent.object_id == created["id"]))
        assert secret not in json.dumps([e.data for e in audit])

    def test_members_may_not_manage_endpoints(self, client: Any, world: World) -> None:
        created = post(
            client,
            "/api/v1/webhook-endpoints",
            world["studio_a"].headers,
            {"url": "https://hooks.example.com/a", "event_types": ["*"]},
        )
        member = world["studio_a"].member_headers
        base = "/api/v1/webhook-endpoints"
        assert client.get(base, headers=member).status_code == 403
        assert (
            client.post(
                base, headers=member, json={"url": "https://x.example", "event_types": ["*"]}
            ).status_code
            == 403
        )
        assert client.get(f"{base}/{created['id']}", headers=member).status_code == 403
        assert client.delete(f"{base}/{created['id']}", headers=member).status_code == 403
        # Another organization's owner: as if it did not exist.
        assert (
            client.get(f"{base}/{created['id']}", headers=world["studio_b"].headers).status_code
            == 404
        )

    @pytest.mark.parametrize(
        ("url", "event_types"),
        [
            ("http://hooks.example.com/a", ["*"]),  # plain http off loopback
            ("ftp://127.0.0.1/a", ["*"]),
            ("https://hooks.example.com/a", ["offer.misspelt"]),
            ("https://user:pw@hooks.example.com/a", ["*"]),
        ],
    )
    def test_an_endpoint_that_cannot_receive_is_refused(
        self, client: Any, world: World, url: str, event_types: list[str]
    ) -> None:
        response = client.post(
            "/api/v1/webhook-endpoints",
            headers=world["studio_a"].headers,
            json={"url": url, "event_types": event_types},
        )
        assert response.status_code == 422, response.get_data(as_text=True)

    def test_deliveries_are_listed_and_redelivered_with_the_same_event_id(
        self,
        client: Any,
        session: Session,
        world: World,
        receiver: Receiver,
        runner: JobRunner,
        clock: Clock,
    ) -> None:
        created = add_endpoint(client, world, "studio_a", receiver, events=["offer.made"])
        deal_opened(client, session, world)
        run_deliveries(runner, session, clock)
        base = f"/api/v1/webhook-endpoints/{created['id']}/deliveries"
        listed = client.get(base, headers=world["studio_a"].headers).get_json()["items"]
        assert [(d["event_type"], d["status"], d["response_status"]) for d in listed] == [
            ("offer.made", "succeeded", 204)
        ]
        again = post(
            client, f"{base}/{listed[0]['id']}/redeliver", world["studio_a"].headers, status=202
        )
        assert again["status"] == "pending"
        run_deliveries(runner, session, clock)
        first, second = receiver.requests
        assert first.headers["webhook-id"] == second.headers["webhook-id"]
        assert first.body == second.body and second.verified
