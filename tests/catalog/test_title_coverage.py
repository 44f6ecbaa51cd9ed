"""title_coverage stays what the grants say, and search over it equals a plain reference.

Search filters on `title_coverage` (migration 0017), a copy derived from the grants: every writer
must keep it current. Each test here compares it with the grants themselves, recomputed in
Python, after the change; and every filter, alone and in pairs, is compared with a reference
written as plainly as possible over the same small catalog, for every viewer.
"""

from __future__ import annotations

import io
import itertools
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from catalog.imports.generate import generate_catalog, write_jsonl
from catalog.imports.service import import_catalog
from catalog.models import RightsGrant, Title, TitleCoverage, TitleGenre
from catalog.rights import create_grant, delete_grant, refresh_title_coverage
from catalog.search.query import TitleSearch, search_titles
from catalog.titles import create_title, delete_title
from marketplace.accounts.principal import Principal
from marketplace.core.pagination import CursorCodec
from tests.world import World

TODAY = date(2026, 12, 6)
CODEC = CursorCodec("c" * 40)


def principal(world: World, name: str) -> Principal:
    actor = world[name]
    return Principal(actor.user_id, actor.org_id, actor.kind, "owner")


def stored(session: Session, studio_id: str) -> set[tuple[Any, ...]]:
    return set(
        session.execute(
            select(
                TitleCoverage.title_id,
                TitleCoverage.use,
                TitleCoverage.territory,
                TitleCoverage.ends_on,
            )
            .join(Title, Title.id == TitleCoverage.title_id)
            .where(Title.studio_id == studio_id)
        ).all()
    )


def expected(session: Session, studio_id: str) -> set[tuple[Any, ...]]:
    """The coverage the grants give, computed in Python: a grant on a title or an ancestor."""
    titles = session.scalars(select(Title).where(Title.studio_id == studio_id)).all()
    grants = session.scalars(select(RightsGrant).where(RightsGrant.studio_id == studio_id)).all()
    by_title: dict[str, list[RightsGrant]] = {}
    for grant in grants:
        by_title.setdefault(grant.title_id, []).append(grant)
    best: dict[tuple[str, str, str], date] = {}
    for title in titles:
        for holder in {title.id, *title.ancestor_ids}:
            for grant in by_title.get(holder, []):
                for use, territory in itertools.product(grant.permitted_uses, grant.territories):
                    key = (title.id, use, territory)
                    best[key] = max(best.get(key, grant.end), grant.end)
    return {(*key, end) for key, end in best.items()}


class TestKeptCurrent:
    def test_grants_added_and_deleted_on_a_series_reach_its_seasons_and_episodes(
        self, session: Session, world: World
    ) -> None:
        studio = principal(world, "studio_a")
        series = create_title(session, studio, external_id="s", kind="series", name="S")
        season = create_title(
            session, studio, external_id="s1", kind="season", name="S1", parent_id=series.id
        )
        episode = create_title(
            session, studio, external_id="e1", kind="episode", name="E1", parent_id=season.id
        )
        on_series = create_grant(
            session,
            studio,
            series.id,
            territories=["WW"],
            start=date(2020, 1, 1),
            end=date(2030, 12, 31),
            permitted_uses=["train"],
        )
        on_season = create_grant(
            session,
            studio,
            season.id,
            territories=["FR", "US"],
            start=date(2020, 1, 1),
            end=date(2035, 6, 30),
            permitted_uses=["train", "evaluate"],
        )
        rows = stored(session, studio.organization_id)
        assert rows == expected(session, studio.organization_id)
        assert (episode.id, "train", "WW", date(2030, 12, 31)) in rows
        assert (episode.id, "evaluate", "US", date(2035, 6, 30)) in rows
        assert not any(r[0] == series.id and r[1] == "evaluate" for r in rows)

        # An episode added later is covered by the grants already there.
        later = create_title(
            session, studio, external_id="e2", kind="episode", name="E2", parent_id=season.id
        )
        rows = stored(session, studio.organization_id)
        assert (later.id, "train", "WW", date(2030, 12, 31)) in rows
        assert rows == expected(session, studio.organization_id)

        delete_grant(session, studio, on_series.id)
        rows = stored(session, studio.organization_id)
        assert rows == expected(session, studio.organization_id)
        assert not any(r[2] == "WW" for r in rows)
        delete_grant(session, studio, on_season.id)
        assert stored(session, studio.organization_id) == set()

    def test_overlapping_grants_keep_the_latest_end_and_deleting_one_keeps_the_other(
        self, session: Session, world: World
    ) -> None:
        studio = principal(world, "studio_a")
        film = create_title(session, studio, external_id="f", kind="film", name="F")
        grants = [
            create_grant(
                session,
                studio,
                film.id,
                territories=["WW"],
                start=date(2020, 1, 1),
                end=end,
                permitted_uses=["train"],
            )
            for end in (date(2031, 1, 1), date(2029, 1, 1))
        ]
        assert stored(session, studio.organization_id) == {
            (film.id, "train", "WW", date(2031, 1, 1))
        }
        delete_grant(session, studio, grants[0].id)
        assert stored(session, studio.organization_id) == {
            (film.id, "train", "WW", date(2029, 1, 1))
        }

    def test_a_deleted_title_leaves_no_coverage(self, session: Session, world: World) -> None:
        studio = principal(world, "studio_a")
        film = create_title(session, studio, external_id="f", kind="film", name="F")
        create_grant(
            session,
            studio,
            film.id,
            territories=["WW"],
            start=date(2020, 1, 1),
            end=date(2031, 1, 1),
            permitted_uses=["train"],
        )
        delete_title(session, studio, film.id, guards=())
        assert stored(session, studio.organization_id) == set()

    def test_an_import_and_a_reimport_that_changes_grants_keep_it_current(
        self, session: Session, world: World
    ) -> None:
        studio = principal(world, "studio_a")
        records = list(generate_catalog(60, 11))
        assert any(r["type"] == "rights" for r in records)
        text = io.StringIO()
        write_jsonl(records, text)
        job = import_catalog(session, studio, io.BytesIO(text.getvalue().encode()))
        assert job.status == "succeeded", job.errors
        first = stored(session, studio.organization_id)
        assert first and first == expected(session, studio.organization_id)
        # Narrow every grant to one territory and one use: the re-import updates them in place.
        for record in records:
            if record["type"] == "rights":
                record["territories"], record["permitted_uses"] = ["JP"], ["evaluate"]
        text = io.StringIO()
        write_jsonl(records, text)
        job = import_catalog(session, studio, io.BytesIO(text.getvalue().encode()))
        assert job.status == "succeeded", job.errors
        second = stored(session, studio.organization_id)
        assert second == expected(session, studio.organization_id)
        assert {(use, territory) for _, use, territory, _ in second} == {("evaluate", "JP")}

    def test_refreshing_a_hierarchy_leaves_other_titles_alone(
        self, session: Session, world: World
    ) -> None:
        studio = principal(world, "studio_a")
        films = [
            create_title(session, studio, external_id=f"f{n}", kind="film", name=f"F{n}")
            for n in range(2)
        ]
        for film in films:
            create_grant(
                session,
                studio,
                film.id,
                territories=["WW"],
                start=date(2020, 1, 1),
                end=date(2031, 1, 1),
                permitted_uses=["train"],
            )
        refresh_title_coverage(session, title_ids=[films[0].id])
        assert stored(session, studio.organization_id) == expected(session, studio.organization_id)


# --- every filter, alone and in pairs, against a plain reference -----------------------------

FILTERS: tuple[tuple[str, Any], ...] = (
    ("genre", "drama"),
    ("language", "en"),
    ("language", "fr-FR"),
    ("kind", "episode"),
    ("kind", "film"),
    ("release_year_min", 2015),
    ("release_year_max", 1990),
    ("min_height", 1080),
    ("permitted_use", "train"),
    ("permitted_use", "generate_reference"),
    ("territory", "US"),
    ("territory", "WW"),
    ("territory", "JP"),
)


def _licensable(title: Title, grants: dict[str, list[RightsGrant]], use: Any, place: Any) -> bool:
    for holder in {title.id, *title.ancestor_ids}:
        for grant in grants.get(holder, []):
            if grant.end < TODAY:
                continue
            if use is not None and use not in grant.permitted_uses:
                continue
            if place is not None and not ({place, "WW"} & set(grant.territories)):
                continue
            if place == "WW" and "WW" not in grant.territories:
                continue
            return True
    return False


def reference(
    session: Session, viewer: Principal, params: dict[str, Any], studio_id: str
) -> list[str]:
    titles = session.scalars(select(Title).where(Title.studio_id == studio_id)).all()
    genres: dict[str, set[str]] = {}
    for title_id, genre in session.execute(select(TitleGenre.title_id, TitleGenre.genre)):
        genres.setdefault(title_id, set()).add(genre)
    grants: dict[str, list[RightsGrant]] = {}
    for grant in session.scalars(select(RightsGrant)):
        grants.setdefault(grant.title_id, []).append(grant)

    def keep(t: Title) -> bool:
        if viewer.is_developer and t.visibility not in ("listed", "anonymized"):
            return False
        if viewer.is_studio and t.studio_id != viewer.organization_id:
            return False
        language = params.get("language")
        if language is not None:
            tag = t.original_language or ""
            if tag != language and not ("-" not in language and tag.startswith(language + "-")):
                return False
        checks = (
            ("genre", lambda v: v in genres.get(t.id, set())),
            ("kind", lambda v: t.kind == v),
            ("release_year_min", lambda v: t.release_year is not None and t.release_year >= v),
            ("release_year_max", lambda v: t.release_year is not None and t.release_year <= v),
            ("min_height", lambda v: t.max_height is not None and t.max_height >= v),
        )
        if not all(check(params[name]) for name, check in checks if name in params):
            return False
        if "permitted_use" in params or "territory" in params:
            use, place = params.get("permitted_use"), params.get("territory")
            return _licensable(t, grants, use, place)
        return True

    return sorted(t.id for t in titles if keep(t))


def every_page(session: Session, viewer: Principal, params: dict[str, Any]) -> list[str]:
    ids: list[str] = []
    cursor = None
    while True:
        page = search_titles(
            session, viewer, TitleSearch(**params, limit=7, cursor=cursor), codec=CODEC, today=TODAY
        )
        ids += [row.id for row in page.items]
        cursor = page.next_cursor
        if cursor is None:
            return ids


@pytest.fixture
def imported(session: Session, world: World) -> str:
    """A small generated catalog imported into studio_a, with some video heights and an ended
    grant, so that every filter has matches and misses."""
    studio = principal(world, "studio_a")
    text = io.StringIO()
    write_jsonl(generate_catalog(120, 5), text)
    job = import_catalog(session, studio, io.BytesIO(text.getvalue().encode()))
    assert job.status == "succeeded", job.errors
    ids = session.scalars(
        select(Title.id).where(Title.studio_id == studio.organization_id).order_by(Title.id)
    ).all()
    for n, title_id in enumerate(ids):
        height = (None, 720, 1080, 2160)[n % 4]
        session.execute(update(Title).where(Title.id == title_id).values(max_height=height))
    grant = session.scalars(select(RightsGrant).limit(1)).one()
    grant.end = TODAY - timedelta(days=1)
    session.flush()
    refresh_title_coverage(session, title_ids=[grant.title_id])
    return studio.organization_id


@pytest.mark.parametrize("viewer_name", ["developer_x", "studio_a", "operator"])
def test_every_filter_and_pair_equals_the_reference(
    session: Session, world: World, imported: str, viewer_name: str
) -> None:
    viewer = principal(world, viewer_name)
    combos: list[tuple[tuple[str, Any], ...]] = [(f,) for f in FILTERS]
    combos += [(a, b) for a, b in itertools.combinations(FILTERS, 2) if a[0] != b[0]]
    if viewer.is_operator:
        combos += [(("studio_id", imported), f) for f in FILTERS]
    nonempty = 0
    for combo in combos:
        params = dict(combo)
        want = reference(session, viewer, params, imported)
        assert every_page(session, viewer, params) == want, params
        nonempty += bool(want)
    assert nonempty > len(combos) // 2  # the catalog exercises the filters
