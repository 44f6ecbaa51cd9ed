"""HTTP shapes of contracts, signatures, attestations and price guidance."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from catalog.codes import currency_doc, normalize_currency, normalize_territory, territory_doc
from contracts.models import ATTESTATION_KINDS, CONTRACT_STATUSES
from marketplace.core.api import PageArgsSchema, Schema, UTCDateTime, page_of


class SignatureSchema(Schema):
    organization_id = ma.fields.String(allow_none=True)
    user_id = ma.fields.String(allow_none=True)
    role = ma.fields.String()
    signed_at = UTCDateTime()


class ContractSchema(Schema):
    id = ma.fields.String()
    offer_id = ma.fields.String()
    request_id = ma.fields.String()
    studio_id = ma.fields.String()
    developer_id = ma.fields.String(
        allow_none=True,
        metadata={"description": "Null for a studio until an anonymous deal is signed."},
    )
    terms = ma.fields.Dict()
    title_ids = ma.fields.List(ma.fields.String())
    document_sha256 = ma.fields.String()
    status = ma.fields.String(
        metadata={"enum": ["pending_signatures", "signed", "active", "expired", "terminated"]}
    )
    signatures = ma.fields.List(ma.fields.Nested(SignatureSchema))
    payment_status = ma.fields.String()
    starts_on = ma.fields.Date()
    ends_on = ma.fields.Date()
    exclusive = ma.fields.Boolean()
    amount_cents = ma.fields.Integer()
    currency = ma.fields.String()
    created_at = UTCDateTime()
    signed_at = UTCDateTime(allow_none=True)
    terminated_at = UTCDateTime(allow_none=True)
    termination_reason = ma.fields.String(allow_none=True)


class ContractQueryArgsSchema(PageArgsSchema):
    status = ma.fields.String(validate=ma.validate.OneOf((*CONTRACT_STATUSES, "expired")))
    attestation_overdue = ma.fields.Boolean()


class SignSchema(Schema):
    document_sha256 = ma.fields.String(
        required=True, validate=ma.validate.Regexp(r"^[0-9a-f]{64}$", error="Not a SHA-256 hex.")
    )


class TerminateSchema(Schema):
    reason = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=2000))


class AttestationCreateSchema(Schema):
    kind = ma.fields.String(required=True, validate=ma.validate.OneOf(ATTESTATION_KINDS))
    model_name = ma.fields.String(validate=ma.validate.Length(max=200))
    model_version = ma.fields.String(validate=ma.validate.Length(max=100))
    started_at = ma.fields.AwareDateTime(default_timezone=None)
    finished_at = ma.fields.AwareDateTime(default_timezone=None)
    asset_ids = ma.fields.List(
        ma.fields.String(validate=ma.validate.Length(max=40)),
        validate=ma.validate.Length(max=10_000),
    )
    statement = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=20_000))
    manifest_sha256 = ma.fields.String(
        validate=ma.validate.Regexp(r"^[0-9a-f]{64}$"),
        metadata={
            "description": "The manifest version the attestation is about (its hex SHA-256, "
            "as `GET /contracts/{id}/manifest` gives it); the current version if absent."
        },
    )


class AttestationSchema(Schema):
    id = ma.fields.String()
    contract_id = ma.fields.String()
    kind = ma.fields.String()
    model_name = ma.fields.String(allow_none=True)
    model_version = ma.fields.String(allow_none=True)
    started_at = UTCDateTime(allow_none=True)
    finished_at = UTCDateTime(allow_none=True)
    asset_ids = ma.fields.List(ma.fields.String())
    statement = ma.fields.String()
    manifest_sha256 = ma.fields.String(allow_none=True)
    created_by = ma.fields.String()
    created_at = UTCDateTime()


class BenchmarkArgsSchema(Schema):
    currency = ma.fields.String(
        load_default="usd", validate=ma.validate.Length(equal=3), metadata=currency_doc()
    )
    genre = ma.fields.String(validate=ma.validate.Length(max=50))
    permitted_use = ma.fields.String(
        validate=ma.validate.OneOf(("train", "fine_tune", "evaluate", "generate_reference"))
    )
    min_height = ma.fields.Integer(validate=ma.validate.Range(min=1, max=100_000))
    territory = ma.fields.String(validate=ma.validate.Length(equal=2), metadata=territory_doc())

    @ma.post_load
    def _normalize(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        try:
            if data.get("territory"):
                data["territory"] = normalize_territory(data["territory"])
            data["currency"] = normalize_currency(data["currency"])
        except ValueError as exc:
            raise ma.ValidationError(str(exc)) from None
        return data


class QuartilesSchema(Schema):
    p25 = ma.fields.Integer()
    median = ma.fields.Integer()
    p75 = ma.fields.Integer()


class BenchmarkSchema(Schema):
    currency = ma.fields.String()
    insufficient_data = ma.fields.Boolean()
    sample_contracts = ma.fields.Integer()
    sample_studios = ma.fields.Integer()
    per_hour_cents = ma.fields.Nested(QuartilesSchema)


ContractPageSchema = page_of(ContractSchema, "ContractPageSchema")
AttestationPageSchema = page_of(AttestationSchema, "AttestationPageSchema")
