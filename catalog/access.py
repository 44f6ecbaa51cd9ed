"""Who may see and change which part of the catalog: the tenant scoping of every catalog query.

- Operators see every studio's catalog and may act on a studio's behalf.
- A studio (owners and members alike) sees and manages its own catalog only; another studio's
  titles, talent and grants are 404 to it.
- A developer sees `listed` and `anonymized` titles of any studio, read-only: changing something
  it can see is 403, anything else is 404. Pending assets and talent are studio matters.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from catalog.models import Title
from marketplace.accounts.models import Organization
from marketplace.accounts.principal import Principal
from marketplace.core.errors import Forbidden, NotFound, ValidationFailed

# What a developer may see of other studios' catalogs.
PUBLIC_VISIBILITIES = ("listed", "anonymized")


def visible_titles(viewer: Principal) -> Select[Title]:
    """Select the titles `viewer` may see (all of them for operators)."""
    stmt = select(Title)
    if viewer.is_operator:
        return stmt
    if viewer.is_developer:
        return stmt.where(Title.visibility.in_(PUBLIC_VISIBILITIES))
    return stmt.where(Title.studio_id == viewer.organization_id)


def can_manage(viewer: Principal, studio_id: str) -> bool:
    """True when `viewer` may change the catalog of studio `studio_id`."""
    return viewer.is_operator or (viewer.is_studio and viewer.organization_id == studio_id)


def get_visible_title(session: Session, viewer: Principal, title_id: str) -> Title:
    """Return a title `viewer` may see, or raise NotFound."""
    title = session.scalars(visible_titles(viewer).where(Title.id == title_id)).one_or_none()
    if title is None:
        raise NotFound(f"title {title_id} not found")
    return title


def get_managed_title(
    session: Session, viewer: Principal, title_id: str, *, lock: bool = False
) -> Title:
    """Return a title `viewer` may change: NotFound if it cannot see it, Forbidden if read-only."""
    stmt = visible_titles(viewer).where(Title.id == title_id)
    if lock:
        stmt = stmt.with_for_update()
    title = session.scalars(stmt).one_or_none()
    if title is None:
        raise NotFound(f"title {title_id} not found")
    if not can_manage(viewer, title.studio_id):
        raise Forbidden("only the studio that owns this title, or an operator, may change it")
    return title


def require_catalog_editor(viewer: Principal) -> None:
    """Refuse developers (403): they never change a catalog."""
    if not (viewer.is_operator or viewer.is_studio):
        raise Forbidden("only studios and operators manage catalogs")


def acting_studio(session: Session, viewer: Principal, studio_id: str | None) -> str:
    """Return the studio whose catalog `viewer` is changing.

    A studio acts for itself: `studio_id` may be omitted, and naming any other organization is
    403 (the same answer whether it exists or not). An operator must name an existing studio;
    anything else is 422 on `studio_id`. Developers are refused (403).
    """
    require_catalog_editor(viewer)
    if viewer.is_studio:
        if studio_id is not None and studio_id != viewer.organization_id:
            raise Forbidden("a studio manages its own catalog only; omit studio_id")
        return viewer.organization_id
    if studio_id is None:
        raise ValidationFailed(
            "an operator must name the studio it acts for",
            errors={"studio_id": ["Required when an operator acts for a studio."]},
        )
    kind = session.scalar(select(Organization.kind).where(Organization.id == studio_id))
    if kind != "studio":
        raise ValidationFailed(
            f"{studio_id} is not a studio", errors={"studio_id": ["Not a studio organization."]}
        )
    return studio_id


def missing_ids(wanted: Sequence[str], found: Sequence[str]) -> list[str]:
    """Return the ids of `wanted` absent from `found`, in request order."""
    present = set(found)
    return [i for i in wanted if i not in present]
