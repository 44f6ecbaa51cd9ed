"""Payments of contracts, the Stripe webhook, and the payout ledger."""

from __future__ import annotations

from typing import Any

from flask import request
from flask.views import MethodView

from marketplace.accounts.principal import Principal
from marketplace.billing import payouts, service, webhooks
from marketplace.billing.gateway import PAYMENTS, PaymentGateway
from marketplace.billing.models import Payment, PayoutEntry
from marketplace.billing.schemas import (
    PaymentCreatedSchema,
    PaymentPageSchema,
    PayoutPageSchema,
    PayoutQueryArgsSchema,
    WebhookReceiptSchema,
)
from marketplace.core.api import Blueprint, PageArgsSchema
from marketplace.core.pagination import SortKey, paginate
from marketplace.core.web import component, current_actor, db, read_only, state

blp = Blueprint("billing", __name__, url_prefix="/api/v1", description="Payments and payouts")


def viewer() -> Principal:
    actor: Principal = current_actor()
    return actor


def gateway() -> PaymentGateway:
    return component(PAYMENTS)


@blp.route("/contracts/<contract_id>/payments")
class ContractPayments(MethodView):
    @blp.response(201, PaymentCreatedSchema)
    def post(self, contract_id: str) -> Any:
        """Pay a signed contract (the licensee): its Stripe PaymentIntent, new or still open."""
        start = service.start_payment(db(), viewer(), contract_id, gateway=gateway())
        payment = start.payment
        return {
            "id": payment.id,
            "contract_id": payment.contract_id,
            "amount_cents": payment.amount_cents,
            "currency": payment.currency,
            "status": payment.status,
            "created_at": payment.created_at,
            "succeeded_at": payment.succeeded_at,
            "failed_at": payment.failed_at,
            "failure_message": payment.failure_message,
            "refunded_at": payment.refunded_at,
            "refund_id": payment.refund_id,
            "client_secret": start.client_secret,
        }

    @blp.arguments(PageArgsSchema(), location="query")
    @blp.response(200, PaymentPageSchema)
    @read_only
    def get(self, args: dict[str, Any], contract_id: str) -> Any:
        """List a contract's payments (both parties and operators)."""
        return paginate(
            db(),
            service.payments_stmt(db(), viewer(), contract_id),
            keys=[SortKey(Payment.id)],
            limit=args["limit"],
            cursor=args["cursor"],
            codec=state().cursors,
            scope=f"payments:{contract_id}",
        )


@blp.route("/webhooks/stripe")
class StripeWebhook(MethodView):
    @blp.doc(
        security=[],
        parameters=[
            {
                "in": "header",
                "name": "Stripe-Signature",
                "required": True,
                "schema": {"type": "string"},
                "description": "`t=<unix time>,v1=<HMAC-SHA256>` with the webhook secret; "
                "a `t` more than 300 s before or after the server's clock is refused (400).",
            }
        ],
        requestBody={
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
    )
    @blp.response(200, WebhookReceiptSchema)
    def post(self) -> Any:
        """Receive a Stripe event (signed, no API key); each event id is applied once.

        A `payment_intent.succeeded` for a contract another payment already paid is refunded
        in full at once (the payment becomes `refunded`, with no payout entry); if Stripe
        cannot refund it, the answer is a 502 and nothing is recorded, so Stripe sends the event
        again.
        """
        settings = state().settings
        return webhooks.receive_webhook(
            db(),
            request.get_data(),
            request.headers.get("Stripe-Signature"),
            secret=settings.stripe_webhook_secret,
            fee_bps=settings.fee_bps,
            gateway=gateway(),
        )


@blp.route("/payouts")
class Payouts(MethodView):
    @blp.arguments(PayoutQueryArgsSchema(), location="query")
    @blp.response(200, PayoutPageSchema)
    @read_only
    def get(self, args: dict[str, Any]) -> Any:
        """The payout ledger with totals per currency (studios: their own; operators: all)."""
        limit, cursor = args.pop("limit"), args.pop("cursor")
        stmt = payouts.visible_payouts(viewer(), **args)
        page = paginate(
            db(),
            stmt,
            keys=[SortKey(PayoutEntry.id)],
            limit=limit,
            cursor=cursor,
            codec=state().cursors,
            scope="payouts",
        )
        totals = payouts.payout_totals(db(), stmt)
        return {"items": page.items, "next_cursor": page.next_cursor, "totals": totals}
