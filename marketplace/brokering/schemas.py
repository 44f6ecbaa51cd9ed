"""HTTP shapes of license requests, offers and messages."""

from __future__ import annotations

import marshmallow as ma

from catalog.codes import currency_doc, language_doc, territory_doc
from marketplace.brokering.models import PRICING_MODELS, SIDES
from marketplace.core.api import PageArgsSchema, Schema, UTCDateTime, page_of
from marketplace.core.money import (
    CHARGE_LIMIT_MESSAGE,
    MAX_CHARGE_MINOR_UNITS,
    MAX_STORED_MINOR_UNITS,
)

USES = ("train", "fine_tune", "evaluate", "generate_reference")
_ids = ma.fields.List(
    ma.fields.String(validate=ma.validate.Length(max=40)), validate=ma.validate.Length(max=1000)
)


class CriteriaSchema(Schema):
    genres = ma.fields.List(ma.fields.String(validate=ma.validate.Length(max=50)))
    languages = ma.fields.List(
        ma.fields.String(validate=ma.validate.Length(max=35), metadata=language_doc())
    )
    min_height = ma.fields.Integer(strict=True, validate=ma.validate.Range(min=1, max=100_000))
    min_hours = ma.fields.Float(validate=ma.validate.Range(min=0))
    kinds = ma.fields.List(
        ma.fields.String(validate=ma.validate.OneOf(("film", "series", "season", "episode")))
    )


class LicenseRequestCreateSchema(Schema):
    """Name `title_ids`, or `criteria`, or both (at least one of them)."""

    title_ids = _ids
    criteria = ma.fields.Nested(CriteriaSchema)
    uses = ma.fields.List(
        ma.fields.String(validate=ma.validate.OneOf(USES)),
        required=True,
        validate=ma.validate.Length(min=1),
    )
    territories = ma.fields.List(
        ma.fields.String(metadata=territory_doc()),
        required=True,
        validate=ma.validate.Length(min=1, max=250),
    )
    start = ma.fields.Date(required=True)
    end = ma.fields.Date(required=True)
    exclusive = ma.fields.Boolean(load_default=False)
    # strict: 10.5 (or "10") is refused, not truncated to 10.
    budget_cents = ma.fields.Integer(
        strict=True, validate=ma.validate.Range(min=0, max=MAX_STORED_MINOR_UNITS)
    )
    currency = ma.fields.String(
        load_default="usd", validate=ma.validate.Length(equal=3), metadata=currency_doc()
    )
    message = ma.fields.String(validate=ma.validate.Length(max=10_000))
    anonymous = ma.fields.Boolean(load_default=False)

    @ma.validates_schema
    def _wants_something(self, data: dict[str, object], **kwargs: object) -> None:
        if not data.get("title_ids") and not data.get("criteria"):
            raise ma.ValidationError("Name title_ids or criteria.", "title_ids")


class LicenseRequestSchema(Schema):
    id = ma.fields.String()
    developer_id = ma.fields.String(allow_none=True)
    title_ids = ma.fields.List(ma.fields.String())
    criteria = ma.fields.Dict()
    uses = ma.fields.List(ma.fields.String())
    territories = ma.fields.List(ma.fields.String())
    start = ma.fields.Date()
    end = ma.fields.Date()
    exclusive = ma.fields.Boolean()
    budget_cents = ma.fields.Integer(allow_none=True)
    currency = ma.fields.String()
    message = ma.fields.String(allow_none=True)
    anonymous = ma.fields.Boolean()
    status = ma.fields.String()
    created_at = UTCDateTime()
    closed_at = UTCDateTime(allow_none=True)


class PricingSchema(Schema):
    model = ma.fields.String(required=True, validate=ma.validate.OneOf(PRICING_MODELS))
    amount_cents = ma.fields.Integer(
        required=True,
        strict=True,
        validate=[
            ma.validate.Range(min=0),
            ma.validate.Range(max=MAX_CHARGE_MINOR_UNITS, error=CHARGE_LIMIT_MESSAGE),
        ],
        metadata={
            "description": "Integer minor units (cents): the flat price, or the price of one "
            f"hour or GB. At most {MAX_CHARGE_MINOR_UNITS:,}, as is the offer's total."
        },
    )
    currency = ma.fields.String(
        required=True, validate=ma.validate.Length(equal=3), metadata=currency_doc()
    )


class QuotaSchema(Schema):
    bytes = ma.fields.Integer(
        required=True, strict=True, validate=ma.validate.Range(min=0, max=10**16)
    )
    downloads = ma.fields.Integer(
        required=True, strict=True, validate=ma.validate.Range(min=0, max=10**7)
    )


class OfferCreateSchema(Schema):
    studio_id = ma.fields.String(metadata={"description": "Operators: the studio offering."})
    title_ids = ma.fields.List(
        ma.fields.String(validate=ma.validate.Length(max=40)),
        required=True,
        validate=ma.validate.Length(min=1, max=1000),
        metadata={"description": "The offering studio's titles: at least one."},
    )
    uses = ma.fields.List(
        ma.fields.String(validate=ma.validate.OneOf(USES)),
        required=True,
        validate=ma.validate.Length(min=1),
    )
    territories = ma.fields.List(
        ma.fields.String(metadata=territory_doc()),
        required=True,
        validate=ma.validate.Length(min=1, max=250),
    )
    start = ma.fields.Date(required=True)
    end = ma.fields.Date(required=True)
    exclusive = ma.fields.Boolean(load_default=False)
    pricing = ma.fields.Nested(PricingSchema, required=True)
    quota = ma.fields.Nested(QuotaSchema, required=True)
    expires_at = ma.fields.AwareDateTime()
    message = ma.fields.String(validate=ma.validate.Length(max=10_000))

    @ma.validates_schema
    def _titles(self, data: dict[str, object], **kwargs: object) -> None:
        if not data.get("title_ids"):
            raise ma.ValidationError("An offer names at least one title.", "title_ids")


class CounterOfferSchema(Schema):
    """Any term left out keeps the countered offer's value."""

    on_behalf_of = ma.fields.String(
        validate=ma.validate.OneOf(SIDES),
        metadata={"description": "Operators: the party this brokered counter is proposed for."},
    )
    title_ids = _ids
    uses = ma.fields.List(
        ma.fields.String(validate=ma.validate.OneOf(USES)), validate=ma.validate.Length(min=1)
    )
    territories = ma.fields.List(
        ma.fields.String(metadata=territory_doc()), validate=ma.validate.Length(min=1, max=250)
    )
    start = ma.fields.Date()
    end = ma.fields.Date()
    exclusive = ma.fields.Boolean()
    pricing = ma.fields.Nested(PricingSchema)
    quota = ma.fields.Nested(QuotaSchema)
    expires_at = ma.fields.AwareDateTime()
    message = ma.fields.String(validate=ma.validate.Length(max=10_000))


class OfferSchema(Schema):
    id = ma.fields.String()
    request_id = ma.fields.String()
    studio_id = ma.fields.String()
    title_ids = ma.fields.List(ma.fields.String())
    uses = ma.fields.List(ma.fields.String())
    territories = ma.fields.List(ma.fields.String())
    start = ma.fields.Date()
    end = ma.fields.Date()
    exclusive = ma.fields.Boolean()
    pricing = ma.fields.Nested(PricingSchema)
    total_cents = ma.fields.Integer()
    quota = ma.fields.Nested(QuotaSchema)
    expires_at = UTCDateTime()
    status = ma.fields.String(
        metadata={"enum": ["open", "accepted", "rejected", "withdrawn", "expired", "countered"]}
    )
    proposed_by = ma.fields.String()
    brokered = ma.fields.Boolean()
    previous_offer_id = ma.fields.String(allow_none=True)
    message = ma.fields.String(allow_none=True)
    created_at = UTCDateTime()
    decided_at = UTCDateTime(allow_none=True)
    contract_id = ma.fields.String(allow_none=True)


class MessageCreateSchema(Schema):
    body = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=10_000))
    studio_id = ma.fields.String(
        metadata={
            "description": "Developers and operators: the studio thread; none for the marketplace."
        }
    )


class MessageSchema(Schema):
    id = ma.fields.String()
    request_id = ma.fields.String()
    studio_id = ma.fields.String(allow_none=True)
    author_organization_id = ma.fields.String(allow_none=True)
    author_kind = ma.fields.String()
    body = ma.fields.String()
    created_at = UTCDateTime()


class RequestQueryArgsSchema(PageArgsSchema):
    status = ma.fields.String(validate=ma.validate.OneOf(("open", "closed")))


LicenseRequestPageSchema = page_of(LicenseRequestSchema, "LicenseRequestPageSchema")
OfferPageSchema = page_of(OfferSchema, "OfferPageSchema")
MessagePageSchema = page_of(MessageSchema, "MessagePageSchema")
