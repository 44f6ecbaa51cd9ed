"""HTTP shapes of payments, the payout ledger and webhook receipts."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from catalog.codes import currency_doc, normalize_currency
from marketplace.billing.models import PAYMENT_STATUSES
from marketplace.core.api import PageArgsSchema, Schema, UTCDateTime, page_of


class PaymentSchema(Schema):
    id = ma.fields.String()
    contract_id = ma.fields.String()
    amount_cents = ma.fields.Integer()
    currency = ma.fields.String()
    status = ma.fields.String(metadata={"enum": list(PAYMENT_STATUSES)})
    created_at = UTCDateTime()
    succeeded_at = UTCDateTime(allow_none=True)
    failed_at = UTCDateTime(allow_none=True)
    failure_message = ma.fields.String(allow_none=True)
    refunded_at = UTCDateTime(
        allow_none=True,
        metadata={
            "description": "`refunded`: the intent succeeded for a contract another payment "
            "had already paid, and was refunded in full at once."
        },
    )
    refund_id = ma.fields.String(allow_none=True, metadata={"description": "Stripe's refund id."})


class PaymentCreatedSchema(PaymentSchema):
    client_secret = ma.fields.String(
        metadata={
            "description": "The Stripe PaymentIntent's client secret: confirm the payment with "
            "it (Stripe.js). Shown to the payer only."
        }
    )


class PayoutSchema(Schema):
    id = ma.fields.String()
    contract_id = ma.fields.String()
    studio_id = ma.fields.String()
    payment_id = ma.fields.String()
    amount_cents = ma.fields.Integer()
    studio_amount_cents = ma.fields.Integer()
    fee_cents = ma.fields.Integer()
    fee_bps = ma.fields.Integer(
        metadata={"description": "The marketplace fee in basis points when the entry was made."}
    )
    currency = ma.fields.String()
    created_at = UTCDateTime()


class PayoutTotalsSchema(Schema):
    currency = ma.fields.String()
    amount_cents = ma.fields.Integer()
    studio_amount_cents = ma.fields.Integer()
    fee_cents = ma.fields.Integer()


class PayoutPageSchema(Schema):
    items = ma.fields.List(ma.fields.Nested(PayoutSchema), required=True)
    next_cursor = ma.fields.String(allow_none=True, required=True)
    totals = ma.fields.List(
        ma.fields.Nested(PayoutTotalsSchema),
        required=True,
        metadata={"description": "Per currency, over every entry the filters select."},
    )


class PayoutQueryArgsSchema(PageArgsSchema):
    studio_id = ma.fields.String(validate=ma.validate.Length(max=40))
    contract_id = ma.fields.String(validate=ma.validate.Length(max=40))
    currency = ma.fields.String(validate=ma.validate.Length(equal=3), metadata=currency_doc())

    @ma.post_load
    def _normalize(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        if data.get("currency"):
            try:
                data["currency"] = normalize_currency(data["currency"])
            except ValueError as exc:
                raise ma.ValidationError(str(exc), field_name="currency") from None
        return data


class WebhookReceiptSchema(Schema):
    event_id = ma.fields.String()
    type = ma.fields.String()
    outcome = ma.fields.String(
        metadata={
            "enum": ["processed", "ignored", "duplicate"],
            "description": "`duplicate`: this event id was handled before; nothing changed.",
        }
    )


PaymentPageSchema = page_of(PaymentSchema, "PaymentPageSchema")
