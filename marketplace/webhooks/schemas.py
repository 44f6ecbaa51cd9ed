"""HTTP shapes of webhook endpoints and their deliveries."""

from __future__ import annotations

import marshmallow as ma

from marketplace.core.api import Schema, UTCDateTime, page_of
from marketplace.webhooks.service import ALL_EVENTS, EVENT_TYPES

_EVENT = ma.fields.String(metadata={"enum": [*EVENT_TYPES, ALL_EVENTS]})


class WebhookEndpointSchema(Schema):
    id = ma.fields.String(dump_only=True)
    url = ma.fields.String()
    event_types = ma.fields.List(_EVENT)
    enabled = ma.fields.Boolean()
    description = ma.fields.String(allow_none=True)
    consecutive_failures = ma.fields.Integer(dump_only=True)
    disabled_reason = ma.fields.String(allow_none=True, dump_only=True)
    previous_secret_expires_at = UTCDateTime(
        allow_none=True,
        dump_only=True,
        metadata={"description": "Until then the secret before the last rotation also signs."},
    )
    created_at = UTCDateTime(dump_only=True)
    updated_at = UTCDateTime(allow_none=True, dump_only=True)


class WebhookEndpointCreateSchema(Schema):
    url = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=2000))
    event_types = ma.fields.List(
        ma.fields.String(validate=ma.validate.Length(max=80)),
        required=True,
        validate=ma.validate.Length(min=1, max=50),
        metadata={"description": f"Events to receive ({', '.join(EVENT_TYPES)}), or `*`."},
    )
    enabled = ma.fields.Boolean(load_default=True)
    description = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=500))


class WebhookEndpointUpdateSchema(Schema):
    url = ma.fields.String(validate=ma.validate.Length(min=1, max=2000))
    event_types = ma.fields.List(
        ma.fields.String(validate=ma.validate.Length(max=80)),
        validate=ma.validate.Length(min=1, max=50),
    )
    enabled = ma.fields.Boolean()
    description = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=500))


class WebhookEndpointWithSecretSchema(WebhookEndpointSchema):
    secret = ma.fields.String(
        metadata={"description": "The signing secret (whsec_…): shown once; store it now."}
    )


class WebhookDeliverySchema(Schema):
    id = ma.fields.String()
    event_id = ma.fields.String(metadata={"description": "The webhook-id header and body id."})
    event_type = ma.fields.String()
    status = ma.fields.String(metadata={"enum": ["pending", "succeeded", "failed", "skipped"]})
    attempts = ma.fields.Integer()
    response_status = ma.fields.Integer(allow_none=True)
    duration_ms = ma.fields.Integer(allow_none=True)
    last_error = ma.fields.String(allow_none=True)
    last_attempt_at = UTCDateTime(allow_none=True)
    delivered_at = UTCDateTime(allow_none=True)
    created_at = UTCDateTime()


WebhookEndpointPageSchema = page_of(WebhookEndpointSchema, "WebhookEndpointPageSchema")
WebhookDeliveryPageSchema = page_of(WebhookDeliverySchema, "WebhookDeliveryPageSchema")
