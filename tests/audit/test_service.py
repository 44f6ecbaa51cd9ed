"""Appending without a shared lock, sealing into signed batches, and finding every kind of
tampering, including a rewrite that recomputed every hash but could not sign."""

from __future__ import annotations

import hashlib
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, delete, select, text, update
from sqlalchemy.orm import Session

from marketplace.accounts.principal import Principal
from marketplace.audit.keys import AuditKeys
from marketplace.audit.merkle import merkle_root, verify_inclusion
from marketplace.audit.models import (
    GENESIS_HASH,
    AuditBatch,
    AuditChainHead,
    AuditEvent,
    AuditEventParty,
)
from marketplace.audit.sealing import (
    head_bytes,
    inclusion_proof,
    present_head,
    seal_batch,
    seal_pending,
    verify_log,
)
from marketplace.audit.service import canonical_event, present_event, record_event, visible_events

OPERATOR = Principal("usr_op", "org_op", "operator", "owner")
STUDIO = Principal("usr_a", "org_a", "studio", "owner")
OTHER = Principal("usr_b", "org_b", "studio", "owner")
NOW = datetime(2026, 12, 8, 12, 0, tzinfo=UTC)


def _append(session: Session, n: int, start: int = 0) -> list[AuditEvent]:
    return [
        record_event(
            session,
            STUDIO,
            "thing.changed",
            object_id=f"ttl_{i}",
            organization_id="org_a",
            data={"i": i, "name": f"n{i}"},
            parties=["org_b"] if i % 2 else [],
        )
        for i in range(start, start + n)
    ]


def _sealed(session: Session, keys: AuditKeys, n: int, batches: int = 1) -> list[AuditEvent]:
    """n events in `batches` signed batches, in seq order."""
    per = n // batches
    for b in range(batches):
        _append(session, per if b < batches - 1 else n - per * (batches - 1), start=b * per)
        seal_batch(session, keys, now=NOW + timedelta(seconds=b))
    session.expire_all()
    return list(session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))


def _rewrite_consistently(session: Session) -> None:
    """What someone who can write the database, but holds no key, can do after editing events:
    recompute every event hash and link, every Merkle root, head hash and link, and the
    sealer's head. Signatures and seals (MACs) stay as they were."""
    session.flush()
    session.expire_all()
    prev, seq = GENESIS_HASH, 0
    hashes: dict[int, str] = {}
    for event in session.scalars(select(AuditEvent).order_by(AuditEvent.seq)):
        if event.seq is None:
            continue
        seq = event.seq
        parties = list(
            session.scalars(
                select(AuditEventParty.organization_id).where(AuditEventParty.event_id == event.id)
            )
        )
        digest = hashlib.sha256(
            canonical_event(
                id=event.id,
                seq=seq,
                at=event.at,
                actor_user_id=event.actor_user_id,
                actor_organization_id=event.actor_organization_id,
                organization_id=event.organization_id,
                action=event.action,
                object_id=event.object_id,
                data=event.data,
                parties=parties,
                salt=event.salt,
                prev_hash=prev,
            )
        ).hexdigest()
        session.execute(
            text("UPDATE audit_events SET prev_hash = :p, hash = :h WHERE id = :id"),
            {"p": prev, "h": digest, "id": event.id},
        )
        hashes[seq], prev = digest, digest
    prev_head = GENESIS_HASH
    for batch in session.scalars(select(AuditBatch).order_by(AuditBatch.id)):
        leaves = [
            bytes.fromhex(hashes[s])
            for s in range(batch.first_seq, batch.tree_size + 1)
            if s in hashes
        ]
        batch.merkle_root = merkle_root(leaves).hex()
        batch.prev_head = prev_head
        batch.head_hash = hashlib.sha256(head_bytes(batch)).hexdigest()
        prev_head = batch.head_hash
    session.execute(update(AuditChainHead).values(seq=seq, hash=prev))
    session.flush()
    session.expire_all()


class TestAppend:
    def test_an_event_is_written_unsealed(self, session: Session) -> None:
        event = _append(session, 1)[0]
        assert (event.seq, event.prev_hash, event.hash, event.batch_id) == (None, None, None, None)
        assert present_event(event, STUDIO)["sealed"] is False
        head = session.get(AuditChainHead, 1)
        assert head is not None and head.seq == 0  # appenders never touch the head

    def test_tenants_see_their_own_events_operators_all(self, session: Session) -> None:
        record_event(session, STUDIO, "a", object_id="x1", organization_id="org_a")
        record_event(session, OTHER, "b", object_id="x2", organization_id="org_b")
        record_event(
            session, OPERATOR, "c", object_id="x3", organization_id="org_a", parties=["org_b"]
        )

        def actions(p: Principal) -> list[str]:
            return [e.action for e in session.scalars(visible_events(p).order_by(AuditEvent.id))]

        # Ids sort by millisecond, not within one: compare as sets.
        assert sorted(actions(STUDIO)) == ["a", "c"]
        assert sorted(actions(OTHER)) == ["b", "c"]
        assert sorted(actions(OPERATOR)) == ["a", "b", "c"]

    def test_tenants_see_who_acted_only_among_their_own(self, session: Session) -> None:
        event = record_event(
            session,
            OTHER,
            "offer.accepted",
            object_id="x1",
            organization_id="org_a",
            parties=["org_b"],
        )
        assert present_event(event, STUDIO)["actor_user_id"] is None
        assert present_event(event, STUDIO)["actor_organization_id"] is None
        assert present_event(event, OTHER)["actor_user_id"] == OTHER.user_id
        assert present_event(event, OPERATOR)["actor_organization_id"] == "org_b"
        assert "salt" not in present_event(event, OPERATOR)
        assert "mac" not in present_event(event, OPERATOR)


class TestSealing:
    def test_a_batch_orders_links_and_signs(self, session: Session, audit_keys: AuditKeys) -> None:
        appended = _append(session, 5)
        batch = seal_batch(session, audit_keys, now=NOW)
        assert batch is not None and (batch.id, batch.first_seq, batch.tree_size) == (1, 1, 5)
        session.expire_all()
        events = list(session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))
        assert [e.id for e in events] == sorted(e.id for e in appended)  # id order
        assert [e.seq for e in events] == [1, 2, 3, 4, 5]
        assert events[0].prev_hash == GENESIS_HASH
        assert all(b.prev_hash == a.hash for a, b in zip(events, events[1:], strict=False))
        assert batch.merkle_root == merkle_root([bytes.fromhex(e.hash or "") for e in events]).hex()
        assert batch.prev_head == GENESIS_HASH and batch.key_id == audit_keys.key_id
        assert audit_keys.verify(batch.signature, head_bytes(batch))
        assert not AuditKeys.generate().verify(batch.signature, head_bytes(batch))

    def test_batches_chain_by_their_heads(self, session: Session, audit_keys: AuditKeys) -> None:
        _append(session, 3)
        first = seal_batch(session, audit_keys, now=NOW)
        assert seal_batch(session, audit_keys, now=NOW) is None  # nothing waiting
        _append(session, 2, start=3)
        second = seal_batch(session, audit_keys, now=NOW)
        assert first is not None and second is not None
        assert (second.id, second.first_seq, second.tree_size) == (2, 4, 5)
        assert second.prev_head == first.head_hash
        head = session.get(AuditChainHead, 1)
        last = session.scalars(select(AuditEvent).where(AuditEvent.seq == 5)).one()
        assert head is not None and (head.seq, head.hash) == (5, last.hash)

    def test_a_large_backlog_seals_in_several_batches(
        self, session: Session, audit_keys: AuditKeys, monkeypatch: Any
    ) -> None:
        monkeypatch.setattr("marketplace.audit.sealing.BATCH_LIMIT", 4)
        _append(session, 10)
        batches = seal_pending(session, audit_keys, now=NOW)
        assert [(b.first_seq, b.tree_size) for b in batches] == [(1, 4), (5, 8), (9, 10)]
        assert verify_log(session, audit_keys).ok

    def test_a_public_key_alone_cannot_seal(self, session: Session, audit_keys: AuditKeys) -> None:
        _append(session, 1)
        with pytest.raises(RuntimeError, match="private signing key"):
            seal_batch(session, AuditKeys(public=audit_keys.public), now=NOW)

    def test_every_event_proves_its_inclusion(
        self, session: Session, audit_keys: AuditKeys
    ) -> None:
        events = _sealed(session, audit_keys, 7, batches=2)
        for event in events:
            proof = inclusion_proof(session, event)
            assert proof is not None
            root = bytes.fromhex(proof.batch.merkle_root)
            path = [bytes.fromhex(p) for p in proof.path]
            leaf = bytes.fromhex(event.hash or "")
            assert verify_inclusion(leaf, proof.leaf_index, proof.batch_size, path, root)
            assert audit_keys.verify(proof.batch.signature, head_bytes(proof.batch))
            assert proof.batch_size == proof.batch.tree_size - proof.batch.first_seq + 1
        unsealed = _append(session, 1)[0]
        assert inclusion_proof(session, unsealed) is None

    def test_heads_publish_counts_and_times_only(
        self, session: Session, audit_keys: AuditKeys
    ) -> None:
        _sealed(session, audit_keys, 3)
        batch = session.get(AuditBatch, 1)
        assert batch is not None
        assert set(present_head(batch)) == {
            "batch",
            "first_seq",
            "tree_size",
            "merkle_root",
            "prev_head",
            "sealed_at",
            "key_id",
            "head_hash",
            "signature",
        }


class TestVerify:
    def test_an_intact_log_verifies(self, session: Session, audit_keys: AuditKeys) -> None:
        _sealed(session, audit_keys, 6, batches=3)
        report = verify_log(session, audit_keys)
        assert report.ok, report.reason
        assert (report.checked, report.batches, report.unsealed) == (6, 3, 0)

    def test_unsealed_events_are_reported_not_broken(
        self, session: Session, audit_keys: AuditKeys
    ) -> None:
        _sealed(session, audit_keys, 3)
        waiting = _append(session, 2, start=3)
        report = verify_log(session, audit_keys)
        assert report.ok and report.checked == 3
        assert report.unsealed == 2 and report.oldest_unsealed_id == min(e.id for e in waiting)

    def test_an_edited_event_is_named(self, session: Session, audit_keys: AuditKeys) -> None:
        events = _sealed(session, audit_keys, 5)
        session.execute(
            update(AuditEvent).where(AuditEvent.id == events[2].id).values(data={"i": 99})
        )
        session.expire_all()
        report = verify_log(session, audit_keys)
        assert not report.ok
        assert (report.broken_seq, report.broken_event_id) == (3, events[2].id)

    def test_an_edited_party_is_named(self, session: Session, audit_keys: AuditKeys) -> None:
        _sealed(session, audit_keys, 4)
        shared = session.scalars(
            select(AuditEvent)
            .join(AuditEventParty, AuditEventParty.event_id == AuditEvent.id)
            .where(AuditEventParty.organization_id == "org_b")
            .order_by(AuditEvent.seq)
        ).first()
        assert shared is not None
        session.execute(
            delete(AuditEventParty).where(
                AuditEventParty.event_id == shared.id, AuditEventParty.organization_id == "org_b"
            )
        )
        report = verify_log(session, audit_keys)
        assert not report.ok and report.broken_event_id == shared.id

    def test_a_deleted_event_is_named(self, session: Session, audit_keys: AuditKeys) -> None:
        events = _sealed(session, audit_keys, 5)
        session.execute(delete(AuditEvent).where(AuditEvent.id == events[1].id))
        report = verify_log(session, audit_keys)
        assert not report.ok and (report.broken_seq, report.broken_event_id) == (3, events[2].id)
        assert "deleted" in (report.reason or "")

    def test_deleted_last_events_are_found(self, session: Session, audit_keys: AuditKeys) -> None:
        events = _sealed(session, audit_keys, 4)
        session.execute(delete(AuditEvent).where(AuditEvent.id == events[-1].id))
        report = verify_log(session, audit_keys)
        assert not report.ok and report.broken_seq == 4 and report.broken_batch == 1

    def test_reordered_events_are_named(self, session: Session, audit_keys: AuditKeys) -> None:
        events = _sealed(session, audit_keys, 4)
        a, b = events[1], events[2]
        session.execute(update(AuditEvent).where(AuditEvent.id == a.id).values(seq=-1))
        session.execute(update(AuditEvent).where(AuditEvent.id == b.id).values(seq=2))
        session.execute(update(AuditEvent).where(AuditEvent.id == a.id).values(seq=3))
        session.expire_all()
        report = verify_log(session, audit_keys)
        assert not report.ok and (report.broken_seq, report.broken_event_id) == (2, b.id)

    def test_an_unsealed_event_cannot_hide_a_deletion(
        self, session: Session, audit_keys: AuditKeys
    ) -> None:
        events = _sealed(session, audit_keys, 3)
        session.execute(
            update(AuditEvent)
            .where(AuditEvent.id == events[1].id)
            .values(seq=None, prev_hash=None, hash=None, batch_id=None, mac=None)
        )
        report = verify_log(session, audit_keys)
        assert not report.ok and report.broken_event_id == events[2].id

    # The consistent rewrites: every hash, link, root and head recomputed; no key.

    def test_a_consistent_edit_is_named(self, session: Session, audit_keys: AuditKeys) -> None:
        events = _sealed(session, audit_keys, 9, batches=3)
        session.execute(
            update(AuditEvent).where(AuditEvent.id == events[4].id).values(action="forged")
        )
        _rewrite_consistently(session)
        report = verify_log(session, audit_keys)
        assert not report.ok
        assert (report.broken_seq, report.broken_event_id) == (5, events[4].id)
        assert "seal" in (report.reason or "")

    def test_a_consistent_rewrite_fails_on_signatures_with_the_public_key_alone(
        self, session: Session, audit_keys: AuditKeys
    ) -> None:
        events = _sealed(session, audit_keys, 9, batches=3)
        session.execute(
            update(AuditEvent).where(AuditEvent.id == events[4].id).values(action="forged")
        )
        _rewrite_consistently(session)
        report = verify_log(session, AuditKeys(public=audit_keys.public))
        assert not report.ok and report.broken_batch == 2  # seq 4..6
        assert "not signed" in (report.reason or "")

    def test_a_consistent_deletion_is_named(self, session: Session, audit_keys: AuditKeys) -> None:
        events = _sealed(session, audit_keys, 6, batches=2)
        session.execute(delete(AuditEvent).where(AuditEvent.id == events[2].id))
        for later in events[3:]:
            session.execute(
                update(AuditEvent).where(AuditEvent.id == later.id).values(seq=(later.seq or 0) - 1)
            )
        session.execute(
            update(AuditBatch).values(first_seq=AuditBatch.first_seq - 1).where(AuditBatch.id == 2)
        )
        session.execute(update(AuditBatch).values(tree_size=AuditBatch.tree_size - 1))
        session.execute(update(AuditBatch).where(AuditBatch.id == 1).values(tree_size=2))
        _rewrite_consistently(session)
        report = verify_log(session, audit_keys)
        assert not report.ok
        assert (report.broken_seq, report.broken_event_id) == (3, events[3].id)

    def test_a_consistent_insertion_is_named(self, session: Session, audit_keys: AuditKeys) -> None:
        events = _sealed(session, audit_keys, 4)
        for later in reversed(events[2:]):
            session.execute(
                update(AuditEvent).where(AuditEvent.id == later.id).values(seq=(later.seq or 0) + 1)
            )
        forged = _append(session, 1, start=100)[0]
        session.execute(
            update(AuditEvent)
            .where(AuditEvent.id == forged.id)
            .values(seq=3, batch_id=1, mac=events[2].mac)
        )
        session.execute(update(AuditBatch).values(tree_size=5))
        _rewrite_consistently(session)
        report = verify_log(session, audit_keys)
        assert not report.ok
        assert (report.broken_seq, report.broken_event_id) == (3, forged.id)

    def test_a_consistent_reorder_is_named(self, session: Session, audit_keys: AuditKeys) -> None:
        events = _sealed(session, audit_keys, 4)
        a, b = events[1], events[2]
        session.execute(update(AuditEvent).where(AuditEvent.id == a.id).values(seq=-1, mac=b.mac))
        session.execute(update(AuditEvent).where(AuditEvent.id == b.id).values(seq=2, mac=a.mac))
        session.execute(update(AuditEvent).where(AuditEvent.id == a.id).values(seq=3))
        _rewrite_consistently(session)
        report = verify_log(session, audit_keys)
        assert not report.ok and (report.broken_seq, report.broken_event_id) == (2, b.id)

    def test_a_forged_head_is_found(self, session: Session, audit_keys: AuditKeys) -> None:
        _sealed(session, audit_keys, 4, batches=2)
        session.execute(update(AuditBatch).where(AuditBatch.id == 2).values(sealed_at=NOW))
        report = verify_log(session, audit_keys)
        assert not report.ok and report.broken_batch == 2

    def test_published_heads_no_longer_match_a_rewrite(
        self, session: Session, audit_keys: AuditKeys
    ) -> None:
        events = _sealed(session, audit_keys, 6, batches=2)
        kept = [
            present_head(b) for b in session.scalars(select(AuditBatch).order_by(AuditBatch.id))
        ]
        assert verify_log(session, audit_keys, published=kept).ok
        session.execute(
            update(AuditEvent).where(AuditEvent.id == events[4].id).values(action="forged")
        )
        _rewrite_consistently(session)
        heads_now = {b.id: b.head_hash for b in session.scalars(select(AuditBatch))}
        assert heads_now[1] == kept[0]["head_hash"] and heads_now[2] != kept[1]["head_hash"]
        # Even were every seal forged, a studio's copy shows the fork.
        report = verify_log(session, AuditKeys(public=audit_keys.public), published=kept)
        assert not report.ok and report.broken_batch == 2

    def test_a_truncated_log_is_found_against_published_heads(
        self, session: Session, audit_keys: AuditKeys
    ) -> None:
        _sealed(session, audit_keys, 4, batches=2)
        kept = [
            present_head(b) for b in session.scalars(select(AuditBatch).order_by(AuditBatch.id))
        ]
        session.execute(delete(AuditEvent).where(AuditEvent.batch_id == 2))
        session.execute(delete(AuditBatch).where(AuditBatch.id == 2))
        _rewrite_consistently(session)
        assert verify_log(session, audit_keys).ok  # alone, a cut tail is a shorter log
        report = verify_log(session, audit_keys, published=kept)
        assert not report.ok and "truncated" in (report.reason or "")


@pytest.mark.committing
class TestCommitted:
    def test_concurrent_appends_do_not_wait_for_each_other(
        self, committing_engine: Engine, dialect: str
    ) -> None:
        if dialect != "postgresql":
            pytest.skip("SQLite has one writer at a time whatever the schema")
        from marketplace.core.db import make_session_factory

        factory = make_session_factory(committing_engine)
        first = factory()
        try:
            first.begin()
            record_event(first, STUDIO, "slow", object_id="obj_1", organization_id="org_a")
            # Still open. The second appender, with a short lock timeout, must not wait for it.
            with factory() as second, second.begin():
                second.execute(text("SET LOCAL lock_timeout = '500ms'"))
                record_event(second, OTHER, "fast", object_id="obj_2", organization_id="org_b")
            first.commit()
        finally:
            first.close()
        with factory() as s:
            assert {e.action for e in s.scalars(select(AuditEvent))} == {"slow", "fast"}

    def test_an_event_committed_after_a_later_one_was_sealed_is_sealed_next(
        self, committing_engine: Engine, dialect: str, audit_keys: AuditKeys
    ) -> None:
        if dialect != "postgresql":
            pytest.skip("SQLite has one writer at a time: no transaction commits under a seal")
        from marketplace.core.db import make_session_factory

        factory = make_session_factory(committing_engine)
        slow = factory()
        try:
            slow.begin()
            early = record_event(slow, STUDIO, "slow", object_id="o1", organization_id="org_a")
            with factory() as s, s.begin():
                late = record_event(s, STUDIO, "fast", object_id="o2", organization_id="org_a")
            assert early.id < late.id
            with factory() as s, s.begin():
                first = seal_batch(s, audit_keys, now=NOW)
                assert first is not None and first.tree_size == 1
            slow.commit()
        finally:
            slow.close()
        with factory() as s, s.begin():
            second = seal_batch(s, audit_keys, now=NOW)
            assert second is not None and (second.first_seq, second.tree_size) == (2, 2)
        with factory() as s:
            order = list(s.scalars(select(AuditEvent.id).order_by(AuditEvent.seq)))
            assert order == [late.id, early.id]  # the log's order is the order of sealing
            assert verify_log(s, audit_keys).ok

    def test_appends_while_sealing_all_end_in_one_verified_log(
        self, committing_engine: Engine, audit_keys: AuditKeys
    ) -> None:
        from marketplace.core.db import make_session_factory

        factory = make_session_factory(committing_engine)
        errors: list[BaseException] = []
        done = threading.Event()

        def appender(n: int) -> None:
            try:
                for i in range(15):
                    with factory() as s, s.begin():
                        record_event(
                            s, STUDIO, "race", object_id=f"obj_{n}_{i}", organization_id="org_a"
                        )
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        def sealer() -> None:
            try:
                while not done.is_set():
                    with factory() as s, s.begin():
                        seal_pending(s, audit_keys, now=datetime.now(UTC))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=appender, args=(n,)) for n in range(4)]
        seal_thread = threading.Thread(target=sealer)
        seal_thread.start()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        done.set()
        seal_thread.join()
        assert errors == []
        with factory() as s, s.begin():
            seal_pending(s, audit_keys, now=datetime.now(UTC))
        with factory() as s:
            seqs = list(s.scalars(select(AuditEvent.seq).order_by(AuditEvent.seq)))
            assert seqs == list(range(1, 61))
            report = verify_log(s, audit_keys)
            assert report.ok and report.checked == 60, report.reason

    def test_cli_verify_names_the_rewritten_event(
        self,
        committing_engine: Engine,
        database_url: str,
        audit_key_file: str,
        audit_keys: AuditKeys,
        monkeypatch: Any,
    ) -> None:
        from marketplace.cli import main
        from marketplace.core.db import make_session_factory

        factory = make_session_factory(committing_engine)
        with factory() as s, s.begin():
            events = _sealed(s, audit_keys, 3)
            _append(s, 1, start=3)
        monkeypatch.setenv("DATABASE_URL", database_url)
        monkeypatch.setenv("AUDIT_SIGNING_KEY_FILE", audit_key_file)
        runner = CliRunner()
        ok = runner.invoke(main, ["audit", "verify"])
        assert ok.exit_code == 0, ok.output
        assert "3 sealed events verified in 1 signed batches" in ok.output
        assert "1 events not sealed yet" in ok.output
        with factory() as s, s.begin():
            s.execute(text("UPDATE audit_events SET action = 'forged' WHERE seq = 2"))
            _rewrite_consistently(s)
        broken = runner.invoke(main, ["audit", "verify"])
        assert broken.exit_code == 1
        assert f"seq 2 ({events[1].id})" in broken.output
