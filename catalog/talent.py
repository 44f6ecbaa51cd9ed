"""Talent, their credits on titles, and their likeness consents (name, image, likeness, voice).

Talent belongs to a studio's catalog, like its titles: a studio sees and manages its own talent,
operators see all of it, and developers none (403 on every talent route, whatever the id, so the
answer tells nothing about what exists). Developers learn of credits only through
`GET /titles/{id}/credits` of a title they can see, without names when the title is anonymized.

Decisions where API.md is silent:
- A credit joins a title and a talent of the same studio; naming talent of another studio (or
  none) is 422 on `talent_id`, the same answer either way.
- `cast` and `voice` credits need a covering consent for a title to clear; `crew` do not
  (`catalog.coverage.attributes_required`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from catalog.access import (
    acting_studio,
    get_managed_title,
    get_visible_title,
    require_catalog_editor,
)
from catalog.coverage import ATTRIBUTES, ROLES
from catalog.models import Consent, Credit, Talent, Title
from catalog.rights import check_window, normalize_territories, normalize_uses
from marketplace.accounts.principal import Principal
from marketplace.audit.service import record_event
from marketplace.core.errors import Conflict, NotFound, ValidationFailed


def visible_talent(viewer: Principal) -> Select[Talent]:
    """Select the talent `viewer` may see; developers are refused (403)."""
    require_catalog_editor(viewer)
    stmt = select(Talent)
    if not viewer.is_operator:
        stmt = stmt.where(Talent.studio_id == viewer.organization_id)
    return stmt


def get_talent(session: Session, viewer: Principal, talent_id: str) -> Talent:
    """Return talent `viewer` may see (and so manage), or raise NotFound."""
    talent = session.scalars(visible_talent(viewer).where(Talent.id == talent_id)).one_or_none()
    if talent is None:
        raise NotFound(f"talent {talent_id} not found")
    return talent


def create_talent(
    session: Session,
    principal: Principal,
    *,
    name: str,
    external_ids: dict[str, Any] | None = None,
    external_id: str | None = None,
    studio_id: str | None = None,
) -> Talent:
    """Add a person to a studio's talent (an operator names the studio)."""
    studio = acting_studio(session, principal, studio_id)
    name = name.strip()
    if not name:
        raise ValidationFailed("a name is required", errors={"name": ["Must not be blank."]})
    if external_id is not None and session.scalar(
        select(Talent.id).where(Talent.studio_id == studio, Talent.external_id == external_id)
    ):
        raise Conflict(
            f"external_id {external_id!r} is already used by other talent of this studio",
            errors={"external_id": ["Already used by other talent of this studio."]},
        )
    talent = Talent(
        studio_id=studio, name=name, external_ids=dict(external_ids or {}), external_id=external_id
    )
    session.add(talent)
    session.flush()
    record_event(session, principal, "talent.created", object_id=talent.id, organization_id=studio)
    return talent


def add_credit(
    session: Session, principal: Principal, title_id: str, *, talent_id: str, role: str
) -> Credit:
    """Credit talent on a title in a role (cast, voice or crew)."""
    title = get_managed_title(session, principal, title_id)
    if role not in ROLES:
        raise ValidationFailed(
            "unknown role", errors={"role": [f"Must be one of: {', '.join(ROLES)}."]}
        )
    talent_studio = session.scalar(select(Talent.studio_id).where(Talent.id == talent_id))
    if talent_studio != title.studio_id:
        raise ValidationFailed(
            f"no talent {talent_id} in this studio's catalog",
            errors={"talent_id": ["No such talent in this title's studio."]},
        )
    duplicate = session.scalar(
        select(Credit.id).where(
            Credit.title_id == title.id, Credit.talent_id == talent_id, Credit.role == role
        )
    )
    if duplicate is not None:
        raise Conflict(
            f"talent {talent_id} is already credited as {role} on title {title.id}",
            errors={"talent_id": ["Already credited in this role."]},
        )
    credit = Credit(title_id=title.id, talent_id=talent_id, role=role)
    session.add(credit)
    session.flush()
    record_event(
        session,
        principal,
        "credit.created",
        object_id=credit.id,
        organization_id=title.studio_id,
        data={"title_id": title.id, "talent_id": talent_id, "role": role},
    )
    return credit


def title_credits(
    session: Session, viewer: Principal, title_id: str
) -> tuple[Title, Select[Credit]]:
    """Return a title `viewer` can see (NotFound otherwise) and a select of its credits."""
    title = get_visible_title(session, viewer, title_id)
    return title, select(Credit).where(Credit.title_id == title_id)


def talent_names(session: Session, talent_ids: Iterable[str]) -> dict[str, str]:
    """Map talent ids to names, in one query."""
    ids = sorted(set(talent_ids))
    if not ids:
        return {}
    return {
        talent_id: name
        for talent_id, name in session.execute(
            select(Talent.id, Talent.name).where(Talent.id.in_(ids))
        )
    }


def normalize_attributes(attributes: Iterable[str]) -> list[str]:
    """Return likeness attributes in canonical order; ValidationFailed unless known, non-empty."""
    wanted = set(attributes)
    unknown = sorted(wanted - set(ATTRIBUTES))
    if unknown or not wanted:
        raise ValidationFailed(
            "invalid attributes",
            errors={"attributes": [f"Name one or more of: {', '.join(ATTRIBUTES)}."]},
        )
    return [a for a in ATTRIBUTES if a in wanted]


def add_consent(
    session: Session,
    principal: Principal,
    talent_id: str,
    *,
    attributes: Iterable[str],
    permitted_uses: Iterable[str],
    territories: Iterable[str],
    start: date,
    end: date,
    external_id: str | None = None,
) -> Consent:
    """Record a talent's consent to uses of their likeness attributes."""
    talent = get_talent(session, principal, talent_id)
    attrs = normalize_attributes(attributes)
    uses = normalize_uses(permitted_uses)
    codes = normalize_territories(territories)
    check_window(start, end)
    if external_id is not None and session.scalar(
        select(Consent.id).where(
            Consent.studio_id == talent.studio_id, Consent.external_id == external_id
        )
    ):
        raise Conflict(
            f"external_id {external_id!r} is already used by another consent of this studio",
            errors={"external_id": ["Already used by another consent of this studio."]},
        )
    consent = Consent(
        talent_id=talent.id,
        studio_id=talent.studio_id,
        external_id=external_id,
        attributes=attrs,
        permitted_uses=uses,
        territories=codes,
        start=start,
        end=end,
    )
    session.add(consent)
    session.flush()
    record_event(
        session,
        principal,
        "consent.created",
        object_id=consent.id,
        organization_id=talent.studio_id,
        data={
            "talent_id": talent.id,
            "attributes": attrs,
            "permitted_uses": uses,
            "territories": codes,
            "start": start.isoformat(),
            "end": end.isoformat(),
        },
    )
    return consent


def talent_consents(session: Session, viewer: Principal, talent_id: str) -> Select[Consent]:
    """Select the consents of talent `viewer` may see (NotFound otherwise)."""
    get_talent(session, viewer, talent_id)
    return select(Consent).where(Consent.talent_id == talent_id)
