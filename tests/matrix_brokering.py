"""Authorization matrix entries: license requests, offers, messages, contracts, prices.

License requests belong to developers; offers and contracts join a studio (the owner tenant
here) and developer X. A studio sees open requests by criteria alone, and those naming its
titles; a developer only its own.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from contracts.models import Contract, ContractTitle
from marketplace.brokering.models import LicenseRequest, Offer, RequestStudio
from tests.deals import cleared_title, offer_body, request_body
from tests.matrix import ANON, Ctx, Expect, Route, authenticated

DEVELOPERS = ("developer_x", "developer_y")
STUDIOS = ("studio_a", "studio_b")
PARTY = "developer_x"


def _request(ctx: Ctx, developer: str, *, studio: str | None = None) -> LicenseRequest:
    """A request by criteria alone, or (with `studio`) one naming a title of that studio."""
    title_ids = [cleared_title(ctx.session, ctx.world[studio].org_id).id] if studio else []
    request = LicenseRequest(
        developer_id=ctx.world[developer].org_id,
        created_by=ctx.world[developer].user_id,
        title_ids=title_ids,
        criteria={} if studio else {"genres": ["drama"]},
        uses=["train"],
        territories=["US"],
        start=date(2026, 6, 1),
        end=date(2026, 12, 31),
        currency="usd",
    )
    ctx.session.add(request)
    ctx.session.flush()
    if studio:
        ctx.session.add(RequestStudio(request_id=request.id, studio_id=ctx.world[studio].org_id))
        ctx.session.flush()
    return request


def _offer(ctx: Ctx, studio: str, *, status: str = "open") -> Offer:
    title = cleared_title(ctx.session, ctx.world[studio].org_id)
    request = _request(ctx, PARTY)
    offer = Offer(
        request_id=request.id,
        studio_id=ctx.world[studio].org_id,
        developer_id=ctx.world[PARTY].org_id,
        proposed_by="studio",
        created_by=ctx.world[studio].user_id,
        title_ids=[title.id],
        uses=["train"],
        territories=["US"],
        start=date(2026, 6, 1),
        end=date(2026, 12, 31),
        pricing_model="flat",
        amount_cents=100_000,
        currency="usd",
        total_cents=100_000,
        content_seconds=7200.0,
        quota_bytes=10**9,
        quota_downloads=10,
        expires_at=datetime.now(UTC) + timedelta(days=7),
        status=status,
    )
    ctx.session.add(offer)
    ctx.session.flush()
    return offer


def _contract(ctx: Ctx, studio: str, *, signed: bool) -> Contract:
    offer = _offer(ctx, studio, status="accepted")
    contract = Contract(
        offer_id=offer.id,
        request_id=offer.request_id,
        studio_id=offer.studio_id,
        developer_id=offer.developer_id,
        terms={"licensee": {"reference": "L"}},
        title_ids=offer.title_ids,
        uses=offer.uses,
        territories=offer.territories,
        starts_on=offer.start,
        ends_on=offer.end,
        amount_cents=100_000,
        currency="usd",
        content_seconds=7200.0,
        quota_bytes=10**9,
        quota_downloads=10,
        document="agreement",
        document_sha256="ab" * 32,
        status="signed" if signed else "pending_signatures",
        signed_at=datetime.now(UTC) if signed else None,
    )
    ctx.session.add(contract)
    ctx.session.flush()
    ctx.session.add(ContractTitle(contract_id=contract.id, title_id=offer.title_ids[0]))
    ctx.session.flush()
    return contract


def request_of(ctx: Ctx, owner: str) -> dict[str, str]:
    return {"request_id": _request(ctx, owner).id}


def request_naming_studio_a_of(ctx: Ctx, owner: str) -> dict[str, str]:
    return {"request_id": _request(ctx, owner, studio="studio_a").id}


def offer_of(ctx: Ctx, owner: str) -> dict[str, str]:
    return {"offer_id": _offer(ctx, owner).id}


def pending_contract_of(ctx: Ctx, owner: str) -> dict[str, str]:
    return {"contract_id": _contract(ctx, owner, signed=False).id}


def signed_contract_of(ctx: Ctx, owner: str) -> dict[str, str]:
    return {"contract_id": _contract(ctx, owner, signed=True).id}


def rule(table: dict[str, int], default: int = 404, *, owner_status: int | None = None) -> Expect:
    """`table` by actor; `owner_status` for the owning tenant; anonymous is always 401."""

    def expect(actor: str, owner: str | None) -> int:
        if actor == ANON:
            return 401
        if owner_status is not None and actor == owner:
            return owner_status
        return table.get(actor, default)

    return expect


def request_rule(*, owner: int, studios: int, operator: int) -> Expect:
    """Requests: the owning developer, every studio (open requests), operators; not others."""

    def expect(actor: str, owner_tenant: str | None) -> int:
        if actor == ANON:
            return 401
        if actor == owner_tenant:
            return owner
        if actor in STUDIOS:
            return studios
        return operator if actor == "operator" else 404

    return expect


def named_request_rule(*, owner: int, studio_a: int, operator: int) -> Expect:
    """Requests naming a title of studio A only: its developer, studio A, operators; studio B
    gets what it gets for a request that does not exist."""

    def expect(actor: str, owner_tenant: str | None) -> int:
        if actor == ANON:
            return 401
        if actor == owner_tenant:
            return owner
        if actor == "studio_a":
            return studio_a
        return operator if actor == "operator" else 404

    return expect


def party_rule(*, studio: int, developer: int, operator: int) -> Expect:
    """Offers and contracts: the owning studio, developer X, operators; 404 for the others."""

    def expect(actor: str, owner: str | None) -> int:
        if actor == ANON:
            return 401
        if actor == owner:
            return studio
        if actor == PARTY:
            return developer
        return operator if actor == "operator" else 404

    return expect


def new_request_body(ctx: Ctx, owner: str | None) -> dict[str, Any]:
    title = cleared_title(ctx.session, ctx.world["studio_a"].org_id)
    ctx.session.flush()
    return request_body([title.id])


def offer_body_for(ctx: Ctx, owner: str | None, actor: str) -> dict[str, Any]:
    studio = actor if actor in STUDIOS else "studio_a"
    title = cleared_title(ctx.session, ctx.world[studio].org_id)
    ctx.session.flush()
    body = offer_body([title.id])
    if actor == "operator":
        body["studio_id"] = ctx.world["studio_a"].org_id
    return body


def sign_body(ctx: Ctx, owner: str | None) -> dict[str, str]:
    return {"document_sha256": "ab" * 32}


ROUTES: list[Route] = [
    Route("GET", "/api/v1/license-requests", authenticated(200)),
    Route(
        "POST",
        "/api/v1/license-requests",
        rule({"developer_x": 201, "developer_y": 201}, 403),
        body=new_request_body,
    ),
    Route(
        "GET",
        "/api/v1/license-requests/{request_id}",
        request_rule(owner=200, studios=200, operator=200),
        target=request_of,
        owner_tenants=DEVELOPERS,
    ),
    Route(
        "POST",
        "/api/v1/license-requests/{request_id}/close",
        request_rule(owner=200, studios=403, operator=200),
        target=request_of,
        owner_tenants=DEVELOPERS,
    ),
    Route(
        "POST",
        "/api/v1/license-requests/{request_id}/offers",
        request_rule(owner=403, studios=201, operator=201),
        target=request_of,
        owner_tenants=DEVELOPERS,
        actor_body=offer_body_for,
    ),
    Route(
        "GET",
        "/api/v1/license-requests/{request_id}/offers",
        request_rule(owner=200, studios=200, operator=200),
        target=request_of,
        owner_tenants=DEVELOPERS,
    ),
    Route(
        "POST",
        "/api/v1/license-requests/{request_id}/messages",
        request_rule(owner=201, studios=201, operator=201),
        target=request_of,
        owner_tenants=DEVELOPERS,
        body=lambda ctx, owner: {"body": "Hello"},
    ),
    Route(
        "GET",
        "/api/v1/license-requests/{request_id}/messages",
        request_rule(owner=200, studios=200, operator=200),
        target=request_of,
        owner_tenants=DEVELOPERS,
    ),
    # The same routes on a request naming studio A's title: studio B is never told of it.
    Route(
        "GET",
        "/api/v1/license-requests/{request_id}",
        named_request_rule(owner=200, studio_a=200, operator=200),
        target=request_naming_studio_a_of,
        owner_tenants=DEVELOPERS,
    ),
    Route(
        "POST",
        "/api/v1/license-requests/{request_id}/close",
        named_request_rule(owner=200, studio_a=403, operator=200),
        target=request_naming_studio_a_of,
        owner_tenants=DEVELOPERS,
    ),
    Route(
        "POST",
        "/api/v1/license-requests/{request_id}/offers",
        named_request_rule(owner=403, studio_a=201, operator=201),
        target=request_naming_studio_a_of,
        owner_tenants=DEVELOPERS,
        actor_body=offer_body_for,
    ),
    Route(
        "GET",
        "/api/v1/license-requests/{request_id}/offers",
        named_request_rule(owner=200, studio_a=200, operator=200),
        target=request_naming_studio_a_of,
        owner_tenants=DEVELOPERS,
    ),
    Route(
        "POST",
        "/api/v1/license-requests/{request_id}/messages",
        named_request_rule(owner=201, studio_a=201, operator=201),
        target=request_naming_studio_a_of,
        owner_tenants=DEVELOPERS,
        body=lambda ctx, owner: {"body": "Hello"},
    ),
    Route(
        "GET",
        "/api/v1/license-requests/{request_id}/messages",
        named_request_rule(owner=200, studio_a=200, operator=200),
        target=request_naming_studio_a_of,
        owner_tenants=DEVELOPERS,
    ),
    Route(
        "GET",
        "/api/v1/offers/{offer_id}",
        party_rule(studio=200, developer=200, operator=200),
        target=offer_of,
        owner_tenants=STUDIOS,
    ),
    Route(
        "POST",
        "/api/v1/offers/{offer_id}/counter",
        party_rule(studio=403, developer=201, operator=201),
        target=offer_of,
        owner_tenants=STUDIOS,
        body=lambda ctx, owner: {"quota": {"bytes": 5, "downloads": 1}},
    ),
    Route(
        "POST",
        "/api/v1/offers/{offer_id}/accept",
        party_rule(studio=403, developer=200, operator=403),
        target=offer_of,
        owner_tenants=STUDIOS,
    ),
    Route(
        "POST",
        "/api/v1/offers/{offer_id}/reject",
        party_rule(studio=403, developer=200, operator=403),
        target=offer_of,
        owner_tenants=STUDIOS,
    ),
    Route(
        "POST",
        "/api/v1/offers/{offer_id}/withdraw",
        party_rule(studio=200, developer=403, operator=200),
        target=offer_of,
        owner_tenants=STUDIOS,
    ),
    Route("GET", "/api/v1/contracts", authenticated(200)),
    Route(
        "GET",
        "/api/v1/contracts/{contract_id}",
        party_rule(studio=200, developer=200, operator=200),
        target=pending_contract_of,
        owner_tenants=STUDIOS,
    ),
    Route(
        "GET",
        "/api/v1/contracts/{contract_id}/document",
        party_rule(studio=200, developer=200, operator=200),
        target=pending_contract_of,
        owner_tenants=STUDIOS,
    ),
    Route(
        "GET",
        "/api/v1/contracts/{contract_id}/policy",
        party_rule(studio=200, developer=200, operator=200),
        target=pending_contract_of,
        owner_tenants=STUDIOS,
    ),
    # The operator countersigns only after both parties: 409 on a fresh contract.
    Route(
        "POST",
        "/api/v1/contracts/{contract_id}/sign",
        party_rule(studio=200, developer=200, operator=409),
        target=pending_contract_of,
        owner_tenants=STUDIOS,
        body=sign_body,
    ),
    Route(
        "POST",
        "/api/v1/contracts/{contract_id}/terminate",
        party_rule(studio=403, developer=403, operator=200),
        target=signed_contract_of,
        owner_tenants=STUDIOS,
        body=lambda ctx, owner: {"reason": "breach"},
    ),
    Route(
        "POST",
        "/api/v1/contracts/{contract_id}/attestations",
        party_rule(studio=403, developer=201, operator=403),
        target=signed_contract_of,
        owner_tenants=STUDIOS,
        body=lambda ctx, owner: {"kind": "evaluation", "statement": "Evaluated."},
    ),
    Route(
        "GET",
        "/api/v1/contracts/{contract_id}/attestations",
        party_rule(studio=200, developer=200, operator=200),
        target=signed_contract_of,
        owner_tenants=STUDIOS,
    ),
    Route("GET", "/api/v1/pricing/benchmarks", authenticated(200)),
]
