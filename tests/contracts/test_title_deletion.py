"""A studio cannot pull a title out of a contract in force by deleting it.

The catalog knows nothing of contracts: the contracts layer registers a guard with
a deletion guard it adds to the runtime's CatalogRules (marketplace.bootstrap), as it does for the
exclusivity clearance check.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.models import Title
from catalog.titles import delete_title
from contracts.models import Contract
from marketplace.core.errors import Conflict
from tests.catalog.factories import make_asset, make_title, principal
from tests.delivery.builders import make_contract, today
from tests.helpers import problem
from tests.world import World


def delete(client: Any, world: World, title_id: str) -> Any:
    return client.delete(f"/api/v1/titles/{title_id}", headers=world["studio_a"].headers)


def exists(session: Session, title_id: str) -> bool:
    return session.scalar(select(Title.id).where(Title.id == title_id)) is not None


@pytest.mark.parametrize("status", ["pending_signatures", "signed", "active"])
def test_a_title_under_a_contract_in_force_is_not_deleted(
    client: Any, session: Session, world: World, status: str
) -> None:
    film = make_title(session, world["studio_a"].org_id)
    make_asset(session, film)
    contract = make_contract(session, world, [film.id], status=status)
    session.commit()
    body = problem(delete(client, world, film.id), 409, "conflict")
    assert contract.id in body["detail"] and contract.ends_on.isoformat() in body["detail"]
    assert list(body["errors"]) == ["title_id"]
    assert exists(session, film.id)
    if status != "pending_signatures":  # the licensee's manifest still lists its asset
        manifest = client.get(
            f"/api/v1/contracts/{contract.id}/manifest", headers=world["developer_x"].headers
        ).get_json()
        assert len(manifest["assets"]) == 1


def test_an_episode_of_a_licensed_series_is_not_deleted(
    client: Any, session: Session, world: World
) -> None:
    studio = world["studio_a"].org_id
    series = make_title(session, studio, kind="series")
    season = make_title(session, studio, kind="season", parent=series)
    episode = make_title(session, studio, kind="episode", parent=season)
    season_only = make_title(session, studio, kind="season", parent=series)
    under_season = make_title(session, studio, kind="episode", parent=season_only)
    licensed_series = make_contract(session, world, [series.id])
    session.commit()
    body = problem(delete(client, world, episode.id), 409, "conflict")
    assert licensed_series.id in body["detail"]
    # Terminated, the series' contract holds nothing; one on the other season still does.
    session.get(Contract, licensed_series.id).status = "terminated"  # type: ignore[union-attr]
    licensed_season = make_contract(session, world, [season_only.id])
    session.commit()
    assert delete(client, world, episode.id).status_code == 204
    body = problem(delete(client, world, under_season.id), 409, "conflict")
    assert licensed_season.id in body["detail"] and licensed_series.id not in body["detail"]


def test_once_the_contracts_have_ended_the_title_may_go(
    client: Any, session: Session, world: World
) -> None:
    film = make_title(session, world["studio_a"].org_id)
    ended = today() - timedelta(days=1)
    make_contract(session, world, [film.id], ends_on=ended, starts_on=ended - timedelta(days=30))
    terminated = make_contract(session, world, [film.id])
    terminated.status = "terminated"
    other_film = make_title(session, world["studio_a"].org_id)
    make_contract(session, world, [other_film.id])  # another title's contract holds only it
    session.commit()
    assert delete(client, world, film.id).status_code == 204
    assert not exists(session, film.id)


def test_a_guard_passed_can_refuse(session: Session, world: World) -> None:
    film = make_title(session, world["studio_a"].org_id)
    session.commit()

    def guard(_: Session, title: Title) -> str | None:
        return "it is on hold" if title.id == film.id else None

    owner = principal(world, "studio_a")
    with pytest.raises(Conflict) as refused:
        delete_title(session, owner, film.id, guards=(guard,))
    assert refused.value.detail == f"title {film.id} cannot be deleted: it is on hold"
    assert refused.value.errors == {"title_id": ["It is on hold."]}
    delete_title(session, owner, film.id, guards=())
    assert not exists(session, film.id)
