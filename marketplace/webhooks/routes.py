"""Webhook endpoints of the caller's organization (owners), and their deliveries."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from marketplace.accounts.principal import Principal
from marketplace.core.api import Blueprint, PageArgsSchema
from marketplace.core.pagination import Page, SortKey, paginate
from marketplace.core.web import current_actor, db, read_only, state
from marketplace.webhooks import service
from marketplace.webhooks.crypto import SecretBox, secret_box
from marketplace.webhooks.models import WebhookDelivery, WebhookEndpoint
from marketplace.webhooks.schemas import (
    WebhookDeliveryPageSchema,
    WebhookDeliverySchema,
    WebhookEndpointCreateSchema,
    WebhookEndpointPageSchema,
    WebhookEndpointSchema,
    WebhookEndpointUpdateSchema,
    WebhookEndpointWithSecretSchema,
)

blp = Blueprint(
    "webhooks", __name__, url_prefix="/api/v1", description="Webhook endpoints and deliveries"
)


def viewer() -> Principal:
    actor: Principal = current_actor()
    return actor


def _box() -> SecretBox:
    return secret_box(state().runtime.settings)


def _production() -> bool:
    return state().runtime.settings.is_production


def _with_secret(endpoint: WebhookEndpoint, secret: str) -> dict[str, Any]:
    shown = {name: getattr(endpoint, name) for name in WebhookEndpointSchema().fields}
    return {**shown, "secret": secret}


@blp.route("/webhook-endpoints")
class WebhookEndpoints(MethodView):
    @blp.arguments(PageArgsSchema(), location="query")
    @blp.response(200, WebhookEndpointPageSchema)
    @read_only
    def get(self, args: dict[str, Any]) -> Any:
        """List your organization's webhook endpoints (owners; never their secrets)."""
        return paginate(
            db(),
            service.list_endpoints(viewer()),
            keys=[SortKey(WebhookEndpoint.id)],
            limit=args["limit"],
            cursor=args["cursor"],
            codec=state().cursors,
            scope="webhook-endpoints",
        )

    @blp.arguments(WebhookEndpointCreateSchema())
    @blp.response(201, WebhookEndpointWithSecretSchema)
    def post(self, body: dict[str, Any]) -> Any:
        """Add a webhook endpoint (owners); the response carries its signing secret, once."""
        endpoint, secret = service.create_endpoint(
            db(), viewer(), _box(), body, production=_production()
        )
        return _with_secret(endpoint, secret)


@blp.route("/webhook-endpoints/<endpoint_id>")
class WebhookEndpointById(MethodView):
    @blp.response(200, WebhookEndpointSchema)
    @read_only
    def get(self, endpoint_id: str) -> Any:
        """Get a webhook endpoint."""
        return service.get_endpoint(db(), viewer(), endpoint_id)

    @blp.arguments(WebhookEndpointUpdateSchema())
    @blp.response(200, WebhookEndpointSchema)
    def patch(self, body: dict[str, Any], endpoint_id: str) -> Any:
        """Change an endpoint's URL, events or description, or disable or enable it."""
        return service.update_endpoint(db(), viewer(), endpoint_id, body, production=_production())

    @blp.response(204)
    def delete(self, endpoint_id: str) -> None:
        """Remove a webhook endpoint; nothing more is sent to it."""
        service.delete_endpoint(db(), viewer(), endpoint_id)


@blp.route("/webhook-endpoints/<endpoint_id>/rotate-secret")
class WebhookEndpointRotate(MethodView):
    @blp.response(200, WebhookEndpointWithSecretSchema)
    def post(self, endpoint_id: str) -> Any:
        """A new signing secret, shown once; the old one also signs for 24 hours."""
        endpoint, secret = service.rotate_secret(db(), viewer(), _box(), endpoint_id)
        return _with_secret(endpoint, secret)


@blp.route("/webhook-endpoints/<endpoint_id>/deliveries")
class WebhookDeliveries(MethodView):
    @blp.arguments(PageArgsSchema(), location="query")
    @blp.response(200, WebhookDeliveryPageSchema)
    @read_only
    def get(self, args: dict[str, Any], endpoint_id: str) -> Any:
        """List an endpoint's deliveries: status, attempts, response code and timing."""
        page = paginate(
            db(),
            service.deliveries_of(db(), viewer(), endpoint_id),
            keys=[SortKey(WebhookDelivery.id)],
            limit=args["limit"],
            cursor=args["cursor"],
            codec=state().cursors,
            scope="webhook-deliveries",
        )
        return Page(service.present_deliveries(db(), page.items), page.next_cursor)


@blp.route("/webhook-endpoints/<endpoint_id>/deliveries/<delivery_id>/redeliver")
class WebhookRedeliver(MethodView):
    @blp.response(202, WebhookDeliverySchema)
    def post(self, endpoint_id: str, delivery_id: str) -> Any:
        """Send a delivery again: same event id and body, a fresh schedule of attempts."""
        return service.present_delivery(
            *service.redeliver(db(), viewer(), endpoint_id, delivery_id)
        )
