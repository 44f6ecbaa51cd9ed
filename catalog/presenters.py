"""What each caller may see of the catalog: anonymized titles hide who and what they are.

Anonymity must survive every route, not only `GET /titles/{id}`: a developer must not be able to
follow a link from an anonymized title to something that names its studio. So, for a viewer who
is neither an operator nor the owning studio:
- an anonymized title shows null `name`, `synopsis`, `eidr_id`, `external_id`, `studio_id`;
- `parent_id` is shown only when the parent has the same visibility as the title (both listed,
  or both anonymized): a private parent is invisible, and a listed parent of an anonymized
  episode (or the reverse) would tie the anonymous title to a named one;
- assets never show their `storage_key` (it contains the studio's id) nor an upload;
- credits on an anonymized title show neither talent id nor name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from catalog.models import Asset, Credit, RightsGrant, Title

# API.md: an anonymized title hides these from developers.
ANONYMIZED_FIELDS = ("name", "synopsis", "eidr_id", "external_id", "studio_id")
_LOOK_UP = object()


class Viewer(Protocol):
    @property
    def kind(self) -> str: ...
    @property
    def organization_id(self) -> str: ...


class TitleFields(Protocol):
    """What present_title reads: a Title, or a search result row (catalog.search.TitleRow)."""

    @property
    def id(self) -> str: ...
    @property
    def studio_id(self) -> str: ...
    @property
    def external_id(self) -> str: ...
    @property
    def eidr_id(self) -> str | None: ...
    @property
    def kind(self) -> str: ...
    @property
    def parent_id(self) -> str | None: ...
    @property
    def name(self) -> str: ...
    @property
    def original_language(self) -> str | None: ...
    @property
    def genres(self) -> list[str]: ...
    @property
    def release_year(self) -> int | None: ...
    @property
    def synopsis(self) -> str | None: ...
    @property
    def visibility(self) -> str: ...
    @property
    def content_hours(self) -> float: ...
    @property
    def max_height(self) -> int | None: ...
    @property
    def created_at(self) -> Any: ...


class UploadLike(Protocol):
    @property
    def url(self) -> str | None: ...
    @property
    def expires_at(self) -> Any: ...
    @property
    def headers(self) -> dict[str, str]: ...
    @property
    def method(self) -> str: ...
    @property
    def multipart(self) -> Any: ...


def sees_everything(studio_id: str, viewer: Viewer) -> bool:
    """True for operators and for the studio that owns the object."""
    return viewer.kind == "operator" or viewer.organization_id == studio_id


def hides_identity(title: TitleFields, viewer: Viewer) -> bool:
    """True when `viewer` must not learn which title (or whose) this is."""
    if sees_everything(title.studio_id, viewer):
        return False
    return title.visibility != "listed"


def _shown_parent_id(title: TitleFields, viewer: Viewer, parent_visibility: Any) -> str | None:
    if title.parent_id is None or sees_everything(title.studio_id, viewer):
        return title.parent_id
    if parent_visibility is _LOOK_UP:
        session = object_session(title)
        parent = session.get(Title, title.parent_id) if session is not None else None
        parent_visibility = parent.visibility if parent is not None else None
    return title.parent_id if parent_visibility == title.visibility else None


def present_title(
    title: TitleFields, viewer: Viewer, *, parent_visibility: Any = _LOOK_UP
) -> dict[str, Any]:
    """The title as `viewer` may see it; hidden fields are null, never omitted or partial.

    `parent_visibility` (the parent's visibility) saves a lookup; `present_titles` passes it.
    """
    body: dict[str, Any] = {
        "id": title.id,
        "studio_id": title.studio_id,
        "external_id": title.external_id,
        "eidr_id": title.eidr_id,
        "kind": title.kind,
        "parent_id": _shown_parent_id(title, viewer, parent_visibility),
        "name": title.name,
        "original_language": title.original_language,
        "genres": list(title.genres or []),
        "release_year": title.release_year,
        "synopsis": title.synopsis,
        "visibility": title.visibility,
        "content_hours": title.content_hours,
        "max_height": title.max_height,
        "created_at": title.created_at,
        "anonymized": False,
    }
    if hides_identity(title, viewer):
        for field in ANONYMIZED_FIELDS:
            body[field] = None
        body["anonymized"] = True
    return body


def present_titles(
    session: Session, titles: Iterable[Title], viewer: Viewer
) -> list[dict[str, Any]]:
    """Present many titles with one query for their parents' visibility (lists, search)."""
    items = list(titles)
    parent_ids = sorted({t.parent_id for t in items if t.parent_id})
    visibility: dict[str, str] = {}
    if parent_ids:
        rows = session.execute(select(Title.id, Title.visibility).where(Title.id.in_(parent_ids)))
        visibility = {title_id: value for title_id, value in rows}
    return [
        present_title(t, viewer, parent_visibility=visibility.get(t.parent_id or "")) for t in items
    ]


def present_upload(upload: UploadLike) -> dict[str, Any]:
    parts = upload.multipart
    return {
        "url": upload.url,
        "method": upload.method,
        "expires_at": upload.expires_at,
        "headers": dict(upload.headers),
        "multipart": None
        if parts is None
        else {"part_size": parts.part_size, "part_count": parts.part_count},
    }


def present_asset(
    asset: Asset, viewer: Viewer, *, upload: UploadLike | None = None
) -> dict[str, Any]:
    """The asset as `viewer` may see it: only its owner and operators see where it is stored."""
    owner_view = sees_everything(asset.studio_id, viewer)
    return {
        "id": asset.id,
        "title_id": asset.title_id,
        "external_id": asset.external_id if owner_view else None,
        "kind": asset.kind,
        "storage_key": asset.storage_key if owner_view else None,
        "byte_size": asset.byte_size,
        "sha256": asset.sha256,
        "duration_seconds": asset.duration_seconds,
        "width": asset.width,
        "height": asset.height,
        "fps": asset.fps,
        "codec": asset.codec,
        "language": asset.language,
        "status": asset.status,
        "created_at": asset.created_at,
        "ready_at": asset.ready_at,
        "sha256_verified_at": asset.sha256_verified_at,
        "upload": present_upload(upload) if upload is not None and owner_view else None,
    }


def present_credit(
    credit: Credit, title: Title, viewer: Viewer, names: Mapping[str, str]
) -> dict[str, Any]:
    """A credit; on a title anonymized to `viewer`, who it credits is hidden."""
    hidden = hides_identity(title, viewer)
    return {
        "id": credit.id,
        "title_id": credit.title_id,
        "talent_id": None if hidden else credit.talent_id,
        "talent_name": None if hidden else names.get(credit.talent_id),
        "role": credit.role,
        "created_at": credit.created_at,
    }


def present_grant(grant: RightsGrant, viewer: Viewer) -> dict[str, Any]:
    """A rights grant; its import `external_id` is the studio's own business."""
    return {
        "id": grant.id,
        "title_id": grant.title_id,
        "external_id": grant.external_id if sees_everything(grant.studio_id, viewer) else None,
        "territories": list(grant.territories),
        "start": grant.start,
        "end": grant.end,
        "permitted_uses": list(grant.permitted_uses),
        "exclusive_available": grant.exclusive_available,
        "created_at": grant.created_at,
    }
