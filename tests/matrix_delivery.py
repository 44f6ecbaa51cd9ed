"""Authorization matrix entries: manifests, downloads, usage and the delivery log.

Contracts join a studio (the owner tenant) and developer X, as in tests/matrix_brokering.py.
Only the licensee (developer X) takes delivery; operators and the studio read, never download.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from catalog.models import Asset
from contracts.models import Contract
from tests.deals import cleared_title
from tests.delivery.builders import make_contract
from tests.matrix import Ctx, Route, authenticated, public
from tests.matrix_brokering import PARTY, STUDIOS, party_rule


def contract_row(ctx: Ctx, studio: str, *, status: str) -> Contract:
    """A contract of `studio` with developer X over one cleared film, in force today."""
    title = cleared_title(ctx.session, ctx.world[studio].org_id)
    return make_contract(
        ctx.session, ctx.world, [title.id], studio=studio, developer=PARTY, status=status
    )


def active_contract_of(ctx: Ctx, owner: str) -> dict[str, str]:
    return {"contract_id": contract_row(ctx, owner, status="active").id}


def signed_contract_of(ctx: Ctx, owner: str) -> dict[str, str]:
    return {"contract_id": contract_row(ctx, owner, status="signed").id}


def pending_contract_of(ctx: Ctx, owner: str) -> dict[str, str]:
    return {"contract_id": contract_row(ctx, owner, status="pending_signatures").id}


def asset_of_owner(ctx: Ctx, owner: str | None) -> dict[str, Any]:
    """The asset of the contract the target just built (each case has just that one)."""
    assert owner is not None
    asset_id = ctx.session.scalars(
        select(Asset.id).where(Asset.studio_id == ctx.world[owner].org_id)
    ).one()
    return {"asset_id": asset_id}


ROUTES: list[Route] = [
    Route("GET", "/api/v1/manifest-signing-key", public(200)),
    Route(
        "GET",
        "/api/v1/contracts/{contract_id}/manifest",
        party_rule(studio=200, developer=200, operator=200),
        target=signed_contract_of,
        owner_tenants=STUDIOS,
    ),
    Route(
        "POST",
        "/api/v1/contracts/{contract_id}/downloads",
        party_rule(studio=403, developer=201, operator=403),
        target=active_contract_of,
        owner_tenants=STUDIOS,
        body=asset_of_owner,
    ),
    # The batch form of the same route (tests/delivery/test_batch.py): the same rule.
    Route(
        "POST",
        "/api/v1/contracts/{contract_id}/downloads",
        party_rule(studio=403, developer=201, operator=403),
        target=active_contract_of,
        owner_tenants=STUDIOS,
        body=lambda ctx, owner: {"assets": [asset_of_owner(ctx, owner)] * 2},
    ),
    Route(
        "GET",
        "/api/v1/contracts/{contract_id}/downloads",
        party_rule(studio=200, developer=200, operator=200),
        target=active_contract_of,
        owner_tenants=STUDIOS,
    ),
    # Across contracts, filtered to what each may see (tests/delivery: TestTrackAndTrace).
    Route("GET", "/api/v1/downloads", authenticated(200)),
    Route(
        "GET",
        "/api/v1/contracts/{contract_id}/usage",
        party_rule(studio=200, developer=200, operator=200),
        target=pending_contract_of,
        owner_tenants=STUDIOS,
    ),
]
