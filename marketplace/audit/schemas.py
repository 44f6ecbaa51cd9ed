"""HTTP shapes of audit events."""

from __future__ import annotations

import marshmallow as ma

from marketplace.core.api import PageArgsSchema, Schema, UTCDateTime, page_of


class AuditEventSchema(Schema):
    id = ma.fields.String()
    seq = ma.fields.Integer()
    at = UTCDateTime()
    actor_user_id = ma.fields.String(
        allow_none=True,
        metadata={"description": "Shown to operators, and to the actor's own organization."},
    )
    actor_organization_id = ma.fields.String(
        allow_none=True,
        metadata={"description": "Shown to operators, and to the actor's own organization."},
    )
    organization_id = ma.fields.String(allow_none=True)
    action = ma.fields.String()
    object_id = ma.fields.String(allow_none=True)
    data = ma.fields.Dict()
    prev_hash = ma.fields.String()
    hash = ma.fields.String()


class AuditEventQueryArgsSchema(PageArgsSchema):
    object_id = ma.fields.String(validate=ma.validate.Length(max=40))
    action = ma.fields.String(validate=ma.validate.Length(max=100))


AuditEventPageSchema = page_of(AuditEventSchema, "AuditEventPageSchema")
