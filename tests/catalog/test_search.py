"""GET /titles: full text on both dialects, filters, tenant scoping, anonymity, keyset pages."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import bindparam, delete, func, inspect, select, text, update
from sqlalchemy.orm import Session

from catalog.eidr import format_eidr
from catalog.models import RightsGrant, RightsTerm, Title, TitleGenre
from catalog.presenters import present_titles
from catalog.rights import refresh_title_coverage
from catalog.search import query as search_module
from catalog.search.index import TITLE_GIN_INDEXES, reindex_titles, settle_title_index
from catalog.search.query import MAX_TERMS, fts5_facet, search_terms
from catalog.search.routes import TitlePageSchema
from catalog.titles import set_genres
from marketplace.accounts.principal import Principal
from marketplace.core.errors import BadRequest
from marketplace.core.pagination import CursorCodec
from tests.helpers import problem
from tests.world import World

TODAY = date.today()
_counter = iter(range(1, 1_000_000))


def make_title(
    session: Session,
    studio_id: str,
    name: str,
    *,
    synopsis: str | None = None,
    visibility: str = "listed",
    kind: str = "film",
    parent: Title | None = None,
    language: str | None = "en",
    genres: Iterable[str] = ("drama",),
    year: int | None = 2020,
    max_height: int | None = None,
    title_id: str | None = None,
) -> Title:
    number = next(_counter)
    title = Title(
        id=title_id,
        studio_id=studio_id,
        external_id=f"ext-{number}",
        eidr_id=format_eidr(f"{number:020X}"),
        kind=kind,
        parent_id=parent.id if parent else None,
        root_id=(parent.root_id or parent.id) if parent else None,
        name=name,
        original_language=language,
        genres=list(genres),
        release_year=year,
        synopsis=synopsis,
        visibility=visibility,
        max_height=max_height,
    )
    session.add(title)
    session.flush()
    session.add_all(TitleGenre(title_id=title.id, genre=genre) for genre in title.genres)
    session.flush()
    return title


def grant(
    session: Session,
    title: Title,
    *,
    territories: Iterable[str] = ("WW",),
    uses: Iterable[str] = ("train",),
    start: date = date(2020, 1, 1),
    end: date = TODAY + timedelta(days=365),
) -> RightsGrant:
    row = RightsGrant(
        title_id=title.id,
        studio_id=title.studio_id,
        territories=list(territories),
        start=start,
        end=end,
        permitted_uses=list(uses),
    )
    session.add(row)
    session.flush()
    session.add_all(
        RightsTerm(grant_id=row.id, territory=t, use=u, title_id=title.id)
        for t in row.territories
        for u in row.permitted_uses
    )
    session.flush()
    refresh_title_coverage(session, title_ids=[title.id])
    return row


def search(client: Any, world: World, actor: str, **params: Any) -> Any:
    return client.get("/api/v1/titles", query_string=params, headers=world[actor].headers)


def found(client: Any, world: World, actor: str, **params: Any) -> list[str]:
    """Ids of every matching title, following cursors to the end."""
    ids: list[str] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = search(client, world, actor, **query)
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
        ids += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return ids


@pytest.fixture
def catalog(session: Session, world: World) -> dict[str, Title]:
    """Two studios' titles of every visibility, with words to find and facets to filter on."""
    a, b = world["studio_a"].org_id, world["studio_b"].org_id
    titles = {
        "lighthouse": make_title(
            session,
            a,
            "The Lighthouse Keeper",
            synopsis="A reclusive violinist returns home to a stormy island.",
            genres=("drama", "mystery"),
            language="fr",
            year=1998,
            max_height=2160,
        ),
        "harbor": make_title(
            session,
            a,
            "Harbor Lights",
            synopsis="A retired smuggler stumbles onto a conspiracy.",
            genres=("crime",),
            language="es-419",
            year=2010,
            max_height=1080,
        ),
        "secret": make_title(
            session,
            a,
            "Zephyrine Orchard",
            synopsis="Quixotic beekeepers of Valparaiso.",
            visibility="anonymized",
            genres=("noir",),
            language="ja",
            year=2015,
            max_height=720,
        ),
        "draft": make_title(
            session, a, "Harbor Draft", synopsis="Unreleased cut.", visibility="private"
        ),
        "b_listed": make_title(
            session, b, "Harbor of the Endless Tide", genres=("drama",), language="es", year=2021
        ),
        "b_private": make_title(session, b, "Private Harbor", visibility="private"),
    }
    session.commit()
    return titles


def ids_of(catalog: dict[str, Title], *names: str) -> list[str]:
    return sorted(catalog[name].id for name in names)


def force_plan(monkeypatch: pytest.MonkeyPatch, *, broad: bool) -> None:
    """Make every word search walk the ids (broad) or start from the matches, on either
    database."""
    for name in ("BROAD_TEXT_MATCHES", "SQLITE_BROAD_TEXT_MATCHES"):
        monkeypatch.setattr(search_module, name, 0 if broad else 10**9)


@pytest.fixture(params=["from_matches", "walking_ids", "walking_one_title_windows"])
def text_plan(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every plan for words (catalog/search/query.py) must find the same titles: from the matches,
    walking the ids (on SQLite, in windows of 256 titles), and walking in windows of one title
    (a window per title, each growing fourfold: every path through fetch_page's loop)."""
    if request.param != "from_matches":
        force_plan(monkeypatch, broad=True)
    if request.param == "walking_one_title_windows":
        monkeypatch.setattr(search_module, "FIRST_WINDOW", 1)
    return str(request.param)


@pytest.mark.usefixtures("text_plan")
class TestFullText:
    def test_words_in_the_name_or_the_synopsis_match(
        self, client: Any, world: World, catalog: dict[str, Title]
    ) -> None:
        assert found(client, world, "operator", q="lighthouse") == ids_of(catalog, "lighthouse")
        assert found(client, world, "operator", q="SMUGGLER") == ids_of(catalog, "harbor")
        assert found(client, world, "operator", q="harbor") == ids_of(
            catalog, "harbor", "draft", "b_listed", "b_private"
        )

    def test_words_with_a_genre_and_a_language(
        self, client: Any, world: World, session: Session, catalog: dict[str, Title]
    ) -> None:
        # On PostgreSQL the genre and language are lexemes of the words' vector (migration
        # 0009), intersected by the index: any genre text, and a bare language's variants only.
        a = world["studio_a"].org_id
        odd = make_title(session, a, "Harbor Tales", genres=("rock'n\\roll",), language="es")
        near = make_title(session, a, "Harbor Songs", genres=("rock",), language="esu")
        session.commit()
        assert found(client, world, "operator", q="harbor", genre="rock'n\\roll") == [odd.id]
        assert found(client, world, "operator", q="harb", genre="drama", language="es") == (
            ids_of(catalog, "b_listed")
        )
        assert found(client, world, "operator", q="harbor", language="es") == sorted(
            [*ids_of(catalog, "harbor", "b_listed"), odd.id]
        )
        assert found(client, world, "operator", q="harbor", language="esu") == [near.id]
        assert found(client, world, "operator", q="harbor", genre="rock", language="es") == []

    def test_no_word_reaches_a_title_through_its_genre_or_language(
        self, client: Any, world: World, catalog: dict[str, Title]
    ) -> None:
        for q in ("g", "drama", "mystery", "noir", "fr", "ja", "es"):
            assert found(client, world, "operator", q=q) == [], q

    def test_every_word_must_match_in_either_field(
        self, client: Any, world: World, catalog: dict[str, Title]
    ) -> None:
        # "keeper" is in the name, "violinist" in the synopsis of the same title.
        assert found(client, world, "operator", q="keeper violinist") == ids_of(
            catalog, "lighthouse"
        )
        assert found(client, world, "operator", q="keeper smuggler") == []

    def test_words_in_any_script_fold_case_but_not_accents(
        self, client: Any, world: World, session: Session
    ) -> None:
        a = world["studio_a"].org_id
        amelie = make_title(session, a, "Le Fabuleux Destin d'AMÉLIE", synopsis="Straße, 東京")
        session.commit()
        for q in ("amélie", "Amélie destin", "STRASSE", "straße", "東京", "d amélie"):
            expected = [] if q == "STRASSE" else [amelie.id]
            assert found(client, world, "studio_a", q=q) == expected, q
        # Both dialects index words as written: an accent is part of the word.
        assert found(client, world, "studio_a", q="amelie") == []

    def test_no_match_is_an_empty_page(
        self, client: Any, world: World, catalog: dict[str, Title]
    ) -> None:
        body = search(client, world, "operator", q="submarine").get_json()
        assert body == {"items": [], "next_cursor": None}

    def test_the_last_word_matches_as_a_prefix_and_the_others_whole(
        self, client: Any, world: World, catalog: dict[str, Title]
    ) -> None:
        assert found(client, world, "operator", q="lightho") == ids_of(catalog, "lighthouse")
        assert found(client, world, "operator", q="keeper violi") == ids_of(catalog, "lighthouse")
        assert found(client, world, "operator", q="keep violinist") == []

    def test_query_syntax_is_only_words(
        self, client: Any, world: World, catalog: dict[str, Title]
    ) -> None:
        # FTS5 and tsquery operators are separators here, never syntax (nor a 500).
        for q in ('"harbor" (*', "harbor & ! | *", "harbor:* -", "'harbor'", "^harbor)"):
            assert found(client, world, "operator", q=q) == ids_of(
                catalog, "harbor", "draft", "b_listed", "b_private"
            ), q
        # Operator words are words: all of them must appear.
        assert found(client, world, "operator", q="harbor OR lighthouse") == []

    def test_a_query_without_words_is_a_bad_request(self, client: Any, world: World) -> None:
        body = problem(search(client, world, "operator", q="!!! --"), 400, "bad_request")
        assert "q" in body["errors"]
        body = problem(search(client, world, "operator", q=""), 400, "bad_request")
        assert "q" in body["errors"]

    def test_too_many_words_are_refused(self) -> None:
        assert search_terms("Éclair, naïve CAFÉ") == ["éclair", "naïve", "café"]
        with pytest.raises(BadRequest):
            search_terms(" ".join(["word"] * (MAX_TERMS + 1)))

    def test_the_index_follows_renames_and_deletions(
        self, client: Any, world: World, session: Session, catalog: dict[str, Title]
    ) -> None:
        lighthouse = catalog["lighthouse"].id
        session.execute(
            update(Title)
            .where(Title.id == lighthouse)
            .values(name="Beacon", synopsis="A weary pilot.")
        )
        session.commit()
        assert found(client, world, "operator", q="lighthouse") == []
        assert found(client, world, "operator", q="violinist") == []
        assert found(client, world, "operator", q="beacon pilot") == [lighthouse]
        session.execute(delete(Title).where(Title.id == lighthouse))
        session.commit()
        assert found(client, world, "operator", q="beacon") == []

    def test_words_with_facets_follow_a_new_genre_and_language(
        self, client: Any, world: World, session: Session, catalog: dict[str, Title]
    ) -> None:
        # On SQLite the genre and language are tokens of the full-text index (migration 0010),
        # which must follow them; the filters' own tables follow them in any case.
        title = catalog["lighthouse"]
        set_genres(session, title, ["thriller", "drama"])
        title.original_language = "pt-BR"
        session.commit()
        assert found(client, world, "operator", q="keeper", genre="mystery") == []
        assert found(client, world, "operator", q="keeper", language="fr") == []
        for facets in (
            {"genre": "thriller"},
            {"genre": "drama", "language": "pt"},
            {"language": "pt-BR"},
        ):
            assert found(client, world, "operator", q="keeper", **facets) == [title.id], facets
        title.original_language = None
        session.commit()
        assert found(client, world, "operator", q="keeper", genre="thriller") == [title.id]
        assert found(client, world, "operator", q="keeper", language="pt") == []


class TestWhoSeesWhat:
    def test_a_studio_sees_its_own_titles_of_every_visibility_and_nothing_else(
        self, client: Any, world: World, catalog: dict[str, Title]
    ) -> None:
        assert found(client, world, "studio_a") == ids_of(
            catalog, "lighthouse", "harbor", "secret", "draft"
        )
        assert found(client, world, "studio_b", q="harbor") == ids_of(
            catalog, "b_listed", "b_private"
        )

    def test_a_developer_sees_listed_and_anonymized_titles_of_every_studio(
        self, client: Any, world: World, catalog: dict[str, Title]
    ) -> None:
        assert found(client, world, "developer_x") == ids_of(
            catalog, "lighthouse", "harbor", "secret", "b_listed"
        )

    def test_an_operator_sees_everything_and_may_filter_by_studio(
        self, client: Any, world: World, catalog: dict[str, Title]
    ) -> None:
        assert found(client, world, "operator") == sorted(t.id for t in catalog.values())
        assert found(client, world, "operator", studio_id=world["studio_b"].org_id) == ids_of(
            catalog, "b_listed", "b_private"
        )

    @pytest.mark.parametrize("actor", ["studio_a", "developer_x"])
    def test_only_operators_filter_by_studio(
        self, client: Any, world: World, catalog: dict[str, Title], actor: str
    ) -> None:
        # Refused whatever the id, the caller's own included: the answer tells nothing.
        for studio in ("studio_a", "studio_b"):
            response = search(client, world, actor, studio_id=world[studio].org_id)
            assert "studio_id" in problem(response, 403, "forbidden")["errors"]

    def test_a_member_sees_what_the_owner_sees(
        self, client: Any, world: World, catalog: dict[str, Title]
    ) -> None:
        member = client.get("/api/v1/titles", headers=world["studio_a"].member_headers)
        owner = search(client, world, "studio_a")
        assert member.get_json() == owner.get_json()


@pytest.mark.usefixtures("text_plan")
class TestAnonymity:
    def test_a_developer_cannot_find_an_anonymized_title_by_its_hidden_words(
        self, client: Any, world: World, catalog: dict[str, Title]
    ) -> None:
        for q in ("Zephyrine", "zephyrine orchard", "Quixotic beekeepers", "Valparaiso", "zeph"):
            assert found(client, world, "developer_x", q=q) == [], q
            assert found(client, world, "studio_a", q=q) == ids_of(catalog, "secret"), q
            assert found(client, world, "operator", q=q) == ids_of(catalog, "secret"), q

    def test_filters_return_anonymized_titles_without_who_or_what_they_are(
        self, client: Any, world: World, session: Session, catalog: dict[str, Title]
    ) -> None:
        secret = catalog["secret"]
        grant(session, secret, territories=["JP"], uses=["evaluate"])
        session.commit()
        response = search(
            client,
            world,
            "developer_x",
            genre="noir",
            language="ja",
            kind="film",
            release_year_min=2015,
            min_height=720,
            permitted_use="evaluate",
            territory="JP",
        )
        body = response.get_json()
        assert [item["id"] for item in body["items"]] == [secret.id]
        item = body["items"][0]
        for hidden in ("name", "synopsis", "eidr_id", "external_id", "studio_id"):
            assert item[hidden] is None, hidden
        assert item["anonymized"] is True
        assert item["genres"] == ["noir"] and item["original_language"] == "ja"
        raw = response.get_data(as_text=True)
        for secret_text in (
            world["studio_a"].org_id,
            "Studio A",
            secret.name,
            "Zephyrine",
            "Quixotic",
            secret.external_id,
            str(secret.eidr_id),
        ):
            assert secret_text not in raw, secret_text

    def test_listed_titles_show_everything(
        self, client: Any, world: World, catalog: dict[str, Title]
    ) -> None:
        item = search(client, world, "developer_x", q="lighthouse").get_json()["items"][0]
        lighthouse = catalog["lighthouse"]
        assert item["name"] == lighthouse.name
        assert item["studio_id"] == world["studio_a"].org_id
        assert item["external_id"] == lighthouse.external_id
        assert item["anonymized"] is False

    def test_mixed_pages_order_by_id_only(
        self, client: Any, world: World, catalog: dict[str, Title]
    ) -> None:
        # The order is the ids' order, so it cannot hint at a hidden name.
        listed = found(client, world, "developer_x", limit=1)
        assert listed == sorted(listed) and catalog["secret"].id in listed


class TestFilters:
    def test_genre(self, client: Any, world: World, catalog: dict[str, Title]) -> None:
        assert found(client, world, "operator", genre="mystery") == ids_of(catalog, "lighthouse")
        assert found(client, world, "operator", genre=" Drama ") == ids_of(
            catalog, "lighthouse", "draft", "b_listed", "b_private"
        )
        assert found(client, world, "operator", genre="western") == []

    def test_language_bare_finds_its_variants_and_a_tag_finds_itself(
        self, client: Any, world: World, catalog: dict[str, Title]
    ) -> None:
        assert found(client, world, "operator", language="ES") == ids_of(
            catalog, "harbor", "b_listed"
        )
        assert found(client, world, "operator", language="es-419") == ids_of(catalog, "harbor")
        assert found(client, world, "operator", language="fra") == ids_of(catalog, "lighthouse")
        assert found(client, world, "operator", language="de") == []

    def test_kind(self, client: Any, world: World, session: Session, catalog: Any) -> None:
        a = world["studio_a"].org_id
        series = make_title(session, a, "Tidewater", kind="series")
        season = make_title(session, a, "Tidewater: Season 1", kind="season", parent=series)
        session.commit()
        assert found(client, world, "studio_a", kind="series") == [series.id]
        assert found(client, world, "studio_a", kind="season") == [season.id]
        assert catalog["lighthouse"].id in found(client, world, "studio_a", kind="film")

    def test_release_year_range(self, client: Any, world: World, catalog: dict[str, Title]) -> None:
        assert found(client, world, "studio_a", release_year_min=2010) == ids_of(
            catalog, "harbor", "secret", "draft"
        )
        assert found(client, world, "studio_a", release_year_max=2010) == ids_of(
            catalog, "lighthouse", "harbor"
        )
        assert found(
            client, world, "studio_a", release_year_min=2010, release_year_max=2014
        ) == ids_of(catalog, "harbor")

    def test_min_height(self, client: Any, world: World, catalog: dict[str, Title]) -> None:
        assert found(client, world, "operator", min_height=1080) == ids_of(
            catalog, "lighthouse", "harbor"
        )
        assert found(client, world, "operator", min_height=2160) == ids_of(catalog, "lighthouse")
        assert found(client, world, "operator", min_height=4320) == []

    def test_permitted_use_and_territory_match_the_same_grant(
        self, client: Any, world: World, session: Session, catalog: dict[str, Title]
    ) -> None:
        grant(session, catalog["lighthouse"], territories=["WW"], uses=["train", "evaluate"])
        grant(session, catalog["harbor"], territories=["US", "CA"], uses=["fine_tune"])
        grant(session, catalog["harbor"], territories=["FR"], uses=["train"])
        session.commit()
        assert found(client, world, "operator", permitted_use="train") == ids_of(
            catalog, "lighthouse", "harbor"
        )
        # A worldwide grant answers for any territory.
        assert found(client, world, "operator", territory="jp") == ids_of(catalog, "lighthouse")
        assert found(client, world, "operator", territory="US") == ids_of(
            catalog, "lighthouse", "harbor"
        )
        assert found(client, world, "operator", territory="WW") == ids_of(catalog, "lighthouse")
        # Harbor may be trained on in France and fine-tuned on in the US, not trained on there.
        assert found(client, world, "operator", permitted_use="train", territory="US") == ids_of(
            catalog, "lighthouse"
        )
        assert found(client, world, "operator", permitted_use="train", territory="FR") == ids_of(
            catalog, "lighthouse", "harbor"
        )
        assert found(client, world, "operator", permitted_use="generate_reference") == []

    def test_a_grant_that_has_ended_does_not_count(
        self, client: Any, world: World, session: Session, catalog: dict[str, Title]
    ) -> None:
        grant(session, catalog["lighthouse"], end=TODAY - timedelta(days=1))
        grant(session, catalog["harbor"], end=TODAY)  # the end date is inclusive
        grant(session, catalog["secret"], start=TODAY + timedelta(days=30))  # not yet begun
        session.commit()
        assert found(client, world, "operator", permitted_use="train") == ids_of(
            catalog, "harbor", "secret"
        )

    def test_rights_on_a_series_or_season_cover_its_children(
        self, client: Any, world: World, session: Session
    ) -> None:
        a = world["studio_a"].org_id
        series = make_title(session, a, "Tidewater", kind="series")
        season = make_title(session, a, "Tidewater: Season 1", kind="season", parent=series)
        episode = make_title(session, a, "Tidewater S01E01", kind="episode", parent=season)
        other_season = make_title(session, a, "Tidewater: Season 2", kind="season", parent=series)
        other_episode = make_title(
            session, a, "Tidewater S02E01", kind="episode", parent=other_season
        )
        grant(session, series, territories=["WW"], uses=["train"])
        grant(session, other_season, territories=["DE"], uses=["evaluate"])
        grant(session, episode, territories=["BR"], uses=["fine_tune"])
        session.commit()

        def where(**params: Any) -> list[str]:
            return found(client, world, "studio_a", **params)

        every = sorted([series.id, season.id, episode.id, other_season.id, other_episode.id])
        assert where(permitted_use="train", territory="KR") == every
        assert where(permitted_use="evaluate") == sorted([other_season.id, other_episode.id])
        # A grant on a child says nothing about its parents.
        assert where(permitted_use="fine_tune") == [episode.id]
        assert where(territory="BR", kind="episode") == sorted([episode.id, other_episode.id])
        assert where(territory="DE", kind="episode") == sorted([episode.id, other_episode.id])
        assert where(territory="DE", permitted_use="evaluate", kind="episode") == [other_episode.id]

    @pytest.mark.usefixtures("text_plan")
    def test_filters_combine_with_words(
        self, client: Any, world: World, session: Session, catalog: dict[str, Title]
    ) -> None:
        grant(session, catalog["harbor"], territories=["MX"], uses=["train"])
        grant(session, catalog["b_listed"], territories=["WW"], uses=["train"])
        session.commit()
        assert found(
            client, world, "developer_x", q="harbor", language="es", permitted_use="train"
        ) == ids_of(catalog, "harbor", "b_listed")
        assert found(
            client, world, "developer_x", q="harbor", language="es", territory="MX", genre="crime"
        ) == ids_of(catalog, "harbor")
        assert found(
            client, world, "developer_x", q="harbor", release_year_min=2011, territory="MX"
        ) == ids_of(catalog, "b_listed")

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"language": "xx"}, "language"),
            ({"language": "en-US-x-private"}, "language"),
            ({"territory": "UK"}, "territory"),
            ({"territory": "WORLD"}, "territory"),
            ({"kind": "movie"}, "kind"),
            ({"permitted_use": "resell"}, "permitted_use"),
            ({"release_year_min": "nineteen"}, "release_year_min"),
            ({"release_year_min": 2001, "release_year_max": 2000}, "release_year_min"),
            ({"min_height": 0}, "min_height"),
            ({"limit": 201}, "limit"),
            ({"cursor": "forged"}, "cursor"),
            ({"sort": "name"}, "sort"),
            ({"genre": "dra\x00ma"}, "genre"),
            ({"studio_id": "acme"}, "studio_id"),
        ],
    )
    def test_bad_parameters_are_400_naming_the_parameter(
        self, client: Any, world: World, params: dict[str, Any], field: str
    ) -> None:
        body = problem(search(client, world, "developer_x", **params), 400, "bad_request")
        assert field in body["errors"], body


@pytest.mark.usefixtures("text_plan")
class TestPagination:
    def test_pages_cover_every_title_once_while_newer_titles_arrive(
        self, client: Any, world: World, session: Session
    ) -> None:
        a = world["studio_a"].org_id
        original = sorted(make_title(session, a, f"Harbor {n}").id for n in range(7))
        session.commit()
        seen: list[str] = []
        arrived: list[str] = []
        cursor = None
        for _ in range(10):
            params: dict[str, Any] = {"limit": 3, "q": "harbor"}
            if cursor:
                params["cursor"] = cursor
            body = search(client, world, "studio_a", **params).get_json()
            seen += [item["id"] for item in body["items"]]
            cursor = body["next_cursor"]
            if cursor is None:
                break
            # Another client adds titles between our pages; ids are time-ordered.
            time.sleep(0.002)
            arrived.append(make_title(session, a, f"Harbor late {len(arrived)}").id)
            session.commit()
        assert cursor is None
        assert len(seen) == len(set(seen)), "a title appeared on two pages"
        assert seen[: len(original)] == original, "an original title was skipped or moved"
        assert seen[len(original) :] == sorted(arrived)
        assert arrived and set(arrived) <= set(seen)

    def test_limit_and_the_last_page(self, client: Any, world: World, session: Session) -> None:
        a = world["studio_a"].org_id
        made = sorted(make_title(session, a, f"Film {n}").id for n in range(4))
        session.commit()
        first = search(client, world, "studio_a", limit=2).get_json()
        assert [i["id"] for i in first["items"]] == made[:2]
        second = search(client, world, "studio_a", limit=2, cursor=first["next_cursor"]).get_json()
        assert [i["id"] for i in second["items"]] == made[2:]
        assert second["next_cursor"] is None


class TestIndexMaintenance:
    """The database keeps the index itself; a later migration must not lose that."""

    def test_sqlite_triggers_exist_and_the_index_is_consistent(
        self, session: Session, dialect: str, world: World, catalog: dict[str, Title]
    ) -> None:
        if dialect != "sqlite":
            pytest.skip("SQLite's FTS5 triggers")
        triggers = set(
            session.scalars(
                text(
                    "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'titles'"
                )
            )
        )
        assert {
            "titles_fts_after_insert",
            "titles_fts_after_update",
            "titles_fts_after_delete",
        } <= triggers
        table = session.scalar(text("SELECT sql FROM sqlite_master WHERE name = 'titles_fts'"))
        assert "prefix='1 2 3 4'" in table  # catalog.search.query's plans are tuned to it
        a = world["studio_a"].org_id
        make_title(session, a, "Café Ξ", genres=("ciné-club", "drama"), language="zh-Hant-TW")
        make_title(session, a, "No facets", genres=(), language=None)
        session.flush()
        session.execute(update(Title).values(synopsis=Title.name))
        session.execute(
            update(Title)
            .where(Title.id == catalog["harbor"].id)
            .values(genres=["crime", "película"], original_language="es-MX")
        )
        session.execute(delete(Title).where(Title.id == catalog["draft"].id))
        session.execute(text("INSERT INTO titles_fts(titles_fts) VALUES ('integrity-check')"))
        # The index the triggers kept holds exactly what one built afresh from the titles holds,
        # the facet tokens as catalog.search.query spells them in its queries (migration 0010).
        session.execute(
            text(
                "CREATE VIRTUAL TABLE temp.expected_fts USING fts5(name, synopsis, facets,"
                " content='', tokenize='unicode61 remove_diacritics 0')"
            )
        )
        rows = session.execute(
            text("SELECT rowid, name, synopsis, genres, original_language FROM titles")
        )
        for rowid, name, synopsis, genres, language in rows.all():
            tokens = [fts5_facet("g", genre) for genre in json.loads(genres)]
            if language is not None:
                tokens += [fts5_facet("l", language), fts5_facet("f", language.split("-")[0])]
            session.execute(
                text(
                    "INSERT INTO temp.expected_fts(rowid, name, synopsis, facets)"
                    " VALUES (:rowid, :name, :synopsis, :facets)"
                ),
                {"rowid": rowid, "name": name, "synopsis": synopsis, "facets": " ".join(tokens)},
            )

        for table, schema in (("titles_fts", "main"), ("expected_fts", "temp")):
            session.execute(
                text(
                    f"CREATE VIRTUAL TABLE temp.{table}_vocab"
                    f" USING fts5vocab({schema}, {table}, instance)"
                )
            )

        def instances(table: str) -> set[tuple[Any, ...]]:
            query = f"SELECT term, doc, col, offset FROM temp.{table}_vocab"  # noqa: S608
            return {tuple(row) for row in session.execute(text(query))}

        expected = instances("expected_fts")
        assert len({row for row in expected if row[2] == "facets"}) > 10
        assert instances("titles_fts") == expected
        # `marketplace catalog reindex` builds the same index from nothing.
        session.execute(text("INSERT INTO titles_fts(titles_fts) VALUES ('delete-all')"))
        assert instances("titles_fts") == set()
        assert reindex_titles(session) == session.scalar(select(func.count()).select_from(Title))
        assert instances("titles_fts") == expected

    def test_postgres_vector_is_generated_and_indexed(self, session: Session, dialect: str) -> None:
        if dialect != "postgresql":
            pytest.skip("PostgreSQL's generated tsvector column")
        generated = session.scalar(
            text(
                "SELECT is_generated FROM information_schema.columns "
                "WHERE table_name = 'titles' AND column_name = 'search_vector'"
            )
        )
        assert generated == "ALWAYS"
        indexdef = session.scalar(
            text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_fts_titles_search_vector'")
        )
        assert indexdef is not None and "gin" in indexdef.lower()

    def test_postgres_plans_a_searchs_statements_for_their_values(
        self, session: Session, dialect: str, world: World
    ) -> None:
        if dialect != "postgresql":
            pytest.skip("psycopg's prepared statements")
        driver = session.connection().connection.driver_connection
        assert driver.prepare_threshold == 5  # psycopg's default: the test means something
        viewer = Principal(
            world["developer_x"].user_id, world["developer_x"].org_id, "developer", "owner"
        )
        for _ in range(8):  # past the fifth run, when psycopg would prepare the statements
            search_module.search_titles(
                session, viewer, search_module.TitleSearch(q="harbor"), codec=CursorCodec("x" * 40)
            )
        # None prepared, so none has a generic plan; the connection prepares others again.
        prepared = text(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%search_vector%'"
        )
        assert session.scalar(prepared) == 0
        assert driver.prepare_threshold == 5

    def test_statements_are_prepared_again_after_a_failed_search(self) -> None:
        class Driver:
            prepare_threshold = 5

        driver = Driver()
        with pytest.raises(ZeroDivisionError), search_module.planned_for_their_values(driver):
            assert driver.prepare_threshold is None
            _ = 1 / 0
        assert driver.prepare_threshold == 5

    def test_a_titles_rights_are_found_by_use_and_title_with_or_without_a_territory(
        self, session: Session
    ) -> None:
        # Search probes each title's terms for a use, often with no territory: the title must
        # come second in the index (migration 0012; the territory there cost "the" + a use
        # 180 ms a page on PostgreSQL; bench/search_bench.py's common_words_genre_use).
        indexes = inspect(session.connection()).get_indexes("rights_terms")
        assert [index["column_names"] for index in indexes] == [["use", "title_id", "territory"]]

    def test_postgres_new_titles_wait_in_the_pending_list_until_settled(
        self, session: Session, dialect: str, world: World
    ) -> None:
        if dialect != "postgresql":
            pytest.skip("PostgreSQL's GIN pending list")
        options = session.execute(
            text("SELECT relname, reloptions FROM pg_class WHERE relname IN :names").bindparams(
                bindparam("names", expanding=True)
            ),
            {"names": list(TITLE_GIN_INDEXES)},
        ).all()
        # A list of at most 256 kB: what a search may have to scan (migration 0011).
        expected = ["fastupdate=on", "gin_pending_list_limit=256"]
        assert sorted(options) == [(name, expected) for name in TITLE_GIN_INDEXES]
        settle_title_index(session)  # whatever earlier tests left pending
        title = make_title(session, world["studio_a"].org_id, "Pending lighthouse")
        session.flush()
        # A listed title has entries in both indexes: at least a pending page each.
        assert settle_title_index(session) >= 2
        assert settle_title_index(session) == 0
        found = session.scalars(
            text("SELECT id FROM titles WHERE search_vector @@ to_tsquery('simple', 'pending')")
        ).all()
        assert found == [title.id]

    def test_postgres_settling_leaves_indexes_of_other_owners_to_autovacuum(
        self, session: Session, dialect: str, world: World
    ) -> None:
        if dialect != "postgresql":
            pytest.skip("PostgreSQL's GIN pending list")
        make_title(session, world["studio_a"].org_id, "Pending lighthouse")
        session.flush()
        # A role that owns nothing (gin_clean_pending_list would refuse it and fail the
        # transaction); created and dropped with the test's transaction.
        session.execute(text("CREATE ROLE clearcut_test_writer"))
        session.execute(text("SET LOCAL ROLE clearcut_test_writer"))
        assert settle_title_index(session) == 0
        session.execute(text("RESET ROLE"))
        assert settle_title_index(session) >= 2


class TestPageBody:
    """The route writes its JSON without marshmallow; it must be what TitlePageSchema dumps."""

    @pytest.mark.parametrize("actor", ["developer_x", "studio_a", "studio_b", "operator"])
    def test_the_body_is_what_the_schema_dumps(
        self, client: Any, world: World, session: Session, catalog: dict[str, Title], actor: str
    ) -> None:
        a = world["studio_a"].org_id
        series = make_title(session, a, "Tidewater", kind="series", synopsis=None, year=None)
        make_title(
            session, a, "Tidewater S01", kind="season", parent=series, visibility="anonymized"
        )
        make_title(session, a, "Tidewater S02", kind="season", parent=series, language=None)
        session.commit()
        response = search(client, world, actor, limit=4)
        assert response.status_code == 200
        body = response.get_json()
        # The same titles, presented as before: ORM objects through the presenter and schema.
        ids = [item["id"] for item in body["items"]]
        titles = sorted(session.query(Title).filter(Title.id.in_(ids)), key=lambda t: t.id)
        viewer = Principal(world[actor].user_id, world[actor].org_id, _kind(actor), "owner")
        expected = TitlePageSchema().dump(
            {"items": present_titles(session, titles, viewer), "next_cursor": body["next_cursor"]}
        )
        assert body == expected
        assert list(body["items"][0]) == list(expected["items"][0])  # field order too

    def test_a_parent_id_is_shown_only_beside_a_parent_of_the_same_visibility(
        self, client: Any, world: World, session: Session
    ) -> None:
        a = world["studio_a"].org_id
        series = make_title(session, a, "Tidewater", kind="series")
        listed = make_title(session, a, "Tidewater S01", kind="season", parent=series)
        hidden = make_title(
            session, a, "Tidewater S02", kind="season", parent=series, visibility="anonymized"
        )
        session.commit()
        items = {i["id"]: i for i in search(client, world, "developer_x").get_json()["items"]}
        assert items[listed.id]["parent_id"] == series.id
        assert items[hidden.id]["parent_id"] is None
        items = {i["id"]: i for i in search(client, world, "studio_a").get_json()["items"]}
        assert items[hidden.id]["parent_id"] == series.id


def _kind(actor: str) -> str:
    return actor.split("_")[0]


class TestPlans:
    """Both shapes of a words search (catalog/search/query.py) find the same titles."""

    def test_the_probe_counts_the_facets_with_the_words(
        self,
        client: Any,
        world: World,
        catalog: dict[str, Title],
        dialect: str,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        if dialect != "sqlite":
            pytest.skip("PostgreSQL's probe is the planner's estimate, not a count")
        probed: list[int] = []
        is_broad = search_module.is_broad

        def spy(value: Any, *, postgres: bool) -> bool:
            probed.append(int(value))
            return is_broad(value, postgres=postgres)

        monkeypatch.setattr(search_module, "is_broad", spy)
        monkeypatch.setattr(search_module, "SQLITE_BROAD_TEXT_MATCHES", 3)
        # "harbor": four titles of every visibility; two of them in Spanish (es, es-419).
        for facets, count in (({}, 4), ({"language": "es"}, 2), ({"genre": "crime"}, 1)):
            found(client, world, "operator", q="harbor", **facets)
            assert probed.pop() == count, facets

    @pytest.mark.parametrize("broad", [False, True])
    def test_each_shape_with_filters_and_a_cursor(
        self,
        client: Any,
        world: World,
        session: Session,
        catalog: dict[str, Title],
        monkeypatch: pytest.MonkeyPatch,
        broad: bool,
    ) -> None:
        force_plan(monkeypatch, broad=broad)
        a = world["studio_a"].org_id
        made = [make_title(session, a, f"Harbor {n}", genres=("crime",)) for n in range(5)]
        for title in made[1:]:
            grant(session, title, territories=["US"], uses=["train"])
        session.commit()
        assert found(
            client, world, "developer_x", q="harb", genre="crime", territory="US", limit=2
        ) == sorted(t.id for t in made[1:])

    @pytest.mark.parametrize("window", [1, 2, 256])
    def test_a_broad_walk_finds_titles_stored_out_of_id_order(
        self,
        client: Any,
        world: World,
        session: Session,
        monkeypatch: pytest.MonkeyPatch,
        window: int,
    ) -> None:
        # SQLite's windows ask FTS5 for the rowid range of titles taken in id order; rowids
        # follow insertion, not ids. Insert in reverse id order: every window's range must
        # still cover its titles.
        force_plan(monkeypatch, broad=True)
        monkeypatch.setattr(search_module, "FIRST_WINDOW", window)
        a = world["studio_a"].org_id
        made = [
            make_title(session, a, f"Beacon {n}", title_id=f"ttl_{n:026d}", genres=("crime",))
            for n in reversed(range(1, 8))
        ]
        make_title(session, a, "Unrelated", title_id=f"ttl_{4:025d}5")
        for title in made[::2]:
            grant(session, title, territories=["US"], uses=["train"])
        session.commit()
        expected = sorted(t.id for t in made)
        assert found(client, world, "developer_x", q="beac", limit=2) == expected
        assert found(client, world, "studio_a", q="beacon", limit=3) == expected
        assert found(
            client, world, "developer_x", q="beacon", territory="US", permitted_use="train", limit=1
        ) == sorted(t.id for t in made[::2])

    def test_a_cursor_of_another_shape_is_refused(self, client: Any, world: World) -> None:
        forged = search_module.CursorCodec("x" * 40).encode(search_module.CURSOR_SCOPE, ["a"])
        problem(search(client, world, "developer_x", cursor=forged), 400, "bad_request")
