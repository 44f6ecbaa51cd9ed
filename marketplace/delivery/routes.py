"""Delivery: the signed manifest and its key, metered downloads, usage and the delivery log."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from marketplace.accounts.principal import Principal
from marketplace.core.api import Blueprint, PageArgsSchema, ProblemSchema
from marketplace.core.pagination import SortKey, paginate
from marketplace.core.web import current_actor, db, read_only, state
from marketplace.delivery import service
from marketplace.delivery.manifest import ALGORITHM, public_key_b64url
from marketplace.delivery.models import Download
from marketplace.delivery.schemas import (
    DownloadCreatedSchema,
    DownloadCreateSchema,
    DownloadPageSchema,
    DownloadQueryArgsSchema,
    ManifestSchema,
    SigningKeySchema,
    UsageSchema,
)

blp = Blueprint(
    "delivery",
    __name__,
    url_prefix="/api/v1",
    description="Delivery: signed manifests and metered downloads. A download is granted only "
    "to the licensee (the developer party; not the studio, not operators) of an active contract, "
    "and counts one download and the asset's bytes (or, for a grant of a byte range, the "
    "range's) against the quota, atomically. Terminating "
    "a contract stops new grants at once; URLs already issued expire within "
    "DOWNLOAD_URL_TTL_SECONDS. The manifest is readable by both parties and operators from "
    "signature on, and stays readable after expiry or termination as the record of what was "
    "licensed. The signing key derives from SECRET_KEY: rotating it changes the published key.",
)


def refusal(status: int, description: str) -> Any:
    """Document a problem+json refusal in the OpenAPI document."""
    return blp.alt_response(
        status,
        schema=ProblemSchema,
        content_type="application/problem+json",
        description=description,
    )


def viewer() -> Principal:
    actor: Principal = current_actor()
    return actor


@blp.route("/manifest-signing-key")
class ManifestSigningKey(MethodView):
    @blp.doc(security=[])
    @blp.response(200, SigningKeySchema)
    @read_only
    def get(self) -> Any:
        """The public key that verifies manifest signatures (no authentication)."""
        return {
            "algorithm": ALGORITHM,
            "public_key": public_key_b64url(state().settings.secret_key),
        }


@blp.route("/contracts/<contract_id>/manifest")
class ContractManifest(MethodView):
    @blp.response(200, ManifestSchema)
    @refusal(409, "`invalid_state`: the contract is not signed yet.")
    @read_only
    def get(self, contract_id: str) -> Any:
        """The signed list of licensed assets, once the contract is signed (409 before)."""
        return service.contract_manifest(
            db(), viewer(), contract_id, secret_key=state().settings.secret_key
        )


@blp.route("/contracts/<contract_id>/downloads")
class ContractDownloads(MethodView):
    @blp.arguments(DownloadCreateSchema())
    @blp.response(201, DownloadCreatedSchema)
    @refusal(403, "`forbidden`: a party or operator that is not the licensee.")
    @refusal(404, "`not_found`: no such contract for you, or the asset is not in its manifest.")
    @refusal(
        409,
        "`invalid_state`: the contract is not active today (unsigned, unpaid, not started, "
        "expired or terminated).",
    )
    @refusal(
        422,
        "`validation_error`: a range outside the asset, last before first, both or neither "
        "of `asset_id` and `assets`, or more than 1,000 items.",
    )
    @refusal(429, "`quota_exceeded`: one more download or its bytes would pass the quota.")
    @refusal(
        503,
        "`storage_unavailable`, with `Retry-After`: the object store is down (the check "
        "`/readyz` reports, made every few seconds); nothing was counted, retry.",
    )
    def post(self, body: dict[str, Any], contract_id: str) -> Any:
        """Grant presigned downloads of manifest assets: one (`asset_id`) or a batch
        (`assets`, up to 1,000, counted all or none) (licensee; 429 past the quota)."""
        batch = "assets" in body
        items = body["assets"] if batch else [body]
        granted = service.grant_downloads(
            db(),
            viewer(),
            contract_id,
            [
                service.GrantRequest(
                    item["asset_id"],
                    (item.get("range") or {}).get("first_byte"),
                    (item.get("range") or {}).get("last_byte"),
                )
                for item in items
            ],
            storage=state().storage,
            storage_health=state().storage_health,
            ttl_seconds=state().settings.download_url_ttl_seconds,
            audit_each=not batch,
        )
        shown = [_grant(g) for g in granted.grants]
        if not batch:
            return shown[0] | {
                "manifest_version": granted.manifest_version,
                "manifest_sha256": granted.manifest_sha256,
            }
        return {
            "grants": shown,  # shown as `items` (a dict has an items method)
            "manifest_version": granted.manifest_version,
            "manifest_sha256": granted.manifest_sha256,
            "downloads_used": granted.downloads_used,
            "bytes_used": granted.bytes_used,
        }

    @blp.arguments(PageArgsSchema(), location="query")
    @blp.response(200, DownloadPageSchema)
    @read_only
    def get(self, args: dict[str, Any], contract_id: str) -> Any:
        """The delivery log: which user got which asset when (parties and operators)."""
        return paginate(
            db(),
            service.downloads_stmt(db(), viewer(), contract_id),
            keys=[SortKey(Download.id)],
            limit=args["limit"],
            cursor=args["cursor"],
            codec=state().cursors,
            scope="downloads",
        )


def _grant(grant: service.DownloadGrant) -> dict[str, Any]:
    d = grant.download
    return {
        "asset_id": d.asset_id,
        "id": d.id,
        "url": grant.url,
        "expires_at": d.expires_at,
        "byte_size": d.byte_size,
        "counted_bytes": d.counted_bytes,
        "range": d.byte_range,
        "headers": grant.headers,
        "filename": grant.filename,
    }


@blp.route("/downloads")
class Downloads(MethodView):
    @blp.arguments(DownloadQueryArgsSchema(), location="query")
    @blp.response(200, DownloadPageSchema)
    @read_only
    def get(self, args: dict[str, Any]) -> Any:
        """The delivery log across contracts, oldest first: a studio's track and trace of who
        got which of its assets (filter by asset, title, contract or licensee); a developer's
        own downloads; operators all."""
        stmt = service.visible_downloads(viewer())
        for name, column in (
            ("asset_id", Download.asset_id),
            ("title_id", Download.title_id),
            ("contract_id", Download.contract_id),
            ("developer_id", Download.organization_id),
        ):
            if args.get(name):
                stmt = stmt.where(column == args[name])
        return paginate(
            db(),
            stmt,
            keys=[SortKey(Download.id)],
            limit=args["limit"],
            cursor=args["cursor"],
            codec=state().cursors,
            scope="all-downloads",
        )


@blp.route("/contracts/<contract_id>/usage")
class ContractUsage(MethodView):
    @blp.response(200, UsageSchema)
    @read_only
    def get(self, contract_id: str) -> Any:
        """Downloads and bytes used against the contract's quota (parties and operators)."""
        return service.contract_usage(db(), viewer(), contract_id)
