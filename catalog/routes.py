"""Catalog routes: titles, assets, rights grants, talent, credits, consents, clearance.

`GET /titles` (search) lives in `catalog.search.routes`.
"""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from catalog import assets, clearance, rights, talent, titles
from catalog.access import get_visible_title
from catalog.models import Asset, Consent, Credit, RightsGrant, Talent
from catalog.presenters import (
    present_asset,
    present_credit,
    present_grant,
    present_title,
)
from catalog.rules import CATALOG_RULES
from catalog.schemas import (
    AssetCompleteSchema,
    AssetCreateSchema,
    AssetPageSchema,
    AssetSchema,
    ClearanceRequestSchema,
    ClearanceResultSchema,
    ConsentCreateSchema,
    ConsentPageSchema,
    ConsentSchema,
    CreditCreateSchema,
    CreditPageSchema,
    CreditSchema,
    RightsGrantCreateSchema,
    RightsGrantPageSchema,
    RightsGrantSchema,
    TalentCreateSchema,
    TalentPageSchema,
    TalentQueryArgsSchema,
    TalentSchema,
    TitleCreateSchema,
    TitleSchema,
    TitleUpdateSchema,
    UploadPartsRequestSchema,
    UploadPartsSchema,
)
from marketplace.accounts.principal import Principal
from marketplace.core.api import Blueprint, PageArgsSchema, ProblemSchema
from marketplace.core.errors import PROBLEM_CONTENT_TYPE
from marketplace.core.pagination import Page, SortKey, paginate
from marketplace.core.storage import PartDone
from marketplace.core.web import component, current_actor, db, read_only, state

blp = Blueprint(
    "catalog",
    __name__,
    url_prefix="/api/v1",
    description="Titles, assets, rights grants, talent and consents, clearance",
)


def problem(status: int, description: str) -> Any:
    """Document a refusal (problem+json) of a route in the OpenAPI document."""
    return blp.alt_response(
        status,
        schema=ProblemSchema,
        description=description,
        content_type=PROBLEM_CONTENT_TYPE,
    )


def principal() -> Principal:
    actor: Principal = current_actor()
    return actor


def _page(stmt: Any, column: Any, args: dict[str, Any], scope: str) -> Page[Any]:
    return paginate(
        db(),
        stmt,
        keys=[SortKey(column)],
        limit=args["limit"],
        cursor=args["cursor"],
        codec=state().cursors,
        scope=scope,
    )


def _upload_for(asset: Asset) -> assets.Upload | None:
    if asset.status != "pending":
        return None
    return assets.issue_upload(
        asset, state().storage, ttl_seconds=state().settings.upload_url_ttl_seconds
    )


# ---------------------------------------------------------------------------------- titles


@blp.route("/titles")
class Titles(MethodView):
    @blp.arguments(TitleCreateSchema())
    @blp.response(201, TitleSchema)
    @problem(403, "`forbidden`: a developer, or a studio naming another studio_id.")
    @problem(409, "`conflict`: the studio already has a title with this external_id.")
    def post(self, body: dict[str, Any]) -> Any:
        """Create a title in your catalog (operators name the studio)."""
        viewer = principal()
        return present_title(titles.create_title(db(), viewer, **body), viewer)


@blp.route("/titles/<title_id>")
class TitleById(MethodView):
    @blp.response(200, TitleSchema)
    @read_only
    def get(self, title_id: str) -> Any:
        """Get a title (anonymized ones hide who and what they are)."""
        viewer = principal()
        return present_title(get_visible_title(db(), viewer, title_id), viewer)

    @blp.arguments(TitleUpdateSchema())
    @blp.response(200, TitleSchema)
    def patch(self, body: dict[str, Any], title_id: str) -> Any:
        """Change a title's descriptive fields or visibility."""
        viewer = principal()
        return present_title(titles.update_title(db(), viewer, title_id, body), viewer)

    @blp.response(204)
    @problem(409, "`conflict`: the title has seasons or episodes; delete them first.")
    def delete(self, title_id: str) -> None:
        """Delete a title that has no children, with its assets, rights and credits."""
        titles.delete_title(
            db(), principal(), title_id, guards=component(CATALOG_RULES).deletion_guards
        )


# ---------------------------------------------------------------------------------- assets


@blp.route("/titles/<title_id>/assets")
class TitleAssets(MethodView):
    @blp.arguments(AssetCreateSchema())
    @blp.response(201, AssetSchema)
    def post(self, body: dict[str, Any], title_id: str) -> Any:
        """Register an asset; PUT its bytes to `upload.url` with `upload.headers`, then complete."""
        viewer = principal()
        asset = assets.register_asset(db(), viewer, title_id, **body)
        return present_asset(asset, viewer, upload=_upload_for(asset))

    @blp.arguments(PageArgsSchema(), location="query")
    @blp.response(200, AssetPageSchema)
    @read_only
    def get(self, args: dict[str, Any], title_id: str) -> Any:
        """List a title's assets (pending ones, with a fresh upload URL, for the owner only)."""
        viewer = principal()
        page = _page(assets.title_assets(db(), viewer, title_id), Asset.id, args, "assets")
        items = [
            present_asset(
                a,
                viewer,
                upload=_upload_for(a) if viewer.is_operator or viewer.is_studio else None,
            )
            for a in page.items
        ]
        return {"items": items, "next_cursor": page.next_cursor}


@blp.route("/assets/<asset_id>/upload-parts")
class AssetUploadParts(MethodView):
    @blp.arguments(UploadPartsRequestSchema())
    @blp.response(200, UploadPartsSchema)
    @problem(409, "`invalid_state`: the asset is ready, or goes up in one PUT.")
    @problem(503, "`storage_unavailable`: the object store did not answer; retry.")
    def post(self, body: dict[str, Any], asset_id: str) -> Any:
        """Sign a PUT URL for each of these parts of an asset past 5 GiB (owner, operators).

        Each URL takes exactly the part's length, and bytes of the SHA-256 given for it.
        """
        parts, expires_at = assets.sign_upload_parts(
            db(),
            principal(),
            asset_id,
            [(p["part_number"], p["sha256"].lower()) for p in body["parts"]],
            storage=state().storage,
            ttl_seconds=state().settings.upload_url_ttl_seconds,
        )
        return {"parts": parts, "expires_at": expires_at}


@blp.route("/assets/<asset_id>/complete")
class AssetComplete(MethodView):
    @blp.arguments(AssetCompleteSchema(), required=False)
    @blp.response(200, AssetSchema)
    @problem(409, "`invalid_state`: no object uploaded, or not the declared size or SHA-256.")
    @problem(503, "`storage_unavailable`: the object store did not answer; retry.")
    def post(self, body: dict[str, Any], asset_id: str) -> Any:
        """Check the uploaded object (size, SHA-256) and mark the asset ready.

        An asset uploaded in parts sends every part's ETag and SHA-256; the store assembles them.
        """
        viewer = principal()
        parts = [
            PartDone(p["part_number"], p["etag"], p["sha256"].lower())
            for p in (body or {}).get("parts") or []
        ]
        asset = assets.complete_asset(
            db(), viewer, asset_id, storage=state().storage, parts=parts or None
        )
        return present_asset(asset, viewer)


# ---------------------------------------------------------------------------------- rights


@blp.route("/titles/<title_id>/rights")
class TitleRights(MethodView):
    @blp.arguments(RightsGrantCreateSchema())
    @blp.response(201, RightsGrantSchema)
    def post(self, body: dict[str, Any], title_id: str) -> Any:
        """Record a rights grant on a title (a series' or season's covers its children)."""
        viewer = principal()
        return present_grant(rights.create_grant(db(), viewer, title_id, **body), viewer)

    @blp.arguments(PageArgsSchema(), location="query")
    @blp.response(200, RightsGrantPageSchema)
    @read_only
    def get(self, args: dict[str, Any], title_id: str) -> Any:
        """List the rights grants held on a title itself."""
        viewer = principal()
        page = _page(rights.title_grants(db(), viewer, title_id), RightsGrant.id, args, "rights")
        items = [present_grant(g, viewer) for g in page.items]
        return {"items": items, "next_cursor": page.next_cursor}


@blp.route("/rights/<grant_id>")
class RightsById(MethodView):
    @blp.response(204)
    def delete(self, grant_id: str) -> None:
        """Delete a rights grant."""
        rights.delete_grant(db(), principal(), grant_id)


# ---------------------------------------------------------------------------------- talent


@blp.route("/talent")
class TalentCollection(MethodView):
    @blp.arguments(TalentCreateSchema())
    @blp.response(201, TalentSchema)
    def post(self, body: dict[str, Any]) -> Any:
        """Add talent to your catalog (operators name the studio)."""
        return talent.create_talent(db(), principal(), **body)

    @blp.arguments(TalentQueryArgsSchema(), location="query")
    @blp.response(200, TalentPageSchema)
    @read_only
    def get(self, args: dict[str, Any]) -> Any:
        """List talent: your studio's, or any studio's for operators."""
        stmt = talent.visible_talent(principal())
        if args.get("studio_id"):
            stmt = stmt.where(Talent.studio_id == args["studio_id"])
        return _page(stmt, Talent.id, args, "talent")


@blp.route("/titles/<title_id>/credits")
class TitleCredits(MethodView):
    @blp.arguments(CreditCreateSchema())
    @blp.response(201, CreditSchema)
    def post(self, body: dict[str, Any], title_id: str) -> Any:
        """Credit talent on a title as cast, voice or crew."""
        viewer = principal()
        credit = talent.add_credit(db(), viewer, title_id, **body)
        title = get_visible_title(db(), viewer, title_id)
        return present_credit(credit, title, viewer, talent.talent_names(db(), [credit.talent_id]))

    @blp.arguments(PageArgsSchema(), location="query")
    @blp.response(200, CreditPageSchema)
    @read_only
    def get(self, args: dict[str, Any], title_id: str) -> Any:
        """List a title's credits (without names when the title is anonymized to you)."""
        viewer = principal()
        title, stmt = talent.title_credits(db(), viewer, title_id)
        page = _page(stmt, Credit.id, args, "credits")
        names = talent.talent_names(db(), [c.talent_id for c in page.items])
        items = [present_credit(c, title, viewer, names) for c in page.items]
        return {"items": items, "next_cursor": page.next_cursor}


@blp.route("/talent/<talent_id>/consents")
class TalentConsents(MethodView):
    @blp.arguments(ConsentCreateSchema())
    @blp.response(201, ConsentSchema)
    def post(self, body: dict[str, Any], talent_id: str) -> Any:
        """Record a talent's consent to uses of their name, image, likeness or voice."""
        return talent.add_consent(db(), principal(), talent_id, **body)

    @blp.arguments(PageArgsSchema(), location="query")
    @blp.response(200, ConsentPageSchema)
    @read_only
    def get(self, args: dict[str, Any], talent_id: str) -> Any:
        """List a talent's consents."""
        stmt = talent.talent_consents(db(), principal(), talent_id)
        return _page(stmt, Consent.id, args, "consents")


# ------------------------------------------------------------------------------- clearance


@blp.route("/clearance")
class Clearance(MethodView):
    @blp.arguments(ClearanceRequestSchema())
    @blp.response(200, ClearanceResultSchema)
    @problem(404, "`not_found`: some title_ids are not visible to you; `errors` lists them.")
    def post(self, body: dict[str, Any]) -> Any:
        """Check titles for uses × territories × term: which clear, and why the others do not."""
        return clearance.check_clearance(
            db(), principal(), **body, checks=component(CATALOG_RULES).clearance_checks
        )
