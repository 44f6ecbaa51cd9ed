"""HTTP shapes of titles, assets, rights grants, talent, credits, consents and clearance."""

from __future__ import annotations

import marshmallow as ma

from catalog.clearance import REASON_CODES
from catalog.codes import language_doc, territory_doc
from catalog.coverage import ALL_USES, ATTRIBUTES, ROLES
from catalog.models import ASSET_KINDS, ASSET_STATUSES, TITLE_KINDS, VISIBILITIES
from marketplace.core.api import PageArgsSchema, Schema, UTCDateTime, page_of

_ID = ma.validate.Length(min=1, max=40)
_EXTERNAL_ID = ma.validate.Length(min=1, max=200)
# As the importer allows (catalog.imports.parse): no frame is 100,000 pixels wide or tall.
MAX_FRAME_PIXELS = 100_000


def _codes(description: str, *, max_items: int = 300) -> ma.fields.List:
    return ma.fields.List(
        ma.fields.String(validate=ma.validate.Length(min=1, max=35), metadata=territory_doc()),
        required=True,
        validate=ma.validate.Length(min=1, max=max_items),
        metadata={"description": description},
    )


def _uses(field: str = "permitted_uses") -> ma.fields.List:
    return ma.fields.List(
        ma.fields.String(validate=ma.validate.OneOf(ALL_USES)),
        required=True,
        validate=ma.validate.Length(min=1),
        metadata={"description": f"Subset of {', '.join(ALL_USES)}."},
    )


# ---------------------------------------------------------------------------------- titles


class TitleSchema(Schema):
    id = ma.fields.String()
    studio_id = ma.fields.String(allow_none=True, metadata={"description": "Null if anonymized."})
    external_id = ma.fields.String(allow_none=True)
    eidr_id = ma.fields.String(allow_none=True)
    kind = ma.fields.String(metadata={"enum": list(TITLE_KINDS)})
    parent_id = ma.fields.String(
        allow_none=True,
        metadata={"description": "Null when the parent is hidden from the caller."},
    )
    name = ma.fields.String(allow_none=True)
    original_language = ma.fields.String(allow_none=True)
    genres = ma.fields.List(ma.fields.String())
    release_year = ma.fields.Integer(allow_none=True)
    synopsis = ma.fields.String(allow_none=True)
    visibility = ma.fields.String(metadata={"enum": list(VISIBILITIES)})
    content_hours = ma.fields.Float(
        metadata={"description": "Hours of ready video of the title and all its descendants."}
    )
    max_height = ma.fields.Integer(allow_none=True)
    created_at = UTCDateTime()
    anonymized = ma.fields.Boolean(
        metadata={"description": "True when identifying fields are hidden from the caller."}
    )


class _TitleFieldsSchema(Schema):
    external_id = ma.fields.String(validate=_EXTERNAL_ID)
    eidr_id = ma.fields.String(
        allow_none=True,
        validate=ma.validate.Length(max=40),
        metadata={"description": "EIDR content ID, 10.5240/XXXX-XXXX-XXXX-XXXX-XXXX-C."},
    )
    name = ma.fields.String(validate=ma.validate.Length(min=1, max=500))
    original_language = ma.fields.String(
        allow_none=True, validate=ma.validate.Length(max=35), metadata=language_doc()
    )
    genres = ma.fields.List(
        ma.fields.String(validate=ma.validate.Length(min=1, max=50)),
        validate=ma.validate.Length(max=20),
    )
    release_year = ma.fields.Integer(
        allow_none=True, strict=True, validate=ma.validate.Range(min=1870, max=2100)
    )
    synopsis = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=20000))
    visibility = ma.fields.String(validate=ma.validate.OneOf(VISIBILITIES))


class TitleCreateSchema(_TitleFieldsSchema):
    studio_id = ma.fields.String(
        validate=_ID,
        metadata={"description": "Operators: the studio acted for. Studios: omit (implied)."},
    )
    kind = ma.fields.String(required=True, validate=ma.validate.OneOf(TITLE_KINDS))
    parent_id = ma.fields.String(
        allow_none=True,
        validate=_ID,
        metadata={"description": "Seasons: a series. Episodes: a season or series."},
    )

    external_id = ma.fields.String(required=True, validate=_EXTERNAL_ID)
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=500))
    genres = ma.fields.List(
        ma.fields.String(validate=ma.validate.Length(min=1, max=50)),
        load_default=list,
        validate=ma.validate.Length(max=20),
    )
    visibility = ma.fields.String(load_default="private", validate=ma.validate.OneOf(VISIBILITIES))


class TitleUpdateSchema(_TitleFieldsSchema):
    """Any subset of the descriptive fields; `kind` and `parent_id` are fixed at creation."""


# ---------------------------------------------------------------------------------- assets


class MultipartSchema(Schema):
    part_size = ma.fields.Integer(metadata={"description": "Bytes of every part but the last."})
    part_count = ma.fields.Integer()


class UploadSchema(Schema):
    url = ma.fields.String(
        allow_none=True,
        metadata={
            "description": "Presigned URL accepting one PUT; null for an asset past 5 GiB, "
            "which goes up in parts (`multipart`)."
        },
    )
    method = ma.fields.String()
    expires_at = UTCDateTime(allow_none=True)
    headers = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.String(),
        metadata={
            "description": "Headers the PUT must carry (besides Content-Length = byte_size)."
        },
    )
    multipart = ma.fields.Nested(
        MultipartSchema,
        allow_none=True,
        metadata={
            "description": "For an asset past 5 GiB: ask `POST /assets/{id}/upload-parts` for "
            "the parts' URLs (one SHA-256 each), PUT each, then complete with their ETags."
        },
    )


_HEX_SHA256 = ma.validate.Regexp(r"^[0-9a-fA-F]{64}$", error="Must be 64 hexadecimal digits.")


class PartToSignSchema(Schema):
    part_number = ma.fields.Integer(required=True, strict=True)
    sha256 = ma.fields.String(
        required=True, validate=_HEX_SHA256, metadata={"description": "Of the part's bytes."}
    )


class UploadPartsRequestSchema(Schema):
    parts = ma.fields.List(
        ma.fields.Nested(PartToSignSchema),
        required=True,
        validate=ma.validate.Length(min=1, max=1000),
        metadata={"description": "Parts to sign URLs for, numbered 1 to `multipart.part_count`."},
    )


class PartUploadSchema(Schema):
    part_number = ma.fields.Integer()
    byte_size = ma.fields.Integer(metadata={"description": "The part's exact length."})
    url = ma.fields.String(
        metadata={
            "description": "Presigned URL accepting one PUT of the part; the answer's ETag "
            "header is what completing needs."
        }
    )
    headers = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.String(),
        metadata={"description": "Headers the PUT must carry (its checksum)."},
    )


class UploadPartsSchema(Schema):
    parts = ma.fields.List(ma.fields.Nested(PartUploadSchema))
    expires_at = UTCDateTime()


class CompletedPartSchema(Schema):
    part_number = ma.fields.Integer(required=True, strict=True)
    etag = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200))
    sha256 = ma.fields.String(required=True, validate=_HEX_SHA256)


class AssetCompleteSchema(Schema):
    parts = ma.fields.List(
        ma.fields.Nested(CompletedPartSchema),
        validate=ma.validate.Length(max=10_000),
        metadata={"description": "For an asset uploaded in parts: every part, in order."},
    )


class AssetSchema(Schema):
    id = ma.fields.String()
    title_id = ma.fields.String()
    external_id = ma.fields.String(allow_none=True)
    kind = ma.fields.String(metadata={"enum": list(ASSET_KINDS)})
    storage_key = ma.fields.String(
        allow_none=True, metadata={"description": "Shown to the owning studio and operators."}
    )
    byte_size = ma.fields.Integer()
    sha256 = ma.fields.String()
    duration_seconds = ma.fields.Float(allow_none=True)
    width = ma.fields.Integer(allow_none=True)
    height = ma.fields.Integer(allow_none=True)
    fps = ma.fields.Float(allow_none=True)
    codec = ma.fields.String(allow_none=True)
    language = ma.fields.String(allow_none=True)
    status = ma.fields.String(metadata={"enum": list(ASSET_STATUSES)})
    created_at = UTCDateTime()
    ready_at = UTCDateTime(allow_none=True)
    sha256_verified_at = UTCDateTime(
        allow_none=True,
        metadata={
            "description": "When the stored bytes were last found to have `sha256`: at "
            "completion for an upload in one PUT; for an upload in parts (whose whole-object "
            "SHA-256 the store does not keep) once the object has been read back and hashed. "
            "Null until then."
        },
    )
    upload = ma.fields.Nested(
        UploadSchema, allow_none=True, metadata={"description": "While pending, for the owner."}
    )


class AssetCreateSchema(Schema):
    kind = ma.fields.String(required=True, validate=ma.validate.OneOf(ASSET_KINDS))
    byte_size = ma.fields.Integer(required=True, strict=True)
    sha256 = ma.fields.String(
        required=True,
        validate=ma.validate.Regexp(r"^[0-9a-fA-F]{64}$", error="Must be 64 hexadecimal digits."),
    )
    filename = ma.fields.String(
        validate=ma.validate.Length(max=255),
        metadata={"description": "Original file name; sanitized into the storage key."},
    )
    external_id = ma.fields.String(allow_none=True, validate=_EXTERNAL_ID)
    duration_seconds = ma.fields.Float(allow_none=True, allow_nan=False)
    width = ma.fields.Integer(
        allow_none=True, strict=True, validate=ma.validate.Range(max=MAX_FRAME_PIXELS)
    )
    height = ma.fields.Integer(
        allow_none=True, strict=True, validate=ma.validate.Range(max=MAX_FRAME_PIXELS)
    )
    fps = ma.fields.Float(allow_none=True, allow_nan=False)
    codec = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=50))
    language = ma.fields.String(
        allow_none=True, validate=ma.validate.Length(max=35), metadata=language_doc()
    )


# ---------------------------------------------------------------------------------- rights


class RightsGrantSchema(Schema):
    id = ma.fields.String()
    title_id = ma.fields.String()
    external_id = ma.fields.String(allow_none=True)
    territories = ma.fields.List(ma.fields.String())
    start = ma.fields.Date()
    end = ma.fields.Date()
    permitted_uses = ma.fields.List(ma.fields.String())
    exclusive_available = ma.fields.Boolean()
    created_at = UTCDateTime()


class RightsGrantCreateSchema(Schema):
    territories = _codes("ISO 3166-1 alpha-2 codes, or WW for worldwide.")
    start = ma.fields.Date(required=True)
    end = ma.fields.Date(required=True, metadata={"description": "Inclusive."})
    permitted_uses = _uses()
    exclusive_available = ma.fields.Boolean(load_default=False)
    external_id = ma.fields.String(allow_none=True, validate=_EXTERNAL_ID)


# ---------------------------------------------------------------------------------- talent


class TalentSchema(Schema):
    id = ma.fields.String()
    studio_id = ma.fields.String()
    external_id = ma.fields.String(allow_none=True)
    name = ma.fields.String()
    external_ids = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String())
    created_at = UTCDateTime()


class TalentCreateSchema(Schema):
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=300))
    external_ids = ma.fields.Dict(
        keys=ma.fields.String(validate=ma.validate.Length(min=1, max=50)),
        values=ma.fields.String(validate=ma.validate.Length(min=1, max=200)),
        load_default=dict,
        validate=ma.validate.Length(max=20),
        metadata={"description": 'Identifiers elsewhere, e.g. {"imdb": "nm0000001"}.'},
    )
    external_id = ma.fields.String(allow_none=True, validate=_EXTERNAL_ID)
    studio_id = ma.fields.String(
        validate=_ID, metadata={"description": "Operators: the studio acted for."}
    )


class TalentQueryArgsSchema(PageArgsSchema):
    studio_id = ma.fields.String(
        validate=_ID, metadata={"description": "Operators: one studio's talent."}
    )


class CreditSchema(Schema):
    id = ma.fields.String()
    title_id = ma.fields.String()
    talent_id = ma.fields.String(allow_none=True, metadata={"description": "Null if anonymized."})
    talent_name = ma.fields.String(allow_none=True)
    role = ma.fields.String(metadata={"enum": list(ROLES)})
    created_at = UTCDateTime()


class CreditCreateSchema(Schema):
    talent_id = ma.fields.String(required=True, validate=_ID)
    role = ma.fields.String(required=True, validate=ma.validate.OneOf(ROLES))


class ConsentSchema(Schema):
    id = ma.fields.String()
    talent_id = ma.fields.String()
    external_id = ma.fields.String(allow_none=True)
    attributes = ma.fields.List(ma.fields.String())
    permitted_uses = ma.fields.List(ma.fields.String())
    territories = ma.fields.List(ma.fields.String())
    start = ma.fields.Date()
    end = ma.fields.Date()
    created_at = UTCDateTime()


class ConsentCreateSchema(Schema):
    attributes = ma.fields.List(
        ma.fields.String(validate=ma.validate.OneOf(ATTRIBUTES)),
        required=True,
        validate=ma.validate.Length(min=1),
    )
    permitted_uses = _uses()
    territories = _codes("ISO 3166-1 alpha-2 codes, or WW for worldwide.")
    start = ma.fields.Date(required=True)
    end = ma.fields.Date(required=True, metadata={"description": "Inclusive."})
    external_id = ma.fields.String(allow_none=True, validate=_EXTERNAL_ID)


# ------------------------------------------------------------------------------- clearance


class ClearanceRequestSchema(Schema):
    title_ids = ma.fields.List(
        ma.fields.String(validate=_ID), required=True, validate=ma.validate.Length(min=1, max=500)
    )
    uses = _uses("uses")
    territories = _codes("ISO 3166-1 alpha-2 codes, or WW for worldwide.")
    start = ma.fields.Date(required=True)
    end = ma.fields.Date(required=True, metadata={"description": "Inclusive."})
    exclusive = ma.fields.Boolean(load_default=False)


class ReasonSchema(Schema):
    code = ma.fields.String(metadata={"enum": list(REASON_CODES)})
    detail = ma.fields.String()


class BlockedSchema(Schema):
    title_id = ma.fields.String()
    reasons = ma.fields.List(ma.fields.Nested(ReasonSchema))


class ClearanceResultSchema(Schema):
    cleared = ma.fields.List(ma.fields.String())
    blocked = ma.fields.List(ma.fields.Nested(BlockedSchema))


AssetPageSchema = page_of(AssetSchema, "AssetPageSchema")
RightsGrantPageSchema = page_of(RightsGrantSchema, "RightsGrantPageSchema")
TalentPageSchema = page_of(TalentSchema, "TalentPageSchema")
CreditPageSchema = page_of(CreditSchema, "CreditPageSchema")
ConsentPageSchema = page_of(ConsentSchema, "ConsentPageSchema")
