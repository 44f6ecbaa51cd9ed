"""Organizations, users, API keys and /me."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from marketplace.accounts import service
from marketplace.accounts.cache import PRINCIPAL_CACHE
from marketplace.accounts.models import ApiKey, Organization
from marketplace.accounts.principal import Principal
from marketplace.accounts.schemas import (
    ApiKeyCreatedSchema,
    ApiKeyPageSchema,
    MeSchema,
    OrganizationCreateSchema,
    OrganizationPageSchema,
    OrganizationQueryArgsSchema,
    OrganizationSchema,
    UserCreateSchema,
    UserWithKeySchema,
)
from marketplace.core.api import Blueprint, PageArgsSchema
from marketplace.core.pagination import SortKey, paginate
from marketplace.core.web import component, current_actor, db, read_only, state

blp = Blueprint(
    "accounts", __name__, url_prefix="/api/v1", description="Organizations, users, keys"
)


def principal() -> Principal:
    actor: Principal = current_actor()
    return actor


@blp.route("/organizations")
class Organizations(MethodView):
    @blp.arguments(OrganizationQueryArgsSchema(), location="query")
    @blp.response(200, OrganizationPageSchema)
    @read_only
    def get(self, args: dict[str, Any]) -> Any:
        """List organizations: all for operators, your own otherwise."""
        stmt = service.visible_organizations(principal())
        if args.get("kind"):
            stmt = stmt.where(Organization.kind == args["kind"])
        return paginate(
            db(),
            stmt,
            keys=[SortKey(Organization.id)],
            limit=args["limit"],
            cursor=args["cursor"],
            codec=state().cursors,
            scope="organizations",
        )

    @blp.arguments(OrganizationCreateSchema())
    @blp.response(201, OrganizationSchema)
    def post(self, body: dict[str, Any]) -> Any:
        """Create an organization (operators)."""
        return service.create_organization(db(), principal(), **body)


@blp.route("/organizations/<org_id>")
class OrganizationById(MethodView):
    @blp.response(200, OrganizationSchema)
    @read_only
    def get(self, org_id: str) -> Any:
        """Get an organization."""
        return service.get_organization(db(), principal(), org_id)


@blp.route("/organizations/<org_id>/users")
class OrganizationUsers(MethodView):
    @blp.arguments(UserCreateSchema())
    @blp.response(201, UserWithKeySchema)
    def post(self, body: dict[str, Any], org_id: str) -> Any:
        """Add a user to an organization; the response carries their first API key, once."""
        user, raw = service.add_user(db(), principal(), org_id, **body)
        return {"user": user, "api_key": raw}


@blp.route("/me")
class Me(MethodView):
    @blp.response(200, MeSchema)
    @read_only
    def get(self) -> Any:
        """Who am I: the calling user and organization."""
        user = service.get_user(db(), principal())
        return {"user": user, "organization": user.organization}


@blp.route("/api-keys")
class ApiKeys(MethodView):
    @blp.arguments(PageArgsSchema(), location="query")
    @blp.response(200, ApiKeyPageSchema)
    @read_only
    def get(self, args: dict[str, Any]) -> Any:
        """List API keys (never their secrets): yours, or your organization's if you own it."""
        return paginate(
            db(),
            service.visible_api_keys(principal()),
            keys=[SortKey(ApiKey.id)],
            limit=args["limit"],
            cursor=args["cursor"],
            codec=state().cursors,
            scope="api-keys",
        )

    @blp.response(201, ApiKeyCreatedSchema)
    def post(self) -> Any:
        """Issue a new API key to the calling user; the key is shown once."""
        api_key, raw = service.create_api_key(db(), principal())
        return {"id": api_key.id, "api_key": raw, "created_at": api_key.created_at}


@blp.route("/api-keys/<key_id>")
class ApiKeyById(MethodView):
    @blp.response(204)
    def delete(self, key_id: str) -> None:
        """Revoke an API key, at once."""
        service.revoke_api_key(db(), principal(), key_id, cache=component(PRINCIPAL_CACHE))
