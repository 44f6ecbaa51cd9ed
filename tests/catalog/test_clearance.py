"""Clearance against the database: exact answers, with reasons, for each way a title fails."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from catalog.clearance import (
    Blocked,
    ClearanceCheck,
    ClearanceRequest,
    ClearanceResult,
    Reason,
    check_clearance,
)
from catalog.errors import NotCleared
from catalog.models import Title
from marketplace.core.errors import NotFound, ValidationFailed
from tests.catalog.factories import (
    cleared_film,
    make_asset,
    make_consent,
    make_credit,
    make_grant,
    make_talent,
    make_title,
    principal,
)
from tests.world import World

START, END = date(2026, 1, 1), date(2026, 12, 31)
TERM = "2026-01-01..2026-12-31"


def clear(
    session: Session,
    world: World,
    titles: list[Title],
    *,
    viewer: str = "studio_a",
    uses: tuple[str, ...] = ("train",),
    territories: tuple[str, ...] = ("US",),
    start: date = START,
    end: date = END,
    exclusive: bool = False,
    checks: Sequence[ClearanceCheck] = (),
) -> ClearanceResult:
    return check_clearance(
        session,
        principal(world, viewer),
        title_ids=[t.id for t in titles],
        uses=uses,
        territories=territories,
        start=start,
        end=end,
        exclusive=exclusive,
        checks=checks,
    )


def blocked(title: Title, *reasons: tuple[str, str]) -> ClearanceResult:
    return ClearanceResult(cleared=[], blocked=[Blocked(title.id, [Reason(*r) for r in reasons])])


def cleared(*titles: Title) -> ClearanceResult:
    return ClearanceResult(cleared=[t.id for t in titles], blocked=[])


@pytest.fixture
def film(session: Session, world: World) -> Title:
    """A film with a ready video and a US grant for training over 2026."""
    title = make_title(session, world["studio_a"].org_id, visibility="listed")
    make_asset(session, title)
    make_grant(session, title, territories=("US",), start=START, end=END, uses=("train",))
    return title


class TestTheSixScenarios:
    def test_baseline_clears(self, session: Session, world: World, film: Title) -> None:
        assert clear(session, world, [film]) == cleared(film)

    def test_a_territory_not_granted(self, session: Session, world: World, film: Title) -> None:
        assert clear(session, world, [film], territories=("US", "fr")) == blocked(
            film, ("no_rights", f"no grant permits train in FR during {TERM}")
        )

    def test_a_window_one_day_too_short(self, session: Session, world: World, film: Title) -> None:
        assert clear(session, world, [film], end=date(2027, 1, 1)) == blocked(
            film,
            (
                "no_rights",
                "grants permit train in US for part of 2026-01-01..2027-01-01 only: "
                "2027-01-01 is not covered",
            ),
        )
        assert clear(session, world, [film], start=date(2025, 12, 31)) == blocked(
            film,
            (
                "no_rights",
                "grants permit train in US for part of 2025-12-31..2026-12-31 only: "
                "2025-12-31 is not covered",
            ),
        )

    def test_a_missing_use(self, session: Session, world: World, film: Title) -> None:
        assert clear(session, world, [film], uses=("train", "generate_reference")) == blocked(
            film, ("no_rights", f"no grant permits generate_reference in US during {TERM}")
        )

    def test_a_grant_on_the_parent_series_covers_the_episode(
        self, session: Session, world: World
    ) -> None:
        org = world["studio_a"].org_id
        series = make_title(session, org, kind="series")
        season = make_title(session, org, kind="season", parent=series)
        episode = make_title(session, org, kind="episode", parent=season)
        sibling = make_title(session, org, kind="episode", parent=season)
        make_asset(session, episode)
        make_grant(session, sibling, territories=("US",), start=START, end=END, uses=("train",))
        # A sibling's grant covers the sibling only.
        assert clear(session, world, [episode]) == blocked(
            episode, ("no_rights", f"no grant permits train in US during {TERM}")
        )
        make_grant(session, series, territories=("US",), start=START, end=END, uses=("train",))
        assert clear(session, world, [episode]) == cleared(episode)

    def test_a_missing_voice_consent(self, session: Session, world: World, film: Title) -> None:
        org = world["studio_a"].org_id
        voice = make_talent(session, org, name="Vera Voice")
        make_credit(session, film, voice, "voice")
        make_consent(session, voice, attributes=("name",), territories=("US",))
        crew = make_talent(session, org, name="Carl Crew")
        make_credit(session, film, crew, "crew")  # crew need no consent
        assert clear(session, world, [film]) == blocked(
            film,
            (
                "talent_consent_missing",
                f"Vera Voice ({voice.id}, voice) has no consent covering voice for train "
                f"in US during {TERM}",
            ),
        )
        make_consent(session, voice, attributes=("voice",), territories=("WW",))
        assert clear(session, world, [film]) == cleared(film)

    def test_an_asset_never_completed(self, session: Session, world: World) -> None:
        title = make_title(session, world["studio_a"].org_id)
        make_grant(session, title, territories=("US",), start=START, end=END, uses=("train",))
        make_asset(session, title, status="pending")
        make_asset(session, title, kind="image", status="ready")  # not a video
        assert clear(session, world, [title]) == blocked(
            title,
            (
                "asset_not_ready",
                "no ready video asset on this title: 1 video asset(s) registered but never "
                "completed (upload the file, then POST /assets/{id}/complete)",
            ),
        )


class TestCoverage:
    def test_every_failure_is_reported_in_a_stable_order(
        self, session: Session, world: World
    ) -> None:
        title = make_title(session, world["studio_a"].org_id)
        star = make_talent(session, world["studio_a"].org_id, name="Sam Star")
        make_credit(session, title, star, "cast")
        make_consent(session, star, attributes=("name", "image"), territories=("US",))
        result = clear(session, world, [title], uses=("train", "evaluate"), territories=("US",))
        assert [r.code for r in result.blocked[0].reasons] == [
            "no_rights",
            "no_rights",
            "talent_consent_missing",
            "asset_not_ready",
        ]
        assert result.blocked[0].reasons[2].detail == (
            f"Sam Star ({star.id}, cast) has no consent covering likeness, voice for "
            f"train, evaluate in US during {TERM}"
        )

    def test_adjacent_grants_add_up(self, session: Session, world: World) -> None:
        title = make_title(session, world["studio_a"].org_id)
        make_asset(session, title)
        make_grant(session, title, territories=("US",), start=START, end=date(2026, 6, 30))
        make_grant(session, title, territories=("US",), start=date(2026, 7, 1), end=END)
        assert clear(session, world, [title]) == cleared(title)

    def test_countries_never_add_up_to_worldwide(self, session: Session, world: World) -> None:
        title = make_title(session, world["studio_a"].org_id)
        make_asset(session, title)
        make_grant(session, title, territories=("US", "FR"), start=START, end=END)
        assert clear(session, world, [title], territories=("FR", "US")) == cleared(title)
        assert clear(session, world, [title], territories=("WW",)) == blocked(
            title, ("no_rights", f"no grant permits train in WW during {TERM}")
        )

    def test_exclusive_needs_exclusive_available_grants(
        self, session: Session, world: World, film: Title
    ) -> None:
        assert clear(session, world, [film], exclusive=True) == blocked(
            film, ("no_rights", f"no grant exclusively permits train in US during {TERM}")
        )
        make_grant(session, film, territories=("US",), exclusive_available=True)
        assert clear(session, world, [film], exclusive=True) == cleared(film)

    def test_a_series_clears_through_its_episodes(self, session: Session, world: World) -> None:
        org = world["studio_a"].org_id
        series = make_title(session, org, kind="series")
        episode = make_title(session, org, kind="episode", parent=series)
        make_grant(session, series)
        assert [r.code for r in clear(session, world, [series]).blocked[0].reasons] == [
            "asset_not_ready"
        ]
        make_asset(session, episode)
        assert clear(session, world, [series]) == cleared(series)
        guest = make_talent(session, org, name="Gina Guest")
        make_credit(session, episode, guest, "cast")
        # Licensing the series licenses the episode the guest appears in.
        result = clear(session, world, [series, episode])
        assert [b.title_id for b in result.blocked] == [series.id, episode.id]
        assert all(b.reasons[0].code == "talent_consent_missing" for b in result.blocked)

    def test_series_regulars_need_consent_for_every_episode(
        self, session: Session, world: World
    ) -> None:
        org = world["studio_a"].org_id
        series = make_title(session, org, kind="series")
        episode = make_title(session, org, kind="episode", parent=series)
        make_grant(session, series)
        make_asset(session, episode)
        make_credit(session, series, make_talent(session, org), "cast")
        assert clear(session, world, [episode]).blocked[0].reasons[0].code == (
            "talent_consent_missing"
        )


class TestManyTitles:
    def test_results_keep_request_order_without_duplicates(
        self, session: Session, world: World, film: Title
    ) -> None:
        org = world["studio_a"].org_id
        first, last = cleared_film(session, org), cleared_film(session, org)
        result = clear(session, world, [first, film, last, first], territories=("US", "CA"))
        assert result.cleared == [first.id, last.id]
        assert [b.title_id for b in result.blocked] == [film.id]
        assert not result.ok

    def test_titles_the_caller_cannot_see_are_not_found_by_name(
        self, session: Session, world: World, film: Title
    ) -> None:
        private = make_title(session, world["studio_b"].org_id, visibility="private")
        with pytest.raises(NotFound) as exc:
            clear(session, world, [film, private], viewer="developer_x")
        assert exc.value.errors == {"title_ids": [private.id]}
        with pytest.raises(NotFound):
            clear(session, world, [film], viewer="studio_b")
        assert clear(session, world, [film], viewer="developer_x") == cleared(film)

    def test_query_count_does_not_grow_with_titles(self, session: Session, world: World) -> None:
        org = world["studio_a"].org_id

        def title_with_everything() -> Title:
            series = make_title(session, org, kind="series")
            episode = make_title(session, org, kind="episode", parent=series)
            make_grant(session, series, territories=("US",))
            make_asset(session, episode)
            person = make_talent(session, org)
            make_credit(session, episode, person, "cast")
            make_consent(session, person)
            return episode

        few = [title_with_everything() for _ in range(2)]
        many = [title_with_everything() for _ in range(12)]
        session.flush()
        counts = []
        for titles in (few, many):
            with count_statements(session) as statements:
                result = clear(session, world, titles)
            assert result == cleared(*titles)
            counts.append(len(statements))
        assert counts[0] == counts[1]

    def test_invalid_requests_name_the_field(
        self, session: Session, world: World, film: Title
    ) -> None:
        cases: list[tuple[dict[str, Any], str]] = [
            ({"uses": ()}, "uses"),
            ({"uses": ("broadcast",)}, "uses"),
            ({"territories": ("XX",)}, "territories"),
            ({"end": date(2025, 1, 1)}, "end"),
        ]
        for changes, field in cases:
            with pytest.raises(ValidationFailed) as exc:
                clear(session, world, [film], **changes)
            assert list(exc.value.errors or {}) == [field]
        with pytest.raises(ValidationFailed):
            clear(session, world, [])


class TestAnonymity:
    def test_developers_never_learn_talent_of_anonymized_titles(
        self, session: Session, world: World
    ) -> None:
        org = world["studio_a"].org_id
        secret = make_title(session, org, visibility="anonymized")
        public = make_title(session, org, visibility="listed")
        for title in (secret, public):
            make_grant(session, title)
            make_asset(session, title)
            make_credit(session, title, make_talent(session, org, name="Famous Face"), "cast")
        result = clear(session, world, [secret, public], viewer="developer_x")
        details = {b.title_id: b.reasons[0].detail for b in result.blocked}
        assert details[secret.id].startswith("a cast credit has no consent covering")
        assert "Famous Face" not in details[secret.id]
        assert "tal_" not in details[secret.id]
        assert details[public.id].startswith("Famous Face (tal_")
        studio_view = clear(session, world, [secret])
        assert studio_view.blocked[0].reasons[0].detail.startswith("Famous Face (tal_")


class TestCrossDomainChecks:
    """Checks of other domains (the contracts layer's exclusivity) are passed in, and run
    after the catalog's own: only those passed, whatever else the process built."""

    def test_checks_passed_add_reasons(self, session: Session, world: World, film: Title) -> None:
        seen: list[ClearanceRequest] = []

        def exclusivity(
            session: Session, request: ClearanceRequest, titles: list[Title]
        ) -> dict[str, list[Reason]]:
            seen.append(request)
            return {
                titles[0].id: [Reason("exclusivity_conflict", "licensed exclusively elsewhere")],
                "ttl_not_requested": [Reason("exclusivity_conflict", "ignored")],
            }

        other = make_title(session, world["studio_a"].org_id)
        make_grant(session, other, exclusive_available=True)
        make_asset(session, other)
        result = clear(
            session,
            world,
            [film, other],
            territories=("us", "ca"),
            exclusive=True,
            checks=(exclusivity,),
        )
        assert len(seen) == 1
        assert seen[0].territories == ("CA", "US")
        assert seen[0].exclusive is True
        assert seen[0].title_ids == (film.id, other.id)
        assert result.cleared == [other.id]
        assert [r.code for r in result.blocked[0].reasons] == [
            "no_rights",
            "no_rights",
            "exclusivity_conflict",
        ]
        error = NotCleared.of(result)
        assert error.status == 422 and error.code == "not_cleared"
        assert error.errors == {
            film.id: [{"code": r.code, "detail": r.detail} for r in result.blocked[0].reasons]
        }

    def test_only_the_checks_passed_run(self, session: Session, world: World, film: Title) -> None:
        calls: list[str] = []

        def check(
            session: Session, request: ClearanceRequest, titles: list[Title]
        ) -> dict[str, list[Reason]]:
            calls.append("called")
            return {}

        clear(session, world, [film], checks=(check,))
        clear(session, world, [film])
        assert calls == ["called"]


class count_statements:  # noqa: N801 - used as a context manager, reads like a function
    def __init__(self, session: Session) -> None:
        self.engine = session.get_bind().engine
        self.statements: list[str] = []

    def _record(self, *args: Any) -> None:
        self.statements.append(args[2])

    def __enter__(self) -> list[str]:
        event.listen(self.engine, "before_cursor_execute", self._record)
        return self.statements

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._record)
