"""Append audit events to the SHA-256 chain, list them per tenant, and verify the chain."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import Select, exists, select
from sqlalchemy.orm import Session

from marketplace.audit.models import GENESIS_HASH, AuditChainHead, AuditEvent, AuditEventParty
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
    """Append an event in the caller's transaction; it commits or rolls back with the change."""
    # Lock the head row: concurrent appenders on PostgreSQL queue here until this
    # transaction ends; SQLite's BEGIN IMMEDIATE already made us the only writer.
    head = session.scalars(
        select(AuditChainHead).where(AuditChainHead.id == 1).with_for_update()
    ).one()
    visible_to = {p for p in (*parties, organization_id) if p}
    event = AuditEvent(
        seq=head.seq + 1,
        at=at or utcnow(),
        actor_user_id=actor.user_id if actor is not None else None,
        actor_organization_id=actor.organization_id if actor is not None else None,
        organization_id=organization_id,
        action=action,
        object_id=object_id,
        data=data or {},
        salt=secrets.token_hex(16),
        prev_hash=head.hash,
        hash="",
    )
    event.id = _new_event_id()
    event.hash = _digest(
        canonical_event(
            id=event.id,
            seq=event.seq,
            at=event.at,
            actor_user_id=event.actor_user_id,
            actor_organization_id=event.actor_organization_id,
            organization_id=organization_id,
            action=action,
            object_id=object_id,
            data=event.data,
            parties=visible_to,
            salt=event.salt,
            prev_hash=event.prev_hash,
        )
    )
    head.seq, head.hash = event.seq, event.hash
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


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int
    broken_seq: int | None = None
    broken_event_id: str | None = None
    reason: str | None = None


def verify_chain(session: Session, *, batch: int = 1000) -> ChainReport:
    """Recompute every hash in seq order; name the first event that breaks the chain."""
    expected_seq, prev_hash, checked = 1, GENESIS_HASH, 0
    for event, parties in _events_with_parties(session, batch):
        if event.seq != expected_seq:
            return _broken(
                checked,
                event,
                f"expected seq {expected_seq}, found {event.seq}: "
                "an event was removed or reordered before this one",
            )
        if event.prev_hash != prev_hash:
            return _broken(checked, event, "prev_hash does not match the previous event's hash")
        recomputed = _digest(
            canonical_event(
                id=event.id,
                seq=event.seq,
                at=event.at,
                actor_user_id=event.actor_user_id,
                actor_organization_id=event.actor_organization_id,
                organization_id=event.organization_id,
                action=event.action,
                object_id=event.object_id,
                data=event.data,
                parties=parties,
                salt=event.salt,
                prev_hash=event.prev_hash,
            )
        )
        if recomputed != event.hash:
            return _broken(checked, event, "the stored event differs from what was hashed")
        prev_hash, expected_seq, checked = event.hash, expected_seq + 1, checked + 1
    head = session.get(AuditChainHead, 1)
    if head is None or head.seq != checked or head.hash != prev_hash:
        return ChainReport(
            ok=False,
            checked=checked,
            broken_seq=checked + 1,
            reason="the chain ends before its recorded head: events were removed from the end",
        )
    return ChainReport(ok=True, checked=checked)


def _broken(checked: int, event: AuditEvent, reason: str) -> ChainReport:
    return ChainReport(
        ok=False, checked=checked, broken_seq=event.seq, broken_event_id=event.id, reason=reason
    )


def _events_with_parties(session: Session, batch: int) -> Iterator[tuple[AuditEvent, list[str]]]:
    last_seq = 0
    while True:
        events = list(
            session.scalars(
                select(AuditEvent)
                .where(AuditEvent.seq > last_seq)
                .order_by(AuditEvent.seq)
                .limit(batch)
            )
        )
        if not events:
            return
        parties: dict[str, list[str]] = {e.id: [] for e in events}
        for event_id, org_id in session.execute(
            select(AuditEventParty.event_id, AuditEventParty.organization_id).where(
                AuditEventParty.event_id.in_(list(parties))
            )
        ):
            parties[event_id].append(org_id)
        for event in events:
            yield event, parties[event.id]
        last_seq = events[-1].seq
