"""Talent, credits and consents through the service."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog import talent
from catalog.models import Talent
from marketplace.audit.models import AuditEvent
from marketplace.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from tests.catalog.factories import make_talent, make_title, principal
from tests.world import World

CONSENT = {
    "attributes": ["voice", "name"],
    "permitted_uses": ["train"],
    "territories": ["us", "WW"],
    "start": date(2026, 1, 1),
    "end": date(2026, 12, 31),
}


def actions(session: Session, object_id: str) -> list[str]:
    return list(session.scalars(select(AuditEvent.action).where(AuditEvent.object_id == object_id)))


class TestTalent:
    def test_studio_adds_talent_to_its_own_catalog(self, session: Session, world: World) -> None:
        person = talent.create_talent(
            session,
            principal(world, "studio_a", member=True),
            name="  Ada Lovelace ",
            external_ids={"imdb": "nm0000001"},
        )
        assert (person.name, person.studio_id) == ("Ada Lovelace", world["studio_a"].org_id)
        assert person.external_ids == {"imdb": "nm0000001"}
        assert actions(session, person.id) == ["talent.created"]

    def test_operator_names_the_studio_and_developers_are_refused(
        self, session: Session, world: World
    ) -> None:
        with pytest.raises(ValidationFailed):
            talent.create_talent(session, principal(world, "operator"), name="X")
        made = talent.create_talent(
            session, principal(world, "operator"), name="X", studio_id=world["studio_b"].org_id
        )
        assert made.studio_id == world["studio_b"].org_id
        with pytest.raises(Forbidden):
            talent.create_talent(session, principal(world, "developer_x"), name="X")
        with pytest.raises(Forbidden):
            talent.visible_talent(principal(world, "developer_x"))

    def test_each_studio_sees_its_own_talent(self, session: Session, world: World) -> None:
        ours = make_talent(session, world["studio_a"].org_id)
        theirs = make_talent(session, world["studio_b"].org_id)

        def seen(name: str) -> set[str]:
            stmt = talent.visible_talent(principal(world, name)).with_only_columns(Talent.id)
            return set(session.scalars(stmt)) & {ours.id, theirs.id}

        assert seen("studio_a") == {ours.id}
        assert seen("operator") == {ours.id, theirs.id}
        with pytest.raises(NotFound):
            talent.get_talent(session, principal(world, "studio_b"), ours.id)


class TestCredits:
    def test_credit_joins_title_and_talent_of_one_studio(
        self, session: Session, world: World
    ) -> None:
        title = make_title(session, world["studio_a"].org_id)
        person = make_talent(session, world["studio_a"].org_id)
        credit = talent.add_credit(
            session, principal(world, "studio_a"), title.id, talent_id=person.id, role="voice"
        )
        assert (credit.title_id, credit.talent_id, credit.role) == (title.id, person.id, "voice")
        assert actions(session, credit.id) == ["credit.created"]
        with pytest.raises(Conflict):
            talent.add_credit(
                session, principal(world, "studio_a"), title.id, talent_id=person.id, role="voice"
            )
        crew = talent.add_credit(
            session, principal(world, "studio_a"), title.id, talent_id=person.id, role="crew"
        )
        assert crew.role == "crew"

    def test_another_studios_talent_is_answered_as_absent(
        self, session: Session, world: World
    ) -> None:
        title = make_title(session, world["studio_a"].org_id)
        theirs = make_talent(session, world["studio_b"].org_id)
        answers = []
        for talent_id in (theirs.id, "tal_nobody"):
            with pytest.raises(ValidationFailed) as exc:
                talent.add_credit(
                    session,
                    principal(world, "operator"),
                    title.id,
                    talent_id=talent_id,
                    role="cast",
                )
            answers.append(exc.value.errors)
        assert answers[0] == answers[1] == {"talent_id": ["No such talent in this title's studio."]}

    def test_unknown_role_and_foreign_callers(self, session: Session, world: World) -> None:
        title = make_title(session, world["studio_a"].org_id, visibility="listed")
        person = make_talent(session, world["studio_a"].org_id)
        with pytest.raises(ValidationFailed):
            talent.add_credit(
                session, principal(world, "studio_a"), title.id, talent_id=person.id, role="extra"
            )
        with pytest.raises(Forbidden):
            talent.add_credit(
                session, principal(world, "developer_x"), title.id, talent_id=person.id, role="cast"
            )
        with pytest.raises(NotFound):
            talent.add_credit(
                session, principal(world, "studio_b"), title.id, talent_id=person.id, role="cast"
            )


class TestConsents:
    def test_consent_is_normalized_and_audited(self, session: Session, world: World) -> None:
        person = make_talent(session, world["studio_a"].org_id)
        consent = talent.add_consent(session, principal(world, "studio_a"), person.id, **CONSENT)  # type: ignore[arg-type]
        assert consent.attributes == ["name", "voice"]
        assert consent.territories == ["US", "WW"]
        assert consent.studio_id == world["studio_a"].org_id
        assert actions(session, consent.id) == ["consent.created"]
        listed = session.scalars(
            talent.talent_consents(session, principal(world, "operator"), person.id)
        ).all()
        assert listed == [consent]

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("attributes", ["smell"]),
            ("attributes", []),
            ("permitted_uses", ["sell"]),
            ("territories", ["XX"]),
            ("end", date(2025, 1, 1)),
        ],
    )
    def test_invalid_consents_name_the_field(
        self, session: Session, world: World, field: str, value: object
    ) -> None:
        person = make_talent(session, world["studio_a"].org_id)
        with pytest.raises(ValidationFailed) as exc:
            talent.add_consent(
                session,
                principal(world, "studio_a"),
                person.id,
                **(CONSENT | {field: value}),  # type: ignore[arg-type]
            )
        assert list(exc.value.errors or {}) == [field]

    def test_only_the_owner_or_an_operator(self, session: Session, world: World) -> None:
        person = make_talent(session, world["studio_a"].org_id)
        with pytest.raises(NotFound):
            talent.add_consent(session, principal(world, "studio_b"), person.id, **CONSENT)  # type: ignore[arg-type]
        with pytest.raises(Forbidden):
            talent.add_consent(session, principal(world, "developer_x"), person.id, **CONSENT)  # type: ignore[arg-type]
