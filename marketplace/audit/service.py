"""Append audit events (unsealed), list them per tenant, and present them."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import Select, exists, select
from sqlalchemy.orm import Session

from marketplace.audit.models import AuditEvent, AuditEventParty
from marketplace.core.db import utcnow


class Actor(Protocol):
    @property
    def user_id(self) -> str: ...
    @property
    def organization_id(self) -> str: ...
    @property
    def kind(self) -> str: ...


def canonical_event(
    *,
    id: str,
    seq: int,
    at: datetime,
    actor_user_id: str | None,
    actor_organization_id: str | None,
    organization_id: str | None,
    action: str,
    object_id: str | None,
    data: dict[str, Any],
    parties: Iterable[str],
    salt: str,
    prev_hash: str,
) -> bytes:
    """The exact bytes an event's hash covers: sorted-key compact JSON, UTF-8."""
    document = {
        "action": action,
        "actor_organization_id": actor_organization_id,
        "actor_user_id": actor_user_id,
        "at": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "data": data,
        "id": id,
        "object_id": object_id,
        "organization_id": organization_id,
        "parties": sorted(set(parties)),
        "prev_hash": prev_hash,
        "salt": salt,
        "seq": seq,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _digest(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def record_event(
    session: Session,
    actor: Actor | None,
    action: str,
    *,
    object_id: str | None,
    organization_id: str | None,
    data: dict[str, Any] | None = None,
    parties: Iterable[str] = (),
    at: datetime | None = None,
) -> AuditEvent:
    """Append an event in the caller's transaction; it commits or rolls back with the change.

    It takes no lock shared with other writers: its place in the log (seq, prev_hash, hash) is
    null until the sealing job orders it into a signed batch (marketplace.audit.sealing)."""
    visible_to = {p for p in (*parties, organization_id) if p}
    event = AuditEvent(
        id=_new_event_id(),
        at=at or utcnow(),
        actor_user_id=actor.user_id if actor is not None else None,
        actor_organization_id=actor.organization_id if actor is not None else None,
        organization_id=organization_id,
        action=action,
        object_id=object_id,
        data=data or {},
        salt=secrets.token_hex(16),
    )
    session.add(event)
    session.flush()
    session.add_all(AuditEventParty(event_id=event.id, organization_id=p) for p in visible_to)
    session.flush()
    return event


def _new_event_id() -> str:
    from marketplace.core.ids import new_id

    return new_id("evt")


def visible_events(actor: Actor) -> Select[AuditEvent]:
    """Operators see every event; others, events about their own organization's objects."""
    stmt = select(AuditEvent)
    if actor.kind != "operator":
        stmt = stmt.where(
            exists().where(
                AuditEventParty.event_id == AuditEvent.id,
                AuditEventParty.organization_id == actor.organization_id,
            )
        )
    return stmt


def present_event(event: AuditEvent, viewer: Actor) -> dict[str, Any]:
    """An event as `viewer` may read it.

    Tenants see who acted only when the actor is one of their own: a user id is a pseudonym
    that one signed deal would unmask, so a studio never sees which developer user acted on an
    anonymous request (nor any other organization's users). Operators see everything but the
    salt, which stays in the database for `marketplace audit verify`.
    """
    own = viewer.kind == "operator" or event.actor_organization_id == viewer.organization_id
    return {
        "id": event.id,
        "seq": event.seq,
        "sealed": event.seq is not None,
        "at": event.at,
        "actor_user_id": event.actor_user_id if own else None,
        "actor_organization_id": event.actor_organization_id if own else None,
        "organization_id": event.organization_id,
        "action": event.action,
        "object_id": event.object_id,
        "data": event.data,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }
