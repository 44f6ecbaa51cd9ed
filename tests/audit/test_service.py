"""The hash chain: appends, tenant visibility, and detection of every kind of tampering."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, delete, select, text, update
from sqlalchemy.orm import Session

from marketplace.accounts.principal import Principal
from marketplace.audit.models import GENESIS_HASH, AuditEvent
from marketplace.audit.service import present_event, record_event, verify_chain, visible_events

OPERATOR = Principal("usr_op", "org_op", "operator", "owner")
STUDIO = Principal("usr_a", "org_a", "studio", "owner")
OTHER = Principal("usr_b", "org_b", "studio", "owner")


def _append(session: Session, n: int) -> list[AuditEvent]:
    return [
        record_event(
            session,
            STUDIO,
            "thing.changed",
            object_id=f"ttl_{i}",
            organization_id="org_a",
            data={"i": i, "name": f"n{i}"},
        )
        for i in range(n)
    ]


class TestChain:
    def test_events_link_by_hash(self, session: Session) -> None:
        events = _append(session, 3)
        assert [e.seq for e in events] == [1, 2, 3]
        assert events[0].prev_hash == GENESIS_HASH
        assert events[1].prev_hash == events[0].hash
        assert events[2].prev_hash == events[1].hash
        assert len({e.hash for e in events}) == 3
        assert verify_chain(session).ok

    def test_an_edited_event_is_named(self, session: Session) -> None:
        events = _append(session, 5)
        session.execute(
            update(AuditEvent).where(AuditEvent.id == events[2].id).values(data={"i": 99})
        )
        session.expire_all()
        report = verify_chain(session)
        assert not report.ok
        assert (report.broken_seq, report.broken_event_id) == (3, events[2].id)

    def test_a_removed_event_is_found(self, session: Session) -> None:
        events = _append(session, 5)
        session.execute(delete(AuditEvent).where(AuditEvent.id == events[1].id))
        report = verify_chain(session)
        assert not report.ok and report.broken_seq == 3

    def test_a_removed_last_event_is_found(self, session: Session) -> None:
        events = _append(session, 4)
        session.execute(delete(AuditEvent).where(AuditEvent.id == events[-1].id))
        report = verify_chain(session)
        assert not report.ok and report.broken_seq == 4

    def test_reordered_events_are_found(self, session: Session) -> None:
        events = _append(session, 4)
        (a, a_seq), (b, b_seq) = (events[1], events[1].seq), (events[2], events[2].seq)
        session.execute(update(AuditEvent).where(AuditEvent.id == a.id).values(seq=-1))
        session.execute(update(AuditEvent).where(AuditEvent.id == b.id).values(seq=a_seq))
        session.execute(update(AuditEvent).where(AuditEvent.id == a.id).values(seq=b_seq))
        session.expire_all()
        report = verify_chain(session)
        assert not report.ok and report.broken_seq == 2

    def test_a_rewritten_actor_is_found(self, session: Session) -> None:
        events = _append(session, 2)
        session.execute(
            update(AuditEvent)
            .where(AuditEvent.id == events[0].id)
            .values(actor_user_id="usr_someone_else")
        )
        session.expire_all()
        assert verify_chain(session).broken_seq == 1


class TestVisibility:
    def test_tenants_see_their_own_events_operators_all(self, session: Session) -> None:
        record_event(session, STUDIO, "a", object_id="x1", organization_id="org_a")
        record_event(session, OTHER, "b", object_id="x2", organization_id="org_b")
        record_event(
            session, OPERATOR, "c", object_id="x3", organization_id="org_a", parties=["org_b"]
        )

        def actions(p: Principal) -> list[str]:
            return [e.action for e in session.scalars(visible_events(p).order_by(AuditEvent.seq))]

        assert actions(STUDIO) == ["a", "c"]
        assert actions(OTHER) == ["b", "c"]
        assert actions(OPERATOR) == ["a", "b", "c"]

    def test_tenants_see_who_acted_only_among_their_own(self, session: Session) -> None:
        event = record_event(
            session,
            OTHER,
            "offer.accepted",
            object_id="x1",
            organization_id="org_a",
            parties=["org_b"],
        )
        # The studio sees the event about its object, not which of org_b's users acted.
        assert present_event(event, STUDIO)["actor_user_id"] is None
        assert present_event(event, STUDIO)["actor_organization_id"] is None
        assert present_event(event, OTHER)["actor_user_id"] == OTHER.user_id
        assert present_event(event, OPERATOR)["actor_organization_id"] == "org_b"
        assert "salt" not in present_event(event, OPERATOR)

    def test_the_hash_covers_a_salt_tenants_never_see(self, session: Session) -> None:
        first = record_event(session, STUDIO, "a", object_id="x1", organization_id="org_a")
        second = record_event(session, STUDIO, "a", object_id="x1", organization_id="org_a")
        assert len(first.salt) == 32 and first.salt != second.salt
        session.execute(update(AuditEvent).where(AuditEvent.id == first.id).values(salt="0" * 32))
        session.expire_all()
        report = verify_chain(session)
        assert not report.ok and report.broken_event_id == first.id


@pytest.mark.committing
class TestCommitted:
    def test_concurrent_appends_form_one_chain(self, committing_engine: Engine) -> None:
        from marketplace.core.db import make_session_factory

        factory = make_session_factory(committing_engine)
        errors: list[BaseException] = []

        def worker(n: int) -> None:
            try:
                for i in range(10):
                    with factory() as s, s.begin():
                        record_event(
                            s, STUDIO, "race", object_id=f"obj_{n}_{i}", organization_id="org_a"
                        )
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        with factory() as s:
            seqs = list(s.scalars(select(AuditEvent.seq).order_by(AuditEvent.seq)))
            assert seqs == list(range(1, 41))
            assert verify_chain(s).ok

    def test_cli_verify_names_the_tampered_event(
        self, committing_engine: Engine, database_url: str, monkeypatch: Any
    ) -> None:
        from marketplace.cli import main
        from marketplace.core.db import make_session_factory

        factory = make_session_factory(committing_engine)
        with factory() as s, s.begin():
            events = _append(s, 3)
        monkeypatch.setenv("DATABASE_URL", database_url)
        runner = CliRunner()
        ok = runner.invoke(main, ["audit", "verify"])
        assert ok.exit_code == 0, ok.output
        assert "3 events verified" in ok.output
        with committing_engine.begin() as conn:
            conn.execute(text("UPDATE audit_events SET action = 'forged' WHERE seq = 2"))
        broken = runner.invoke(main, ["audit", "verify"])
        assert broken.exit_code == 1
        assert f"seq 2 ({events[1].id})" in broken.output
