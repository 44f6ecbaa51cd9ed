"""HTTP shapes of organizations, users and API keys."""

from __future__ import annotations

import marshmallow as ma

from marketplace.accounts.models import ORG_KINDS, ROLES
from marketplace.core.api import PageArgsSchema, Schema, UTCDateTime, page_of


class OrganizationSchema(Schema):
    id = ma.fields.String(dump_only=True)
    name = ma.fields.String()
    kind = ma.fields.String()
    created_at = UTCDateTime(dump_only=True)


class OrganizationCreateSchema(Schema):
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200))
    kind = ma.fields.String(required=True, validate=ma.validate.OneOf(ORG_KINDS))


class UserSchema(Schema):
    id = ma.fields.String()
    email = ma.fields.String()
    role = ma.fields.String()
    organization_id = ma.fields.String()
    created_at = UTCDateTime()


class UserCreateSchema(Schema):
    email = ma.fields.Email(required=True, validate=ma.validate.Length(max=320))
    role = ma.fields.String(load_default="member", validate=ma.validate.OneOf(ROLES))


class UserWithKeySchema(Schema):
    user = ma.fields.Nested(UserSchema)
    api_key = ma.fields.String(metadata={"description": "Shown once; store it now."})


class MeSchema(Schema):
    user = ma.fields.Nested(UserSchema)
    organization = ma.fields.Nested(OrganizationSchema)


class ApiKeySchema(Schema):
    id = ma.fields.String()
    user_id = ma.fields.String()
    prefix = ma.fields.String()
    created_at = UTCDateTime()
    last_used_at = UTCDateTime(allow_none=True)
    revoked_at = UTCDateTime(allow_none=True)


class ApiKeyCreatedSchema(Schema):
    id = ma.fields.String()
    api_key = ma.fields.String(metadata={"description": "Shown once; store it now."})
    created_at = UTCDateTime()


class OrganizationQueryArgsSchema(PageArgsSchema):
    kind = ma.fields.String(validate=ma.validate.OneOf(ORG_KINDS))


OrganizationPageSchema = page_of(OrganizationSchema, "OrganizationPageSchema")
ApiKeyPageSchema = page_of(ApiKeySchema, "ApiKeyPageSchema")
