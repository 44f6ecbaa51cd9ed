"""The authorization matrix: every route × every actor × every tenant's objects.

Each later domain adds its routes here. `expect(actor, owner)` names the status that `actor`
gets for an object owned by tenant `owner` (`None` owner: a route without an object).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from tests.world import TENANTS, World, make_user

ANON = "anonymous"
ACTORS = (ANON, *TENANTS)


@dataclass
class Ctx:
    session: Session
    world: World


Expect = Callable[[str, str | None], int]
Target = Callable[[Ctx, str], dict[str, str]]
Body = Callable[[Ctx, str | None], Any]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    expect: Expect
    target: Target | None = None
    body: Body | None = None
    query: str = ""
    # Where the body depends on who sends it (a studio offers its own titles).
    actor_body: Callable[[Ctx, str | None, str], Any] | None = None
    # Which tenants can own the object at all (a license request is always a developer's).
    owner_tenants: tuple[str, ...] | None = None

    @property
    def owners(self) -> tuple[str | None, ...]:
        if self.target is None:
            return (None,)
        return self.owner_tenants or TENANTS


def public(status: int) -> Expect:
    return lambda actor, owner: status


def authenticated(status: int) -> Expect:
    return lambda actor, owner: 401 if actor == ANON else status


def operator_only(status: int) -> Expect:
    def expect(actor: str, owner: str | None) -> int:
        if actor == ANON:
            return 401
        return status if actor == "operator" else 403

    return expect


def own_or_operator(status: int) -> Expect:
    """Operators and the owning tenant get `status`; anyone else must not learn it exists."""

    def expect(actor: str, owner: str | None) -> int:
        if actor == ANON:
            return 401
        return status if actor in ("operator", owner) else 404

    return expect


def org_of(name: str) -> Target:
    return lambda ctx, owner: {name: ctx.world[owner].org_id}


def new_key_of_owner(ctx: Ctx, owner: str) -> dict[str, str]:
    from marketplace.accounts.models import ApiKey

    user, _ = make_user(
        ctx.session,
        ctx.world[owner].org_id,
        role="member",
        email=f"extra@{owner.replace('_', '-')}.test",
    )
    key = ctx.session.query(ApiKey).filter_by(user_id=user.id).one()
    return {"key_id": key.id}


def event_of_owner(ctx: Ctx, owner: str) -> dict[str, str]:
    from marketplace.audit.service import record_event

    org_id = ctx.world[owner].org_id
    event = record_event(ctx.session, None, "matrix.probe", object_id=None, organization_id=org_id)
    return {"event_id": event.id}


ROUTES: list[Route] = [
    # accounts
    Route("GET", "/api/v1/organizations", authenticated(200)),
    Route(
        "POST",
        "/api/v1/organizations",
        operator_only(201),
        body=lambda ctx, owner: {"name": "New Org", "kind": "studio"},
    ),
    Route("GET", "/api/v1/organizations/{org_id}", own_or_operator(200), target=org_of("org_id")),
    Route(
        "POST",
        "/api/v1/organizations/{org_id}/users",
        own_or_operator(201),
        target=org_of("org_id"),
        body=lambda ctx, owner: {"email": f"new-{owner}@example.test", "role": "member"},
    ),
    Route("GET", "/api/v1/me", authenticated(200)),
    Route("GET", "/api/v1/api-keys", authenticated(200)),
    Route("POST", "/api/v1/api-keys", authenticated(201)),
    # The actor is an owner: it may revoke its own organization's keys, nobody else's.
    Route("DELETE", "/api/v1/api-keys/{key_id}", own_or_operator(204), target=new_key_of_owner),
    # audit
    Route("GET", "/api/v1/audit-events", authenticated(200)),
    # An event about the owner's organization: its parties and operators read it, others
    # cannot tell it exists.
    Route("GET", "/api/v1/audit-events/{event_id}", own_or_operator(200), target=event_of_owner),
    # Heads reveal only the marketplace-wide event count and times: any organization.
    Route("GET", "/api/v1/audit/heads", authenticated(200)),
    Route("GET", "/api/v1/audit/public-key", authenticated(200)),
]

# Each domain keeps its entries in tests/matrix_<domain>.py and they are gathered here.
for _module in (
    "tests.matrix_catalog",
    "tests.matrix_imports",
    "tests.matrix_search",
    "tests.matrix_brokering",
    "tests.matrix_billing",
    "tests.matrix_delivery",
    "tests.matrix_jobs",
    "tests.matrix_webhooks",
):
    try:
        ROUTES += importlib.import_module(_module).ROUTES
    except ModuleNotFoundError as exc:
        if exc.name != _module:
            raise
