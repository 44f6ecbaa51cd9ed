"""Webhook endpoints (an organization's owners manage them), publishing events into the outbox
in the caller's transaction, and recording what each delivery attempt got."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from marketplace.accounts.models import Organization
from marketplace.accounts.principal import Principal
from marketplace.audit.service import record_event
from marketplace.core.db import format_utc, utcnow
from marketplace.core.errors import Forbidden, InvalidState, NotFound, ValidationFailed
from marketplace.core.ids import new_id
from marketplace.core.jobs import enqueue
from marketplace.webhooks.crypto import SecretBox, new_secret
from marketplace.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookMessage
from marketplace.webhooks.safety import UnsafeTarget, check_url

#: Every event a webhook endpoint may subscribe to ("*": all of them).
EVENT_TYPES = (
    "license_request.received",
    "offer.made",
    "offer.countered",
    "offer.accepted",
    "offer.rejected",
    "offer.withdrawn",
    "offer.expired",
    "contract.signature_added",
    "contract.signed",
    "contract.activated",
    "contract.terminated",
    "contract.expired",
)
ALL_EVENTS = "*"
#: How long the secret before a rotation still signs, so receivers can switch over.
ROTATION_GRACE = timedelta(hours=24)
DELIVERY_JOB = "webhooks.deliver"
#: Delays between a delivery's attempts: 5 s, 5 min, 30 min, 2 h, 5 h, then 10 h; 13 attempts
#: over about 3 days and 5 hours.
RETRY_DELAYS = (5, 300, 1800, 7200, 18000, 36000, 36000, 36000, 36000, 36000, 36000, 36000)
DELIVERY_ATTEMPTS = len(RETRY_DELAYS) + 1


def retry_delay(attempts: int) -> float:
    """Delay before the next attempt of a delivery after `attempts` failed ones."""
    return float(RETRY_DELAYS[min(max(attempts, 1), len(RETRY_DELAYS)) - 1])


# ---------------------------------------------------------------- endpoints


def _owner(viewer: Principal) -> None:
    if not viewer.is_owner:
        raise Forbidden("only an owner of the organization manages its webhook endpoints")


def _event_types(types: Iterable[str]) -> list[str]:
    chosen = sorted(set(types))
    if not chosen:
        raise ValidationFailed(
            "subscribe to at least one event", errors={"event_types": ["Name at least one."]}
        )
    if bad := [t for t in chosen if t != ALL_EVENTS and t not in EVENT_TYPES]:
        raise ValidationFailed(
            "unknown event types", errors={"event_types": [f"Unknown event: {t}." for t in bad]}
        )
    return chosen


def _url(url: str, *, production: bool) -> str:
    try:
        check_url(url, production=production)
    except UnsafeTarget as exc:
        raise ValidationFailed(
            "the URL cannot receive webhooks", errors={"url": [f"{exc}."]}
        ) from None
    return url


def visible_endpoints(viewer: Principal) -> Select[WebhookEndpoint]:
    """An organization's own endpoints; nobody else's (operators included: they are its
    configuration, with its receivers' addresses)."""
    return select(WebhookEndpoint).where(WebhookEndpoint.organization_id == viewer.organization_id)


def list_endpoints(viewer: Principal) -> Select[WebhookEndpoint]:
    _owner(viewer)
    return visible_endpoints(viewer)


def get_endpoint(session: Session, viewer: Principal, endpoint_id: str) -> WebhookEndpoint:
    endpoint = session.scalars(
        visible_endpoints(viewer).where(WebhookEndpoint.id == endpoint_id)
    ).one_or_none()
    if endpoint is None:
        raise NotFound(f"webhook endpoint {endpoint_id} not found")
    _owner(viewer)
    return endpoint


def _audit(
    session: Session,
    viewer: Principal | None,
    action: str,
    endpoint: WebhookEndpoint,
    data: dict[str, Any] | None = None,
) -> None:
    record_event(
        session,
        viewer,
        action,
        object_id=endpoint.id,
        organization_id=endpoint.organization_id,
        data=data or {},
    )


def create_endpoint(
    session: Session,
    viewer: Principal,
    box: SecretBox,
    data: dict[str, Any],
    *,
    production: bool,
) -> tuple[WebhookEndpoint, str]:
    """Add an endpoint; returns it with its signing secret, which is shown this once."""
    _owner(viewer)
    secret = new_secret()
    endpoint = WebhookEndpoint(
        organization_id=viewer.organization_id,
        url=_url(data["url"], production=production),
        event_types=_event_types(data["event_types"]),
        enabled=data.get("enabled", True),
        description=data.get("description"),
        secret_encrypted=box.seal(secret),
        consecutive_failures=0,
    )
    session.add(endpoint)
    session.flush()
    _audit(
        session,
        viewer,
        "webhook_endpoint.created",
        endpoint,
        {"url": endpoint.url, "event_types": endpoint.event_types},
    )
    return endpoint, secret


def update_endpoint(
    session: Session,
    viewer: Principal,
    endpoint_id: str,
    data: dict[str, Any],
    *,
    production: bool,
    now: datetime | None = None,
) -> WebhookEndpoint:
    """Change an endpoint's URL, events, description, or enable it again (its failure count
    starts over)."""
    endpoint = get_endpoint(session, viewer, endpoint_id)
    if "url" in data:
        endpoint.url = _url(data["url"], production=production)
    if "event_types" in data:
        endpoint.event_types = _event_types(data["event_types"])
    if "description" in data:
        endpoint.description = data["description"]
    if "enabled" in data:
        if data["enabled"] and not endpoint.enabled:
            endpoint.consecutive_failures, endpoint.disabled_reason = 0, None
        endpoint.enabled = data["enabled"]
    endpoint.updated_at = now or utcnow()
    session.flush()
    _audit(session, viewer, "webhook_endpoint.updated", endpoint, {"fields": sorted(data)})
    return endpoint


def delete_endpoint(session: Session, viewer: Principal, endpoint_id: str) -> None:
    """Remove an endpoint and its deliveries; jobs still queued for it find nothing to do."""
    endpoint = get_endpoint(session, viewer, endpoint_id)
    _audit(session, viewer, "webhook_endpoint.deleted", endpoint)
    session.delete(endpoint)
    session.flush()


def rotate_secret(
    session: Session,
    viewer: Principal,
    box: SecretBox,
    endpoint_id: str,
    *,
    now: datetime | None = None,
) -> tuple[WebhookEndpoint, str]:
    """A new signing secret, shown once; the current one keeps signing (beside it) for
    ROTATION_GRACE so the receiver can switch over."""
    now = now or utcnow()
    endpoint = get_endpoint(session, viewer, endpoint_id)
    secret = new_secret()
    endpoint.previous_secret_encrypted = endpoint.secret_encrypted
    endpoint.previous_secret_expires_at = now + ROTATION_GRACE
    endpoint.secret_encrypted = box.seal(secret)
    endpoint.updated_at = now
    session.flush()
    _audit(
        session,
        viewer,
        "webhook_endpoint.secret_rotated",
        endpoint,
        {"previous_valid_until": format_utc(endpoint.previous_secret_expires_at)},
    )
    return endpoint, secret


def signing_secrets(endpoint: WebhookEndpoint, box: SecretBox, now: datetime) -> list[str]:
    """The secrets a message is signed with now: the current one, and the one before the last
    rotation during its grace period."""
    secrets = [box.open(endpoint.secret_encrypted)]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret_encrypted and expires is not None and now < expires:
        secrets.append(box.open(endpoint.previous_secret_encrypted))
    return secrets


# ---------------------------------------------------------------- deliveries (owners' view)


def deliveries_of(session: Session, viewer: Principal, endpoint_id: str) -> Select[Any]:
    endpoint = get_endpoint(session, viewer, endpoint_id)
    return select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id)


def present_deliveries(session: Session, deliveries: list[WebhookDelivery]) -> list[dict[str, Any]]:
    """A page of deliveries with their events' ids and types (one query for the events)."""
    ids = {d.message_id for d in deliveries}
    messages = {
        m.id: m for m in session.scalars(select(WebhookMessage).where(WebhookMessage.id.in_(ids)))
    }
    return [present_delivery(d, messages[d.message_id]) for d in deliveries]


def present_delivery(delivery: WebhookDelivery, message: WebhookMessage) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "event_id": message.id,
        "event_type": message.type,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "response_status": delivery.response_status,
        "duration_ms": delivery.duration_ms,
        "last_error": delivery.last_error,
        "last_attempt_at": delivery.last_attempt_at,
        "delivered_at": delivery.delivered_at,
        "created_at": delivery.created_at,
    }


def redeliver(
    session: Session, viewer: Principal, endpoint_id: str, delivery_id: str
) -> tuple[WebhookDelivery, WebhookMessage]:
    """Send a delivery again (same event id, same body), with a fresh schedule of attempts."""
    endpoint = get_endpoint(session, viewer, endpoint_id)
    found = session.execute(
        select(WebhookDelivery, WebhookMessage)
        .join(WebhookMessage, WebhookMessage.id == WebhookDelivery.message_id)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.endpoint_id == endpoint.id)
    ).one_or_none()
    if found is None:
        raise NotFound(f"delivery {delivery_id} not found")
    if not endpoint.enabled:
        raise InvalidState("the endpoint is disabled; enable it first")
    delivery, message = found
    delivery.status = "pending"
    session.flush()
    _enqueue_delivery(session, delivery.id, endpoint.id)
    return delivery, message


# ---------------------------------------------------------------- publishing


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def render(event_type: str, event_id: str, at: datetime, obj: dict[str, Any], path: str) -> str:
    """The body receivers get, in the Standard Webhooks shape (`type`, `timestamp`, `data`)."""
    document = {
        "type": event_type,
        "id": event_id,
        "timestamp": format_utc(at),
        "data": {"object": obj, "links": {"self": path}},
    }
    return json.dumps(document, default=_json_default, separators=(",", ":"), ensure_ascii=False)


def receiver(session: Session, organization_id: str) -> Principal:
    """The viewer an organization's payloads are built for: its own view, no one else's."""
    kind = session.scalar(select(Organization.kind).where(Organization.id == organization_id))
    return Principal(
        user_id="webhooks", organization_id=organization_id, kind=kind or "", role="member"
    )


def _enqueue_delivery(session: Session, delivery_id: str, endpoint_id: str) -> None:
    # One endpoint's deliveries run one at a time, oldest first: a receiver sees them in order.
    enqueue(
        session,
        DELIVERY_JOB,
        {"delivery_id": delivery_id},
        ordering_key=endpoint_id,
        max_attempts=DELIVERY_ATTEMPTS,
    )


PayloadFor = Callable[[Principal], dict[str, Any]]


def publish(
    session: Session,
    event_type: str,
    *,
    organization_ids: Iterable[str],
    payload_for: PayloadFor,
    path: str,
    object_id: str | None = None,
    now: datetime | None = None,
) -> list[WebhookMessage]:
    """Put an event in the outbox, in the caller's transaction: for each organization with an
    enabled endpoint subscribed to it, the object as that organization sees it
    (`payload_for(viewer)`, built once per organization), one message, one delivery per
    endpoint and its job. Nothing is sent unless the caller commits."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event {event_type!r}")
    now = now or utcnow()
    wanted = list(dict.fromkeys(organization_ids))
    if not wanted:
        return []
    endpoints = session.scalars(
        select(WebhookEndpoint)
        .where(WebhookEndpoint.organization_id.in_(wanted), WebhookEndpoint.enabled.is_(True))
        .order_by(WebhookEndpoint.id)
    ).all()
    by_org: dict[str, list[WebhookEndpoint]] = {}
    for endpoint in endpoints:
        if event_type in endpoint.event_types or ALL_EVENTS in endpoint.event_types:
            by_org.setdefault(endpoint.organization_id, []).append(endpoint)
    messages = []
    for organization_id in wanted:
        if organization_id not in by_org:
            continue
        obj = payload_for(receiver(session, organization_id))
        message_id = new_id("evt")
        message = WebhookMessage(
            id=message_id,
            organization_id=organization_id,
            type=event_type,
            object_id=object_id,
            body=render(event_type, message_id, now, obj, path),
            created_at=now,
        )
        session.add(message)
        session.flush()  # no relationship orders the inserts: the message first
        deliveries = [
            WebhookDelivery(
                message_id=message_id,
                endpoint_id=e.id,
                status="pending",
                attempts=0,
                created_at=now,
            )
            for e in by_org[organization_id]
        ]
        session.add_all(deliveries)
        session.flush()
        for delivery in deliveries:
            _enqueue_delivery(session, delivery.id, delivery.endpoint_id)
        messages.append(message)
    return messages


# ---------------------------------------------------------------- attempts (the worker's)


@dataclass(frozen=True, slots=True)
class Prepared:
    """What one attempt sends: read in a short transaction, posted with none open."""

    delivery_id: str
    endpoint_id: str
    url: str
    message_id: str
    body: bytes
    secrets: list[str]


def prepare_attempt(
    session: Session, box: SecretBox, delivery_id: str, *, now: datetime
) -> Prepared | None:
    """The delivery to attempt, or None: gone with its endpoint, delivered already, or its
    endpoint disabled (then it is `skipped`; a redelivery sends it once enabled again)."""
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.status == "succeeded":
        return None
    endpoint = session.get(WebhookEndpoint, delivery.endpoint_id)
    message = session.get(WebhookMessage, delivery.message_id)
    if endpoint is None or message is None:
        return None
    if not endpoint.enabled:
        delivery.status, delivery.last_error = "skipped", "endpoint disabled"
        session.flush()
        return None
    return Prepared(
        delivery.id,
        endpoint.id,
        endpoint.url,
        message.id,
        message.body.encode(),
        signing_secrets(endpoint, box, now),
    )


def record_attempt(
    session: Session,
    delivery_id: str,
    *,
    status: int | None,
    duration_ms: int,
    error: str | None,
    now: datetime,
    final: bool,
) -> WebhookEndpoint | None:
    """Record one attempt on its delivery and endpoint. A success resets the endpoint's run of
    failures; a delivery failing its last attempt (days of failures, the endpoint's deliveries
    running in order) disables the endpoint, with an audit event. Returns the endpoint if
    this disabled it."""
    delivery = session.get(WebhookDelivery, delivery_id, populate_existing=True)
    if delivery is None:
        return None
    endpoint = session.get(WebhookEndpoint, delivery.endpoint_id, populate_existing=True)
    ok = status is not None and 200 <= status < 300
    delivery.attempts += 1
    delivery.response_status, delivery.duration_ms = status, duration_ms
    delivery.last_attempt_at = now
    delivery.last_error = None if ok else (error or f"HTTP {status}")[:500]
    if ok:
        delivery.status, delivery.delivered_at = "succeeded", now
    elif final:
        delivery.status = "failed"
    disabled = None
    if endpoint is not None:
        if ok:
            endpoint.consecutive_failures = 0
        else:
            endpoint.consecutive_failures += 1
            if final and endpoint.enabled and endpoint.consecutive_failures >= DELIVERY_ATTEMPTS:
                endpoint.enabled = False
                endpoint.disabled_reason = (
                    f"{endpoint.consecutive_failures} failed attempts in a row"
                )
                endpoint.updated_at = now
                _audit(
                    session,
                    None,
                    "webhook_endpoint.disabled",
                    endpoint,
                    {"consecutive_failures": endpoint.consecutive_failures},
                )
                disabled = endpoint
    session.flush()
    return disabled
