"""HTTP shapes of manifests, download grants, usage and the delivery log."""

from __future__ import annotations

import marshmallow as ma

from marketplace.core.api import Schema, UTCDateTime, page_of


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


class SigningKeySchema(Schema):
    algorithm = ma.fields.String(metadata={"enum": ["Ed25519"]})
    public_key = ma.fields.String(
        metadata={"description": "The raw 32-byte Ed25519 public key, base64url without padding."}
    )


class DownloadCreateSchema(Schema):
    asset_id = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=40))


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
    byte_size = ma.fields.Integer()


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
    byte_size = ma.fields.Integer()
    sha256 = ma.fields.String()
    created_at = UTCDateTime()
    expires_at = UTCDateTime()


DownloadPageSchema = page_of(DownloadSchema, "DownloadPageSchema")
