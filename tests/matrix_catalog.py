"""Authorization matrix entries of the catalog core (titles, assets, rights, talent, clearance).

The rules: operators see and change everything; a studio sees and changes its own catalog only
(another tenant's objects are 404); a developer reads `listed` and `anonymized` titles and what
hangs off them (changing them is 403) and gets 404 for private ones; talent routes are for
studios and operators (403 to developers, whatever the id).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from sqlalchemy import select

from catalog.models import Talent, Title
from tests.catalog.factories import (
    make_asset,
    make_consent,
    make_grant,
    make_talent,
    make_title,
)
from tests.matrix import ANON, Ctx, Expect, Route, Target

SHA = "a" * 64


def _kind(actor: str) -> str:
    return "operator" if actor == "operator" else actor.split("_")[0]


def title_bound(status: int, visibility: str, *, write: bool) -> Expect:
    """An object hanging off a title of `visibility` owned by tenant `owner`."""

    def expect(actor: str, owner: str | None) -> int:
        if actor == ANON:
            return 401
        kind = _kind(actor)
        if kind == "operator" or (kind == "studio" and actor == owner):
            return status
        if kind == "developer" and visibility != "private":
            return 403 if write else status
        return 404

    return expect


def studio_acting_for(status: int) -> Expect:
    """Creating in tenant `owner`'s catalog: its own studio, or an operator naming a studio."""

    def expect(actor: str, owner: str | None) -> int:
        if actor == ANON:
            return 401
        kind = _kind(actor)
        if kind == "operator":
            return status if owner is None or _kind(owner) == "studio" else 422
        if kind == "studio":
            return status if owner in (None, actor) else 403
        return 403

    return expect


def no_studio_named(status: int) -> Expect:
    """Creating without `studio_id`: studios act for themselves, operators must name one."""

    def expect(actor: str, owner: str | None) -> int:
        return {ANON: 401, "operator": 422}.get(actor, status if "studio" in actor else 403)

    return expect


def talent_route(status: int) -> Expect:
    """Talent of tenant `owner`: studios and operators only; developers 403 whatever the id."""

    def expect(actor: str, owner: str | None) -> int:
        if actor == ANON:
            return 401
        kind = _kind(actor)
        if kind == "developer":
            return 403
        if kind == "operator" or owner is None or actor == owner:
            return status
        return 404

    return expect


def a_title(visibility: str, **extra: Any) -> Target:
    def target(ctx: Ctx, owner: str) -> dict[str, str]:
        title = make_title(ctx.session, ctx.world[owner].org_id, visibility=visibility, **extra)
        return {"title_id": title.id}

    return target


def an_asset(status: str, byte_size: int | None = None) -> Target:
    def target(ctx: Ctx, owner: str) -> dict[str, str]:
        title = make_title(ctx.session, ctx.world[owner].org_id, visibility="listed")
        asset = make_asset(ctx.session, title, status=status, byte_size=byte_size)
        return {"asset_id": asset.id}

    return target


def a_grant(ctx: Ctx, owner: str) -> dict[str, str]:
    title = make_title(ctx.session, ctx.world[owner].org_id, visibility="listed")
    return {"grant_id": make_grant(ctx.session, title).id}


def a_talent(ctx: Ctx, owner: str) -> dict[str, str]:
    talent = make_talent(ctx.session, ctx.world[owner].org_id)
    make_consent(ctx.session, talent)
    return {"talent_id": talent.id}


def a_title_and_talent(ctx: Ctx, owner: str) -> dict[str, str]:
    make_talent(ctx.session, ctx.world[owner].org_id)
    return a_title("listed")(ctx, owner)


def a_clearable_title(visibility: str) -> Target:
    def target(ctx: Ctx, owner: str) -> dict[str, str]:
        title = make_title(
            ctx.session, ctx.world[owner].org_id, visibility=visibility, synopsis="clear me"
        )
        make_grant(ctx.session, title)
        make_asset(ctx.session, title)
        return {}

    return target


def no_params(ctx: Ctx, owner: str) -> dict[str, str]:
    return {}


def _owner_org(ctx: Ctx, owner: str | None) -> str:
    assert owner is not None
    return ctx.world[owner].org_id


def clearance_body(ctx: Ctx, owner: str | None) -> dict[str, Any]:
    title_id = ctx.session.scalar(
        select(Title.id).where(
            Title.studio_id == _owner_org(ctx, owner), Title.synopsis == "clear me"
        )
    )
    return {
        "title_ids": [title_id],
        "uses": ["train"],
        "territories": ["US"],
        "start": "2026-01-01",
        "end": "2026-12-31",
    }


def credit_body(ctx: Ctx, owner: str | None) -> dict[str, Any]:
    talent_id = ctx.session.scalar(
        select(Talent.id).where(Talent.studio_id == _owner_org(ctx, owner))
    )
    return {"talent_id": talent_id, "role": "cast"}


def fixed(body: dict[str, Any]) -> Callable[[Ctx, str | None], dict[str, Any]]:
    return lambda ctx, owner: body


GRANT = {
    "territories": ["US"],
    "start": date(2026, 1, 1).isoformat(),
    "end": date(2026, 12, 31).isoformat(),
    "permitted_uses": ["train"],
}
CONSENT = GRANT | {"attributes": ["name", "voice"]}
ASSET = {"kind": "video", "byte_size": 1024, "sha256": SHA, "filename": "m.mp4"}

ROUTES: list[Route] = [
    # titles
    Route(
        "POST",
        "/api/v1/titles",
        studio_acting_for(201),
        target=no_params,
        body=lambda ctx, owner: {
            "studio_id": _owner_org(ctx, owner),
            "external_id": "matrix-new",
            "kind": "film",
            "name": "New",
        },
    ),
    Route(
        "POST",
        "/api/v1/titles",
        no_studio_named(201),
        body=fixed({"external_id": "matrix-new", "kind": "film", "name": "New"}),
    ),
    *[
        Route(
            "GET",
            "/api/v1/titles/{title_id}",
            title_bound(200, visibility, write=False),
            target=a_title(visibility),
        )
        for visibility in ("private", "anonymized", "listed")
    ],
    *[
        Route(
            "PATCH",
            "/api/v1/titles/{title_id}",
            title_bound(200, visibility, write=True),
            target=a_title(visibility),
            body=fixed({"name": "Renamed"}),
        )
        for visibility in ("private", "listed")
    ],
    *[
        Route(
            "DELETE",
            "/api/v1/titles/{title_id}",
            title_bound(204, visibility, write=True),
            target=a_title(visibility),
        )
        for visibility in ("private", "anonymized")
    ],
    # assets
    Route(
        "POST",
        "/api/v1/titles/{title_id}/assets",
        title_bound(201, "listed", write=True),
        target=a_title("listed"),
        body=fixed(ASSET),
    ),
    *[
        Route(
            "GET",
            "/api/v1/titles/{title_id}/assets",
            title_bound(200, visibility, write=False),
            target=a_title(visibility),
        )
        for visibility in ("private", "anonymized")
    ],
    Route(
        "POST",
        "/api/v1/assets/{asset_id}/complete",
        title_bound(200, "listed", write=True),
        target=an_asset("ready"),
    ),
    # A pending asset without an upload: 409 to those who may complete it; developers never
    # see pending assets, so for them it does not exist.
    Route(
        "POST",
        "/api/v1/assets/{asset_id}/complete",
        title_bound(409, "private", write=True),
        target=an_asset("pending"),
    ),
    # A pending master past one PUT: its part URLs, to those who may upload it; developers
    # never see pending assets.
    Route(
        "POST",
        "/api/v1/assets/{asset_id}/upload-parts",
        title_bound(200, "private", write=True),
        target=an_asset("pending", byte_size=6 * 1024**3),
        body=fixed({"parts": [{"part_number": n, "sha256": SHA} for n in (1, 2)]}),
    ),
    # rights
    Route(
        "POST",
        "/api/v1/titles/{title_id}/rights",
        title_bound(201, "listed", write=True),
        target=a_title("listed"),
        body=fixed(GRANT),
    ),
    *[
        Route(
            "GET",
            "/api/v1/titles/{title_id}/rights",
            title_bound(200, visibility, write=False),
            target=a_title(visibility),
        )
        for visibility in ("private", "listed")
    ],
    Route(
        "DELETE",
        "/api/v1/rights/{grant_id}",
        title_bound(204, "listed", write=True),
        target=a_grant,
    ),
    # talent, credits, consents
    Route(
        "POST",
        "/api/v1/talent",
        studio_acting_for(201),
        target=no_params,
        body=lambda ctx, owner: {"name": "Ada", "studio_id": _owner_org(ctx, owner)},
    ),
    Route("POST", "/api/v1/talent", no_studio_named(201), body=fixed({"name": "Ada"})),
    Route("GET", "/api/v1/talent", talent_route(200)),
    Route(
        "POST",
        "/api/v1/titles/{title_id}/credits",
        title_bound(201, "listed", write=True),
        target=a_title_and_talent,
        body=credit_body,
    ),
    *[
        Route(
            "GET",
            "/api/v1/titles/{title_id}/credits",
            title_bound(200, visibility, write=False),
            target=a_title(visibility),
        )
        for visibility in ("private", "anonymized")
    ],
    Route(
        "POST",
        "/api/v1/talent/{talent_id}/consents",
        talent_route(201),
        target=a_talent,
        body=fixed(CONSENT),
    ),
    Route("GET", "/api/v1/talent/{talent_id}/consents", talent_route(200), target=a_talent),
    # clearance
    *[
        Route(
            "POST",
            "/api/v1/clearance",
            title_bound(200, visibility, write=False),
            target=a_clearable_title(visibility),
            body=clearance_body,
        )
        for visibility in ("private", "anonymized", "listed")
    ],
]
