"""Sealing the audit log, and checking it.

Appenders write events with no place in the log. The sealing job (one sealer at a time: it
locks `audit_chain_head`, which nothing else locks) takes the committed events that have none,
oldest id first, gives each its `seq` and links it to the previous event's hash, builds a Merkle
tree over the batch (RFC 6962) and a head that names the tree's root and the previous batch's
head, and signs the head with the Ed25519 key from AUDIT_SIGNING_KEY_FILE.

Why this cut is commit-safe: the sealer selects by state (`seq IS NULL`), never by an id range.
Under READ COMMITTED (and SQLite's one writer) it sees only committed events; one whose
transaction commits after a later id was sealed is simply unsealed at the next run and lands in
a later batch. No event is skipped, so no grace period or xid horizon is needed; the log's
order is the order of sealing (`seq`), which may differ from id order by the events of
transactions that were in flight while a batch was sealed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from marketplace.audit.keys import AuditKeys
from marketplace.audit.merkle import inclusion_path, merkle_root
from marketplace.audit.models import (
    GENESIS_HASH,
    AuditBatch,
    AuditChainHead,
    AuditEvent,
    AuditEventParty,
)
from marketplace.audit.service import canonical_event

#: The most events one batch holds (a sealing run seals several batches if more are waiting).
BATCH_LIMIT = 5000

_EVENT_COLUMNS = (
    AuditEvent.id,
    AuditEvent.seq,
    AuditEvent.at,
    AuditEvent.actor_user_id,
    AuditEvent.actor_organization_id,
    AuditEvent.organization_id,
    AuditEvent.action,
    AuditEvent.object_id,
    AuditEvent.data,
    AuditEvent.salt,
    AuditEvent.prev_hash,
    AuditEvent.hash,
    AuditEvent.batch_id,
    AuditEvent.mac,
)


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_head(
    *,
    batch: int,
    first_seq: int,
    tree_size: int,
    merkle_root: str,
    prev_head: str,
    sealed_at: datetime,
    key_id: str,
) -> bytes:
    """The bytes a batch head's hash and signature cover: sorted-key compact JSON, UTF-8."""
    document = {
        "batch": batch,
        "first_seq": first_seq,
        "key_id": key_id,
        "merkle_root": merkle_root,
        "prev_head": prev_head,
        "sealed_at": _iso(sealed_at),
        "tree_size": tree_size,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def head_bytes(batch: AuditBatch) -> bytes:
    return canonical_head(
        batch=batch.id,
        first_seq=batch.first_seq,
        tree_size=batch.tree_size,
        merkle_root=batch.merkle_root,
        prev_head=batch.prev_head,
        sealed_at=batch.sealed_at,
        key_id=batch.key_id,
    )


def _event_bytes(row: Any, seq: int, prev_hash: str, parties: Sequence[str]) -> bytes:
    return canonical_event(
        id=row.id,
        seq=seq,
        at=row.at,
        actor_user_id=row.actor_user_id,
        actor_organization_id=row.actor_organization_id,
        organization_id=row.organization_id,
        action=row.action,
        object_id=row.object_id,
        data=row.data,
        parties=parties,
        salt=row.salt,
        prev_hash=prev_hash,
    )


def _parties_of(session: Session, event_ids: Sequence[str]) -> dict[str, list[str]]:
    parties: dict[str, list[str]] = {event_id: [] for event_id in event_ids}
    for start in range(0, len(event_ids), 1000):
        chunk = event_ids[start : start + 1000]
        for event_id, org_id in session.execute(
            select(AuditEventParty.event_id, AuditEventParty.organization_id).where(
                AuditEventParty.event_id.in_(chunk)
            )
        ):
            parties[event_id].append(org_id)
    return parties


def seal_batch(
    session: Session, keys: AuditKeys, *, now: datetime, limit: int | None = None
) -> AuditBatch | None:
    """Seal the oldest committed unsealed events (at most `limit`) into one signed batch; None
    when there are none. The caller commits; one sealer runs at a time (the head's row lock)."""
    if not keys.can_seal:
        raise RuntimeError("sealing needs the private signing key (AUDIT_SIGNING_KEY_FILE)")
    head = session.scalars(
        select(AuditChainHead).where(AuditChainHead.id == 1).with_for_update()
    ).one()
    rows = session.execute(
        select(*_EVENT_COLUMNS)
        .where(AuditEvent.seq.is_(None))
        .order_by(AuditEvent.id)
        .limit(limit or BATCH_LIMIT)
    ).all()
    if not rows:
        return None
    last = session.scalars(select(AuditBatch).order_by(AuditBatch.id.desc()).limit(1)).first()
    batch_id = last.id + 1 if last is not None else 1
    parties = _parties_of(session, [row.id for row in rows])
    seq, prev = head.seq, head.hash
    first_seq = seq + 1
    changes: list[dict[str, Any]] = []
    leaves: list[bytes] = []
    for row in rows:
        seq += 1
        digest = hashlib.sha256(_event_bytes(row, seq, prev, parties[row.id])).hexdigest()
        changes.append(
            {
                "id": row.id,
                "seq": seq,
                "prev_hash": prev,
                "hash": digest,
                "batch_id": batch_id,
                "mac": keys.mac(digest),
            }
        )
        leaves.append(bytes.fromhex(digest))
        prev = digest
    batch = AuditBatch(
        id=batch_id,
        first_seq=first_seq,
        tree_size=seq,
        merkle_root=merkle_root(leaves).hex(),
        prev_head=last.head_hash if last is not None else GENESIS_HASH,
        sealed_at=now,
        key_id=keys.key_id,
    )
    signed = head_bytes(batch)
    batch.head_hash = hashlib.sha256(signed).hexdigest()
    batch.signature = keys.sign(signed)
    session.add(batch)
    session.flush()
    session.execute(update(AuditEvent), changes)
    head.seq, head.hash = seq, prev
    session.flush()
    return batch


def seal_pending(
    session: Session, keys: AuditKeys, *, now: datetime, max_batches: int = 20
) -> list[AuditBatch]:
    """Seal every waiting event, a batch at a time (at most `max_batches` in one transaction)."""
    batches = []
    for _ in range(max_batches):
        batch = seal_batch(session, keys, now=now)
        if batch is None:
            break
        batches.append(batch)
        if batch.tree_size - batch.first_seq + 1 < BATCH_LIMIT:
            break
    return batches


@dataclass(frozen=True)
class InclusionProof:
    """Where an event sits in its batch's tree, with the audit path to the batch's root."""

    batch: AuditBatch
    leaf_index: int
    batch_size: int
    path: list[str]


def inclusion_proof(session: Session, event: AuditEvent) -> InclusionProof | None:
    """The proof that `event`'s hash is in its signed batch; None while it is unsealed."""
    if event.seq is None or event.batch_id is None:
        return None
    batch = session.get(AuditBatch, event.batch_id)
    if batch is None:
        return None
    hashes = list(
        session.scalars(
            select(AuditEvent.hash)
            .where(AuditEvent.seq >= batch.first_seq, AuditEvent.seq <= batch.tree_size)
            .order_by(AuditEvent.seq)
        )
    )
    index = event.seq - batch.first_seq
    leaves = [bytes.fromhex(h or "") for h in hashes]
    if not 0 <= index < len(leaves):
        return None
    path = [p.hex() for p in inclusion_path(index, leaves)]
    return InclusionProof(batch=batch, leaf_index=index, batch_size=len(leaves), path=path)


def present_head(batch: AuditBatch) -> dict[str, Any]:
    """A batch head as published: the event count and times, hashes and the signature."""
    return {
        "batch": batch.id,
        "first_seq": batch.first_seq,
        "tree_size": batch.tree_size,
        "merkle_root": batch.merkle_root,
        "prev_head": batch.prev_head,
        "sealed_at": batch.sealed_at,
        "key_id": batch.key_id,
        "head_hash": batch.head_hash,
        "signature": batch.signature,
    }


# --- verification ---------------------------------------------------------------------------


@dataclass
class LogReport:
    """What `marketplace audit verify` found."""

    ok: bool = True
    checked: int = 0
    batches: int = 0
    unsealed: int = 0
    oldest_unsealed_id: str | None = None
    oldest_unsealed_at: datetime | None = None
    broken_seq: int | None = None
    broken_event_id: str | None = None
    broken_batch: int | None = None
    reason: str | None = None
    macs_checked: bool = False
    notes: list[str] = field(default_factory=list)

    def fail(
        self,
        reason: str,
        *,
        seq: int | None = None,
        event_id: str | None = None,
        batch: int | None = None,
    ) -> LogReport:
        self.ok, self.reason = False, reason
        self.broken_seq, self.broken_event_id, self.broken_batch = seq, event_id, batch
        return self


def verify_log(
    session: Session,
    keys: AuditKeys,
    *,
    page: int = 5000,
    published: Sequence[dict[str, Any]] = (),
) -> LogReport:
    """Check every sealed event against its hash, the chain, its seal, its batch's Merkle root
    and the signed batch heads; name the first event edited, deleted, inserted or reordered.
    `published` are heads a studio kept (GET /audit/heads): each must still be in the log."""
    report = LogReport(macs_checked=keys.can_seal)
    count, oldest = session.execute(
        select(func.count(), func.min(AuditEvent.id)).where(AuditEvent.seq.is_(None))
    ).one()
    report.unsealed = int(count)
    if oldest is not None:
        report.oldest_unsealed_id = oldest
        report.oldest_unsealed_at = session.scalar(
            select(AuditEvent.at).where(AuditEvent.id == oldest)
        )
    batches = _batches(session)
    batch = next(batches, None)
    expected_seq, prev_hash, prev_head, leaves = 1, GENESIS_HASH, GENESIS_HASH, []
    sha256, mac = hashlib.sha256, keys.mac if keys.can_seal else None
    for row, parties in _sealed_events(session, page):
        seq = row.seq
        if batch is None:
            return report.fail(
                "this event is in no signed batch: inserted after the last sealed batch",
                seq=seq,
                event_id=row.id,
            )
        if seq != expected_seq:
            if seq > expected_seq:
                return report.fail(
                    f"expected seq {expected_seq}, found {seq}: the event(s) before this one "
                    "were deleted (or their seq changed)",
                    seq=seq,
                    event_id=row.id,
                )
            return report.fail(
                f"expected seq {expected_seq}, found {seq}", seq=seq, event_id=row.id
            )
        if row.batch_id != batch.id:
            return report.fail(
                f"recorded in batch {row.batch_id}, but its seq is in batch {batch.id}",
                seq=seq,
                event_id=row.id,
            )
        if row.prev_hash != prev_hash:
            return report.fail(
                "prev_hash is not the previous event's hash: an event before it was deleted, "
                "inserted or moved",
                seq=seq,
                event_id=row.id,
            )
        digest = sha256(_event_bytes(row, seq, row.prev_hash, parties)).hexdigest()
        if digest != row.hash:
            return report.fail(
                "the stored event differs from what was hashed", seq=seq, event_id=row.id
            )
        if mac is not None and mac(digest) != row.mac:
            return report.fail(
                "its seal does not match: the event was edited, inserted or moved, and every "
                "later hash recomputed (by someone without the signing key)",
                seq=seq,
                event_id=row.id,
            )
        leaves.append(bytes.fromhex(digest))
        prev_hash, expected_seq = digest, seq + 1
        report.checked += 1
        if seq == batch.tree_size:
            problem = _check_batch(batch, leaves, prev_head, keys)
            if problem and mac is not None:
                # Every event of the batch holds its seal: what changed is the batch's edge.
                after = session.scalar(select(AuditEvent.id).where(AuditEvent.seq == seq + 1))
                return report.fail(
                    f"{problem}; all its events hold their seals, so events after seq {seq} "
                    "were deleted or moved out of it (or its head was rewritten)",
                    batch=batch.id,
                    seq=seq + 1,
                    event_id=after,
                )
            if problem:
                return report.fail(problem, batch=batch.id, seq=batch.first_seq)
            report.batches += 1
            prev_head, leaves = batch.head_hash, []
            batch = next(batches, None)
            if batch is not None and batch.first_seq != expected_seq:
                return report.fail(
                    f"batch {batch.id} starts at seq {batch.first_seq}, not {expected_seq}",
                    batch=batch.id,
                )
    if batch is not None:
        return report.fail(
            f"batch {batch.id} holds events up to seq {batch.tree_size}, but the log ends at "
            f"seq {expected_seq - 1}: events were deleted from its end",
            seq=expected_seq,
            batch=batch.id,
        )
    head = session.get(AuditChainHead, 1)
    if head is None or (head.seq, head.hash) != (expected_seq - 1, prev_hash):
        return report.fail(
            "the sealer's head does not name the last sealed event", seq=expected_seq - 1
        )
    return _check_published(session, report, published)


def _check_batch(
    batch: AuditBatch, leaves: list[bytes], prev_head: str, keys: AuditKeys
) -> str | None:
    if batch.prev_head != prev_head:
        return f"batch {batch.id} does not link to the previous batch's head"
    if merkle_root(leaves).hex() != batch.merkle_root:
        return f"batch {batch.id}'s Merkle root is not that of its events"
    signed = head_bytes(batch)
    if hashlib.sha256(signed).hexdigest() != batch.head_hash:
        return f"batch {batch.id}'s head hash is not that of its head"
    if batch.key_id != keys.key_id or not keys.verify(batch.signature, signed):
        return (
            f"batch {batch.id}'s head is not signed by the audit key: events in seq "
            f"{batch.first_seq}..{batch.tree_size} were rewritten, or the head was"
        )
    return None


def _check_published(
    session: Session, report: LogReport, published: Sequence[dict[str, Any]]
) -> LogReport:
    for kept in published:
        number = int(kept["batch"])
        stored = session.get(AuditBatch, number)
        if stored is None:
            return report.fail(
                f"published batch {number} is gone from the log: history was truncated",
                batch=number,
            )
        if stored.head_hash != kept.get("head_hash") or stored.signature != kept.get("signature"):
            return report.fail(
                f"batch {number} differs from the published head: history was rewritten (a fork)",
                batch=number,
                seq=stored.first_seq,
            )
    return report


def _batches(session: Session) -> Iterator[AuditBatch]:
    last = 0
    while True:
        page = list(
            session.scalars(
                select(AuditBatch).where(AuditBatch.id > last).order_by(AuditBatch.id).limit(1000)
            )
        )
        yield from page
        if len(page) < 1000:
            return
        last = page[-1].id


def _sealed_events(session: Session, page: int) -> Iterator[tuple[Any, list[str]]]:
    last = 0
    while True:
        rows = session.execute(
            select(*_EVENT_COLUMNS)
            .where(AuditEvent.seq > last)
            .order_by(AuditEvent.seq)
            .limit(page)
        ).all()
        if not rows:
            return
        upper = rows[-1].seq
        parties: dict[str, list[str]] = {row.id: [] for row in rows}
        for event_id, org_id in session.execute(
            select(AuditEventParty.event_id, AuditEventParty.organization_id)
            .join(AuditEvent, AuditEvent.id == AuditEventParty.event_id)
            .where(AuditEvent.seq > last, AuditEvent.seq <= upper)
        ):
            parties[event_id].append(org_id)
        for row in rows:
            yield row, parties[row.id]
        last = upper
