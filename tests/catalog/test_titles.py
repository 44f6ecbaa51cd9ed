"""Titles through the service: tenancy, validation, hierarchy, edits and deletion."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog import titles
from catalog.access import get_visible_title, visible_titles
from catalog.models import Asset, Credit, RightsGrant, RightsTerm, Title, TitleGenre
from catalog.presenters import present_titles
from marketplace.audit.models import AuditEvent
from marketplace.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from tests.catalog.factories import (
    make_asset,
    make_credit,
    make_grant,
    make_talent,
    make_title,
    principal,
)
from tests.world import World

EIDR = "10.5240/7791-8534-2C23-9030-8610-5"


def events(session: Session, action: str, object_id: str) -> list[AuditEvent]:
    return list(
        session.scalars(
            select(AuditEvent).where(AuditEvent.action == action, AuditEvent.object_id == object_id)
        )
    )


def genre_rows(session: Session, title_id: str) -> set[str]:
    return set(session.scalars(select(TitleGenre.genre).where(TitleGenre.title_id == title_id)))


class TestCreateTitle:
    def test_studio_creates_in_its_own_catalog_with_normalized_codes(
        self, session: Session, world: World
    ) -> None:
        studio = principal(world, "studio_a", member=True)
        title = titles.create_title(
            session,
            studio,
            external_id=" film-1 ",
            kind="film",
            name="The Long Take",
            eidr_id=EIDR.lower(),
            original_language="PT_br",
            genres=["Drama", " drama", "Science  Fiction"],
            release_year=1999,
        )
        assert title.studio_id == world["studio_a"].org_id
        assert title.external_id == "film-1"
        assert title.eidr_id == EIDR
        assert title.original_language == "pt-BR"
        assert title.genres == ["drama", "science fiction"]
        assert genre_rows(session, title.id) == {"drama", "science fiction"}
        assert title.visibility == "private"
        assert (title.parent_id, title.root_id, title.content_hours) == (None, None, 0.0)
        [event] = events(session, "title.created", title.id)
        assert event.organization_id == world["studio_a"].org_id
        assert event.actor_user_id == world["studio_a"].member_id

    def test_a_studio_may_not_name_another_studio(self, session: Session, world: World) -> None:
        with pytest.raises(Forbidden):
            titles.create_title(
                session,
                principal(world, "studio_a"),
                studio_id=world["studio_b"].org_id,
                external_id="x",
                kind="film",
                name="X",
            )

    def test_operator_acts_for_a_named_studio_only(self, session: Session, world: World) -> None:
        operator = principal(world, "operator")
        with pytest.raises(ValidationFailed) as missing:
            titles.create_title(session, operator, external_id="x", kind="film", name="X")
        assert "studio_id" in (missing.value.errors or {})
        with pytest.raises(ValidationFailed) as not_studio:
            titles.create_title(
                session,
                operator,
                studio_id=world["developer_x"].org_id,
                external_id="x",
                kind="film",
                name="X",
            )
        assert "studio_id" in (not_studio.value.errors or {})
        title = titles.create_title(
            session,
            operator,
            studio_id=world["studio_b"].org_id,
            external_id="x",
            kind="film",
            name="X",
        )
        assert title.studio_id == world["studio_b"].org_id

    def test_developers_cannot_create_titles(self, session: Session, world: World) -> None:
        with pytest.raises(Forbidden):
            titles.create_title(
                session, principal(world, "developer_x"), external_id="x", kind="film", name="X"
            )

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("eidr_id", "10.5240/7791-8534-2C23-9030-8610-6"),  # wrong check character
            ("eidr_id", "10.1234/7791-8534-2C23-9030-8610-5"),
            ("original_language", "xx"),
            ("release_year", 1700),
            ("genres", ["x" * 51]),
        ],
    )
    def test_invalid_fields_are_named(
        self, session: Session, world: World, field: str, value: object
    ) -> None:
        with pytest.raises(ValidationFailed) as exc:
            titles.create_title(
                session,
                principal(world, "studio_a"),
                external_id="x",
                kind="film",
                name="X",
                **{field: value},  # type: ignore[arg-type]
            )
        assert list(exc.value.errors or {}) == [field]

    def test_external_id_is_unique_per_studio(self, session: Session, world: World) -> None:
        a, b = principal(world, "studio_a"), principal(world, "studio_b")
        titles.create_title(session, a, external_id="same", kind="film", name="One")
        with pytest.raises(Conflict) as exc:
            titles.create_title(session, a, external_id="same", kind="film", name="Two")
        assert "external_id" in (exc.value.errors or {})
        other = titles.create_title(session, b, external_id="same", kind="film", name="Three")
        assert other.studio_id == world["studio_b"].org_id


class TestHierarchy:
    def test_series_season_episode_carry_their_root(self, session: Session, world: World) -> None:
        studio = principal(world, "studio_a")
        series = titles.create_title(session, studio, external_id="s", kind="series", name="S")
        season = titles.create_title(
            session, studio, external_id="s1", kind="season", name="S1", parent_id=series.id
        )
        episode = titles.create_title(
            session, studio, external_id="s1e1", kind="episode", name="E1", parent_id=season.id
        )
        special = titles.create_title(
            session, studio, external_id="sp", kind="episode", name="Special", parent_id=series.id
        )
        assert (season.parent_id, season.root_id) == (series.id, series.id)
        assert (episode.parent_id, episode.root_id) == (season.id, series.id)
        assert episode.ancestor_ids == [season.id, series.id]
        assert special.ancestor_ids == [series.id]

    @pytest.mark.parametrize(
        ("kind", "parent_kind"),
        [
            ("season", None),
            ("episode", None),
            ("film", "series"),
            ("series", "series"),
            ("season", "film"),
            ("season", "season"),
            ("episode", "episode"),
            ("episode", "film"),
        ],
    )
    def test_impossible_placements_are_refused(
        self, session: Session, world: World, kind: str, parent_kind: str | None
    ) -> None:
        studio = principal(world, "studio_a")
        parent_id = None
        if parent_kind is not None:
            parent_id = make_title(session, world["studio_a"].org_id, kind="series").id
            if parent_kind != "series":
                parent_id = make_title(
                    session,
                    world["studio_a"].org_id,
                    kind=parent_kind,
                    parent=session.get(Title, parent_id) if parent_kind != "film" else None,
                ).id
        with pytest.raises(ValidationFailed) as exc:
            titles.create_title(
                session, studio, external_id="c", kind=kind, name="C", parent_id=parent_id
            )
        assert list(exc.value.errors or {}) == ["parent_id"]

    def test_another_studios_parent_is_answered_as_absent(
        self, session: Session, world: World
    ) -> None:
        theirs = make_title(session, world["studio_b"].org_id, kind="series")
        studio = principal(world, "studio_a")
        messages = []
        for parent_id in (theirs.id, "ttl_does_not_exist"):
            with pytest.raises(ValidationFailed) as exc:
                titles.create_title(
                    session, studio, external_id="c", kind="season", name="C", parent_id=parent_id
                )
            messages.append(exc.value.errors)
        assert messages[0] == messages[1]


class TestVisibility:
    def test_who_sees_which_titles(self, session: Session, world: World) -> None:
        a, b = world["studio_a"].org_id, world["studio_b"].org_id
        made = {
            (owner, vis): make_title(session, org, visibility=vis).id
            for owner, org in (("a", a), ("b", b))
            for vis in ("private", "anonymized", "listed")
        }

        def seen(name: str) -> set[tuple[str, str]]:
            ids = set(
                session.scalars(visible_titles(principal(world, name)).with_only_columns(Title.id))
            )
            return {key for key, title_id in made.items() if title_id in ids}

        assert seen("operator") == set(made)
        assert seen("studio_a") == {k for k in made if k[0] == "a"}
        assert seen("developer_x") == {k for k in made if k[1] != "private"}
        with pytest.raises(NotFound):
            get_visible_title(session, principal(world, "studio_b"), made[("a", "listed")])


class TestUpdateTitle:
    def test_descriptive_fields_change_and_are_audited(
        self, session: Session, world: World
    ) -> None:
        title = make_title(session, world["studio_a"].org_id, visibility="private")
        updated = titles.update_title(
            session,
            principal(world, "studio_a", member=True),
            title.id,
            {"name": "Renamed", "visibility": "anonymized", "genres": ["Horror"], "synopsis": None},
        )
        assert (updated.name, updated.visibility, updated.synopsis) == (
            "Renamed",
            "anonymized",
            None,
        )
        assert genre_rows(session, title.id) == {"horror"}
        [event] = events(session, "title.updated", title.id)
        assert event.data["fields"] == ["genres", "name", "synopsis", "visibility"]

    def test_no_change_writes_no_event(self, session: Session, world: World) -> None:
        title = make_title(session, world["studio_a"].org_id, name="Same")
        titles.update_title(session, principal(world, "studio_a"), title.id, {"name": "Same"})
        assert events(session, "title.updated", title.id) == []

    def test_kind_and_parent_are_fixed(self, session: Session, world: World) -> None:
        title = make_title(session, world["studio_a"].org_id)
        with pytest.raises(ValidationFailed) as exc:
            titles.update_title(session, principal(world, "studio_a"), title.id, {"kind": "series"})
        assert list(exc.value.errors or {}) == ["kind"]

    def test_external_id_stays_unique(self, session: Session, world: World) -> None:
        first = make_title(session, world["studio_a"].org_id)
        second = make_title(session, world["studio_a"].org_id)
        with pytest.raises(Conflict):
            titles.update_title(
                session, principal(world, "studio_a"), second.id, {"external_id": first.external_id}
            )

    def test_read_only_and_invisible_callers(self, session: Session, world: World) -> None:
        listed = make_title(session, world["studio_a"].org_id, visibility="listed")
        private = make_title(session, world["studio_a"].org_id, visibility="private")
        developer = principal(world, "developer_x")
        with pytest.raises(Forbidden):
            titles.update_title(session, developer, listed.id, {"name": "Mine"})
        with pytest.raises(NotFound):
            titles.update_title(session, developer, private.id, {"name": "Mine"})
        with pytest.raises(NotFound):
            titles.update_title(session, principal(world, "studio_b"), listed.id, {"name": "B"})
        operator = titles.update_title(
            session, principal(world, "operator"), listed.id, {"name": "By operator"}
        )
        assert operator.name == "By operator"


class TestDeleteTitle:
    def test_deletes_a_leaf_with_everything_hanging_off_it(
        self, session: Session, world: World
    ) -> None:
        org = world["studio_a"].org_id
        series = make_title(session, org, kind="series")
        episode = make_title(session, org, kind="episode", parent=series)
        sibling = make_title(session, org, kind="episode", parent=series)
        make_asset(session, episode, duration_seconds=1800.0, height=2160)
        make_asset(session, sibling, duration_seconds=1200.0, height=720)
        grant = make_grant(session, episode)
        make_credit(session, episode, make_talent(session, org))
        session.refresh(series)
        assert series.content_seconds == 3000.0
        assert series.max_height == 2160

        titles.delete_title(session, principal(world, "studio_a"), episode.id, guards=())

        session.expire_all()
        assert session.get(Title, episode.id) is None
        for model in (Asset, Credit, RightsGrant, TitleGenre):
            count = session.scalar(
                select(func.count()).select_from(model).where(model.title_id == episode.id)
            )
            assert count == 0, model
        assert (
            session.scalar(
                select(func.count()).select_from(RightsTerm).where(RightsTerm.grant_id == grant.id)
            )
            == 0
        )
        series = session.get(Title, series.id)
        assert series is not None
        assert (series.content_seconds, series.max_height) == (1200.0, 720)
        assert len(events(session, "title.deleted", episode.id)) == 1

    def test_a_title_with_children_is_kept(self, session: Session, world: World) -> None:
        series = make_title(session, world["studio_a"].org_id, kind="series")
        make_title(session, world["studio_a"].org_id, kind="season", parent=series)
        with pytest.raises(Conflict):
            titles.delete_title(session, principal(world, "studio_a"), series.id, guards=())
        assert session.get(Title, series.id) is not None

    def test_developers_and_other_studios_cannot_delete(
        self, session: Session, world: World
    ) -> None:
        title = make_title(session, world["studio_a"].org_id, visibility="listed")
        with pytest.raises(Forbidden):
            titles.delete_title(session, principal(world, "developer_y"), title.id, guards=())
        with pytest.raises(NotFound):
            titles.delete_title(session, principal(world, "studio_b"), title.id, guards=())


class TestPresentTitles:
    def test_lists_hide_parents_of_another_visibility(self, session: Session, world: World) -> None:
        org = world["studio_a"].org_id
        listed = make_title(session, org, kind="series", visibility="listed")
        private = make_title(session, org, kind="series", visibility="private")
        anonymous = make_title(session, org, kind="series", visibility="anonymized")
        children = [
            make_title(session, org, kind="episode", parent=listed, visibility="listed"),
            make_title(session, org, kind="episode", parent=private, visibility="listed"),
            make_title(session, org, kind="episode", parent=anonymous, visibility="anonymized"),
            make_title(session, org, kind="episode", parent=listed, visibility="anonymized"),
            make_title(session, org, kind="film", visibility="listed"),
        ]
        developer = principal(world, "developer_x")
        shown = [b["parent_id"] for b in present_titles(session, children, developer)]
        assert shown == [listed.id, None, anonymous.id, None, None]
        owner = principal(world, "studio_a")
        assert [b["parent_id"] for b in present_titles(session, children, owner)] == [
            t.parent_id for t in children
        ]
        bodies = present_titles(session, children, developer)
        assert [b["anonymized"] for b in bodies] == [False, False, True, True, False]
        assert bodies[2]["name"] is None and bodies[2]["studio_id"] is None
