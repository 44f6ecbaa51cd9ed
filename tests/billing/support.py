"""Billing test helpers: payable contracts, principals, Stripe events signed as Stripe does."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from contracts.models import Contract, ContractTitle
from marketplace.accounts.principal import Principal
from tests.deals import cleared_title
from tests.world import World


def principal(world: World, name: str, *, member: bool = False) -> Principal:
    actor = world[name]
    return Principal(
        user_id=actor.member_id if member else actor.user_id,
        organization_id=actor.org_id,
        kind=actor.kind,
        role="member" if member else "owner",
    )


def make_contract(
    session: Session,
    world: World,
    *,
    studio: str = "studio_a",
    developer: str = "developer_x",
    amount_cents: int = 250_000,
    currency: str = "usd",
    status: str = "signed",
    payment_status: str = "unpaid",
    days_left: int = 180,
) -> Contract:
    """A contract as brokering leaves it after the three signatures, in force from today."""
    today = datetime.now(UTC).date()
    title = cleared_title(session, world[studio].org_id)
    contract = Contract(
        offer_id=f"ofr_{secrets.token_hex(13)}",
        request_id=f"req_{secrets.token_hex(13)}",
        studio_id=world[studio].org_id,
        developer_id=world[developer].org_id,
        terms={"licensee": {"reference": "L"}},
        title_ids=[title.id],
        uses=["train"],
        territories=["US"],
        starts_on=min(today, today + timedelta(days=days_left)) - timedelta(days=30),
        ends_on=today + timedelta(days=days_left),
        amount_cents=amount_cents,
        currency=currency,
        content_seconds=7200.0,
        quota_bytes=10**9,
        quota_downloads=10,
        document="agreement",
        document_sha256="ab" * 32,
        status=status,
        payment_status=payment_status,
        signed_at=datetime.now(UTC) if status != "pending_signatures" else None,
    )
    session.add(contract)
    session.flush()
    session.add(ContractTitle(contract_id=contract.id, title_id=title.id))
    session.flush()
    return contract


def intent_event(
    event_type: str,
    intent_id: str,
    *,
    amount: int,
    currency: str = "usd",
    status: str | None = None,
    metadata: dict[str, str] | None = None,
    event_id: str | None = None,
    failure: str | None = None,
) -> bytes:
    """The JSON body of a Stripe `payment_intent.*` event, shaped as Stripe sends it."""
    if status is None:
        status = "succeeded" if event_type.endswith("succeeded") else "requires_payment_method"
    error = {"code": "card_declined", "message": failure} if failure else None
    event: dict[str, Any] = {
        "id": event_id or f"evt_{secrets.token_hex(12)}",
        "object": "event",
        "api_version": "2024-06-20",
        "created": int(time.time()),
        "livemode": False,
        "type": event_type,
        "data": {
            "object": {
                "id": intent_id,
                "object": "payment_intent",
                "amount": amount,
                "currency": currency,
                "status": status,
                "metadata": metadata or {},
                "last_payment_error": error,
            }
        },
    }
    return json.dumps(event, indent=2).encode()


def signature_header(payload: bytes, secret: str, *, timestamp: int | None = None) -> str:
    """`Stripe-Signature` computed independently of the library: t=…,v1=HMAC-SHA256(t.payload)."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"
