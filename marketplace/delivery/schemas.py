"""HTTP shapes of manifests, download grants, usage and the delivery log."""

from __future__ import annotations

import marshmallow as ma

from marketplace.core.api import PageArgsSchema, Schema, UTCDateTime, page_of
from marketplace.core.db import BIGINT_MAX


class ManifestAssetSchema(Schema):
    asset_id = ma.fields.String()
    title_id = ma.fields.String()
    kind = ma.fields.String()
    byte_size = ma.fields.Integer()
    sha256 = ma.fields.String(metadata={"description": "Hex SHA-256 of the asset's bytes."})


class ManifestSchema(Schema):
    contract_id = ma.fields.String()
    assets = ma.fields.List(
        ma.fields.Nested(ManifestAssetSchema),
        metadata={
            "description": "Ready assets of the licensed titles and of their descendants "
            "(a licensed series covers its seasons and episodes), sorted by asset_id."
        },
    )
    manifest_sha256 = ma.fields.String(
        metadata={
            "description": "Hex SHA-256 of the signed bytes: the canonical JSON of "
            '`{"contract_id", "assets"}` (keys sorted at every level, separators `,` and `:`, '
            "no insignificant whitespace, UTF-8 with non-ASCII characters unescaped)."
        }
    )
    signature = ma.fields.String(
        metadata={
            "description": "Ed25519 signature of the signed bytes, base64url WITHOUT padding "
            "(RFC 4648 §5). Verify it with the key of `GET /manifest-signing-key`."
        }
    )
    version = ma.fields.Integer(
        metadata={
            "description": "The manifest version: 1 is frozen when the contract is signed "
            "(the assets ready then), and does not change as the catalog does."
        }
    )
    frozen_at = UTCDateTime(metadata={"description": "When this version was frozen."})


class SigningKeySchema(Schema):
    algorithm = ma.fields.String(metadata={"enum": ["Ed25519"]})
    public_key = ma.fields.String(
        metadata={"description": "The raw 32-byte Ed25519 public key, base64url without padding."}
    )


class ByteRangeSchema(Schema):
    first_byte = ma.fields.Integer(
        required=True,
        strict=True,
        validate=ma.validate.Range(min=0, max=BIGINT_MAX),
        metadata={"example": 0},
    )
    last_byte = ma.fields.Integer(
        strict=True,
        validate=ma.validate.Range(min=0, max=BIGINT_MAX),
        metadata={"description": "Inclusive; the asset's last byte if absent."},
    )


MAX_BATCH = 1000


class DownloadItemSchema(Schema):
    asset_id = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=40))
    range = ma.fields.Nested(ByteRangeSchema)


class DownloadCreateSchema(Schema):
    """Either one asset (`asset_id`, `range`) or a batch (`assets`), not both."""

    asset_id = ma.fields.String(validate=ma.validate.Length(min=1, max=40))
    assets = ma.fields.List(
        ma.fields.Nested(DownloadItemSchema),
        validate=ma.validate.Length(min=1, max=MAX_BATCH),
        metadata={
            "description": f"A batch of up to {MAX_BATCH} grants, counted all or none: "
            "either every one fits the quota and is counted, or none is (429). The same "
            "asset may appear more than once (its parts)."
        },
    )
    range = ma.fields.Nested(
        ByteRangeSchema,
        metadata={
            "description": "A part of the asset only, first to last byte inclusive (as HTTP "
            "ranges): to resume a broken download, or to fetch a large asset in parallel "
            "pieces. The grant counts one download and this range's bytes (not the asset's), "
            "and its URL serves only this range, to a GET sending exactly the returned "
            "`headers` (`Range`). Absent: the whole asset."
        },
    )

    @ma.validates_schema
    def one_form(self, data: dict[str, object], **_: object) -> None:
        if ("assets" in data) == ("asset_id" in data):
            raise ma.ValidationError(
                "Give either asset_id (one grant) or assets (a batch).", "_schema"
            )
        if "assets" in data and "range" in data:
            raise ma.ValidationError("A batch gives each item its own range.", "range")


class DownloadGrantSchema(Schema):
    id = ma.fields.String()
    url = ma.fields.String(
        metadata={
            "description": "Presigned S3 GET URL, shown once and never stored; it serves the "
            "asset as an attachment named `<asset_id><extension>`."
        }
    )
    expires_at = UTCDateTime(
        metadata={
            "description": "When the URL stops working (DOWNLOAD_URL_TTL_SECONDS after the "
            "grant). A URL already issued is not recalled by a termination: it lives at most "
            "this long."
        }
    )
    byte_size = ma.fields.Integer(
        metadata={"description": "The bytes granted and counted: the asset's, or the range's."}
    )
    range = ma.fields.Nested(ByteRangeSchema, allow_none=True)
    headers = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.String(),
        metadata={
            "description": "Headers the GET must send, signed into the URL: `Range` for a "
            "ranged grant (another range, or none, is refused with 403); empty otherwise."
        },
    )


class BatchItemSchema(DownloadGrantSchema):
    asset_id = ma.fields.String()
    counted_bytes = ma.fields.Integer(
        metadata={
            "description": "The bytes this grant added to the quota: a part of an asset "
            "counts only the bytes no earlier grant of that asset covered."
        }
    )
    filename = ma.fields.String(metadata={"description": "`<asset_id><extension>`."})


class DownloadCreatedSchema(BatchItemSchema):
    """The single form's grant, or a batch's `items` with the manifest they follow."""

    grants = ma.fields.List(ma.fields.Nested(BatchItemSchema), data_key="items")
    manifest_version = ma.fields.Integer()
    manifest_sha256 = ma.fields.String()
    downloads_used = ma.fields.Integer()
    bytes_used = ma.fields.Integer()


class UsageSchema(Schema):
    downloads_used = ma.fields.Integer()
    downloads_quota = ma.fields.Integer()
    bytes_used = ma.fields.Integer()
    bytes_quota = ma.fields.Integer()


class DownloadSchema(Schema):
    id = ma.fields.String()
    contract_id = ma.fields.String()
    asset_id = ma.fields.String()
    title_id = ma.fields.String()
    organization_id = ma.fields.String(metadata={"description": "The licensee's organization."})
    user_id = ma.fields.String(metadata={"description": "The user the URL was issued to."})
    byte_size = ma.fields.Integer(metadata={"description": "The bytes granted."})
    counted_bytes = ma.fields.Integer(
        metadata={"description": "The bytes counted: a part counts only bytes not granted before."}
    )
    counted_download = ma.fields.Boolean(
        metadata={"description": "Whether it counted a download (an asset's parts count one)."}
    )
    manifest_version = ma.fields.Integer(allow_none=True)
    sha256 = ma.fields.String(metadata={"description": "Of the whole asset, as licensed."})
    range = ma.fields.Nested(
        ByteRangeSchema,
        allow_none=True,
        attribute="byte_range",
        metadata={"description": "Null: the whole asset."},
    )
    created_at = UTCDateTime()
    expires_at = UTCDateTime()


DownloadPageSchema = page_of(DownloadSchema, "DownloadPageSchema")


class DownloadQueryArgsSchema(PageArgsSchema):
    asset_id = ma.fields.String(validate=ma.validate.Length(min=1, max=40))
    title_id = ma.fields.String(validate=ma.validate.Length(min=1, max=40))
    contract_id = ma.fields.String(validate=ma.validate.Length(min=1, max=40))
    developer_id = ma.fields.String(
        validate=ma.validate.Length(min=1, max=40),
        metadata={"description": "The licensee's organization (useful to studios, operators)."},
    )
