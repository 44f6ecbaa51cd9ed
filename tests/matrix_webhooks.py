"""Authorization matrix entries: webhook endpoints are their organization's own configuration.
Its owners manage them; any other organization, operators included, gets a 404."""

from __future__ import annotations

from config import Settings
from marketplace.webhooks.crypto import secret_box
from marketplace.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookMessage
from tests.matrix import ANON, Ctx, Expect, Route

TEST_BOX = secret_box(Settings(env="test", secret_key="test-secret-key-0123456789abcdef0123456789"))
RECEIVER = "http://127.0.0.1:9/hooks"


def own_only(status: int) -> Expect:
    def expect(actor: str, owner: str | None) -> int:
        if actor == ANON:
            return 401
        return status if actor == owner else 404

    return expect


def endpoint_row(ctx: Ctx, owner: str) -> WebhookEndpoint:
    endpoint = WebhookEndpoint(
        organization_id=ctx.world[owner].org_id,
        url=RECEIVER,
        event_types=["*"],
        enabled=True,
        secret_encrypted=TEST_BOX.seal("whsec_" + "A" * 44),
        consecutive_failures=0,
    )
    ctx.session.add(endpoint)
    ctx.session.flush()
    return endpoint


def endpoint_of(ctx: Ctx, owner: str) -> dict[str, str]:
    return {"endpoint_id": endpoint_row(ctx, owner).id}


def delivery_of(ctx: Ctx, owner: str) -> dict[str, str]:
    endpoint = endpoint_row(ctx, owner)
    message = WebhookMessage(organization_id=endpoint.organization_id, type="offer.made", body="{}")
    ctx.session.add(message)
    ctx.session.flush()
    delivery = WebhookDelivery(message_id=message.id, endpoint_id=endpoint.id, status="failed")
    ctx.session.add(delivery)
    ctx.session.flush()
    return {"endpoint_id": endpoint.id, "delivery_id": delivery.id}


def authenticated_any(status: int) -> Expect:
    return lambda actor, owner: 401 if actor == ANON else status


BASE = "/api/v1/webhook-endpoints"
ROUTES: list[Route] = [
    Route("GET", BASE, authenticated_any(200)),
    Route(
        "POST",
        BASE,
        authenticated_any(201),
        body=lambda ctx, owner: {"url": RECEIVER, "event_types": ["offer.made"]},
    ),
    Route("GET", BASE + "/{endpoint_id}", own_only(200), target=endpoint_of),
    Route(
        "PATCH",
        BASE + "/{endpoint_id}",
        own_only(200),
        target=endpoint_of,
        body=lambda ctx, owner: {"description": "changed"},
    ),
    Route("DELETE", BASE + "/{endpoint_id}", own_only(204), target=endpoint_of),
    Route("POST", BASE + "/{endpoint_id}/rotate-secret", own_only(200), target=endpoint_of),
    Route("GET", BASE + "/{endpoint_id}/deliveries", own_only(200), target=endpoint_of),
    Route(
        "POST",
        BASE + "/{endpoint_id}/deliveries/{delivery_id}/redeliver",
        own_only(202),
        target=delivery_of,
    ),
]
