"""Rights grants through the service: normalization, search terms, tenancy, deletion."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog import rights
from catalog.models import RightsGrant, RightsTerm
from marketplace.audit.models import AuditEvent
from marketplace.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from tests.catalog.factories import make_grant, make_title, principal
from tests.world import World


def terms(session: Session, grant_id: str) -> set[tuple[str, str, str]]:
    return {
        (t.territory, t.use, t.title_id)
        for t in session.scalars(select(RightsTerm).where(RightsTerm.grant_id == grant_id))
    }


class TestCreateGrant:
    def test_normalizes_and_keeps_one_term_per_territory_and_use(
        self, session: Session, world: World
    ) -> None:
        title = make_title(session, world["studio_a"].org_id)
        grant = rights.create_grant(
            session,
            principal(world, "studio_a", member=True),
            title.id,
            territories=["fr", "US", " fr "],
            start=date(2026, 1, 1),
            end=date(2026, 12, 31),
            permitted_uses=["evaluate", "train", "train"],
            exclusive_available=True,
        )
        assert grant.territories == ["FR", "US"]
        assert grant.permitted_uses == ["train", "evaluate"]
        assert terms(session, grant.id) == {
            (territory, use, title.id)
            for territory in ("FR", "US")
            for use in ("train", "evaluate")
        }
        [event] = session.scalars(select(AuditEvent).where(AuditEvent.object_id == grant.id)).all()
        assert event.action == "rights.granted"
        assert event.data["territories"] == ["FR", "US"]
        assert event.organization_id == world["studio_a"].org_id

    def test_worldwide_is_a_territory(self, session: Session, world: World) -> None:
        title = make_title(session, world["studio_a"].org_id)
        grant = rights.create_grant(
            session,
            principal(world, "operator"),
            title.id,
            territories=["ww"],
            start=date(2026, 1, 1),
            end=date(2026, 1, 1),
            permitted_uses=["generate_reference"],
        )
        assert terms(session, grant.id) == {("WW", "generate_reference", title.id)}

    @pytest.mark.parametrize(
        ("changes", "field", "message"),
        [
            ({"end": date(2025, 12, 31)}, "end", "before start"),
            ({"territories": ["UK"]}, "territories", "use GB"),
            ({"territories": []}, "territories", "at least one"),
            ({"permitted_uses": ["broadcast"]}, "permitted_uses", "broadcast"),
            ({"permitted_uses": []}, "permitted_uses", "at least one"),
        ],
    )
    def test_invalid_grants_name_the_field(
        self, session: Session, world: World, changes: dict[str, object], field: str, message: str
    ) -> None:
        title = make_title(session, world["studio_a"].org_id)
        fields: dict[str, object] = {
            "territories": ["US"],
            "start": date(2026, 1, 1),
            "end": date(2026, 12, 31),
            "permitted_uses": ["train"],
        } | changes
        with pytest.raises(ValidationFailed) as exc:
            rights.create_grant(session, principal(world, "studio_a"), title.id, **fields)  # type: ignore[arg-type]
        errors = exc.value.errors or {}
        assert list(errors) == [field]
        assert message in " ".join(errors[field])

    def test_external_id_is_unique_per_studio(self, session: Session, world: World) -> None:
        title = make_title(session, world["studio_a"].org_id)
        fields = {
            "territories": ["US"],
            "start": date(2026, 1, 1),
            "end": date(2026, 12, 31),
            "permitted_uses": ["train"],
            "external_id": "r-1",
        }
        rights.create_grant(session, principal(world, "studio_a"), title.id, **fields)  # type: ignore[arg-type]
        with pytest.raises(Conflict):
            rights.create_grant(session, principal(world, "studio_a"), title.id, **fields)  # type: ignore[arg-type]

    def test_only_the_owner_or_an_operator_grants(self, session: Session, world: World) -> None:
        title = make_title(session, world["studio_a"].org_id, visibility="listed")
        fields = {
            "territories": ["US"],
            "start": date(2026, 1, 1),
            "end": date(2026, 12, 31),
            "permitted_uses": ["train"],
        }
        with pytest.raises(Forbidden):
            rights.create_grant(session, principal(world, "developer_x"), title.id, **fields)  # type: ignore[arg-type]
        with pytest.raises(NotFound):
            rights.create_grant(session, principal(world, "studio_b"), title.id, **fields)  # type: ignore[arg-type]


class TestListAndDelete:
    def test_developers_read_grants_of_titles_they_see(
        self, session: Session, world: World
    ) -> None:
        listed = make_title(session, world["studio_a"].org_id, visibility="listed")
        private = make_title(session, world["studio_a"].org_id, visibility="private")
        grant = make_grant(session, listed)
        make_grant(session, private)
        developer = principal(world, "developer_x")
        assert session.scalars(rights.title_grants(session, developer, listed.id)).all() == [grant]
        with pytest.raises(NotFound):
            rights.title_grants(session, developer, private.id)

    def test_delete_removes_the_grant_and_its_terms(self, session: Session, world: World) -> None:
        title = make_title(session, world["studio_a"].org_id, visibility="listed")
        grant = make_grant(session, title, territories=("US", "CA"))
        kept = make_grant(session, title)
        with pytest.raises(Forbidden):
            rights.delete_grant(session, principal(world, "developer_x"), grant.id)
        with pytest.raises(NotFound):
            rights.delete_grant(session, principal(world, "studio_b"), grant.id)
        rights.delete_grant(session, principal(world, "studio_a", member=True), grant.id)
        session.expire_all()
        assert session.get(RightsGrant, grant.id) is None
        assert terms(session, grant.id) == set()
        assert terms(session, kept.id) != set()
        with pytest.raises(NotFound):
            rights.delete_grant(session, principal(world, "studio_a"), grant.id)
        assert (
            session.scalar(select(AuditEvent.action).where(AuditEvent.object_id == grant.id))
            == "rights.deleted"
        )
