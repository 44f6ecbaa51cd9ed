"""HTTP shapes of audit events, batch heads and the signing key."""

from __future__ import annotations

import marshmallow as ma

from marketplace.core.api import PageArgsSchema, Schema, UTCDateTime, page_of

_UNSEALED = "Null until the event is sealed into a signed batch (within seconds)."


class AuditEventSchema(Schema):
    id = ma.fields.String()
    seq = ma.fields.Integer(allow_none=True, metadata={"description": _UNSEALED})
    sealed = ma.fields.Boolean()
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
    prev_hash = ma.fields.String(allow_none=True, metadata={"description": _UNSEALED})
    hash = ma.fields.String(allow_none=True, metadata={"description": _UNSEALED})


class AuditHeadSchema(Schema):
    batch = ma.fields.Integer()
    first_seq = ma.fields.Integer()
    tree_size = ma.fields.Integer(
        metadata={"description": "Events sealed in the whole marketplace up to this batch."}
    )
    merkle_root = ma.fields.String()
    prev_head = ma.fields.String()
    sealed_at = UTCDateTime()
    key_id = ma.fields.String()
    head_hash = ma.fields.String()
    signature = ma.fields.String(metadata={"description": "Ed25519 over the head, hex."})


class AuditProofSchema(Schema):
    batch = ma.fields.Integer()
    leaf_index = ma.fields.Integer()
    batch_size = ma.fields.Integer()
    path = ma.fields.List(ma.fields.String())
    head = ma.fields.Nested(AuditHeadSchema)


class AuditEventWithProofSchema(AuditEventSchema):
    proof = ma.fields.Nested(
        AuditProofSchema, allow_none=True, metadata={"description": "Null while unsealed."}
    )


class AuditPublicKeySchema(Schema):
    algorithm = ma.fields.String()
    key_id = ma.fields.String()
    public_key = ma.fields.String(metadata={"description": "The raw 32-byte key, base64."})
    pem = ma.fields.String()


class AuditEventQueryArgsSchema(PageArgsSchema):
    object_id = ma.fields.String(validate=ma.validate.Length(max=40))
    action = ma.fields.String(validate=ma.validate.Length(max=100))


AuditEventPageSchema = page_of(AuditEventSchema, "AuditEventPageSchema")
AuditHeadPageSchema = page_of(AuditHeadSchema, "AuditHeadPageSchema")
