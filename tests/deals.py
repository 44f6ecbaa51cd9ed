"""Building blocks for brokering and contract tests: cleared titles and whole negotiations."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from catalog.models import Asset, RightsGrant, RightsTerm, Title, TitleGenre
from catalog.rights import refresh_title_coverage
from marketplace.core.ids import new_id
from tests.world import World

ALL_USES = ["train", "fine_tune", "evaluate", "generate_reference"]


def cleared_title(
    session: Session,
    studio_id: str,
    *,
    name: str = "The Long Harbour",
    territories: tuple[str, ...] = ("WW",),
    uses: tuple[str, ...] = tuple(ALL_USES),
    start: date = date(2026, 1, 1),
    end: date = date(2028, 12, 31),
    exclusive_available: bool = True,
    visibility: str = "listed",
    seconds: float = 7200.0,
    genres: tuple[str, ...] = ("drama",),
    height: int = 2160,
) -> Title:
    """A film with a ready video asset and a rights grant: clears for the given terms."""
    title = Title(
        studio_id=studio_id,
        external_id=new_id("ttl"),
        kind="film",
        name=name,
        original_language="en",
        genres=list(genres),
        release_year=2019,
        visibility=visibility,
        own_seconds=seconds,
        content_seconds=seconds,
        max_height=height,
    )
    session.add(title)
    session.flush()
    session.add_all(TitleGenre(title_id=title.id, genre=g) for g in genres)
    asset = Asset(
        title_id=title.id,
        studio_id=studio_id,
        kind="video",
        storage_key=f"studios/{studio_id}/titles/{title.id}/feature.mp4",
        byte_size=1_000_000,
        sha256="a" * 64,
        duration_seconds=seconds,
        width=3840,
        height=height,
        status="ready",
    )
    grant = RightsGrant(
        title_id=title.id,
        studio_id=studio_id,
        territories=list(territories),
        start=start,
        end=end,
        permitted_uses=list(uses),
        exclusive_available=exclusive_available,
    )
    session.add_all([asset, grant])
    session.flush()
    session.add_all(
        RightsTerm(grant_id=grant.id, territory=t, use=u, title_id=title.id)
        for t in territories
        for u in uses
    )
    session.flush()
    refresh_title_coverage(session, title_ids=[title.id])
    return title


def request_body(title_ids: list[str], **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title_ids": title_ids,
        "uses": ["train"],
        "territories": ["US"],
        "start": "2026-06-01",
        "end": "2026-12-31",
        "exclusive": False,
        "budget_cents": 5_000_000,
        "currency": "usd",
        "message": "For a video model.",
    }
    body.update(overrides)
    return body


def offer_body(title_ids: list[str], **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title_ids": title_ids,
        "uses": ["train"],
        "territories": ["US"],
        "start": "2026-06-01",
        "end": "2026-12-31",
        "exclusive": False,
        "pricing": {"model": "per_hour", "amount_cents": 150_000, "currency": "usd"},
        "quota": {"bytes": 50_000_000_000, "downloads": 100},
    }
    body.update(overrides)
    return body


def post(
    client: Any, path: str, actor_headers: dict[str, str], body: Any = None, status: int = 201
) -> dict[str, Any]:
    response = client.post(path, json=body, headers=actor_headers)
    assert response.status_code == status, response.get_data(as_text=True)
    result: dict[str, Any] = response.get_json()
    return result


def signed_contract(
    client: Any,
    world: World,
    title_ids: list[str],
    *,
    developer: str = "developer_x",
    studio: str = "studio_a",
    **terms: Any,
) -> dict[str, Any]:
    """Request → offer → accept → three signatures: a `signed` contract."""
    request = post(
        client,
        "/api/v1/license-requests",
        world[developer].headers,
        request_body(
            title_ids,
            **{
                k: v
                for k, v in terms.items()
                if k in ("exclusive", "territories", "uses", "start", "end")
            },
        ),
    )
    offer = post(
        client,
        f"/api/v1/license-requests/{request['id']}/offers",
        world[studio].headers,
        offer_body(title_ids, **terms),
    )
    accepted = post(
        client, f"/api/v1/offers/{offer['id']}/accept", world[developer].headers, status=200
    )
    contract_id = accepted["contract_id"]
    contract = client.get(
        f"/api/v1/contracts/{contract_id}", headers=world["operator"].headers
    ).get_json()
    for who in (studio, developer, "operator"):
        post(
            client,
            f"/api/v1/contracts/{contract_id}/sign",
            world[who].headers,
            {"document_sha256": contract["document_sha256"]},
            status=200,
        )
    final: dict[str, Any] = client.get(
        f"/api/v1/contracts/{contract_id}", headers=world["operator"].headers
    ).get_json()
    return final
