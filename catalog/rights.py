"""Rights grants: which AI uses a studio may license for a title, where, and when.

A grant on a series or season covers its seasons and episodes (see `catalog.clearance`). Each
grant keeps one `rights_terms` row per territory × use beside it, and every title keeps in
`title_coverage` the uses × territories its own and its ancestors' grants cover: the copy search
filters on (`refresh_title_coverage`, called by every writer of grants and titles).

Decisions where API.md is silent:
- Territories are normalized (`uk` → refused with a hint, `fr` → `FR`), de-duplicated and sorted;
  `WW` may be combined with countries (it already covers them) and is kept as given.
- A developer may read the grants of titles it can see (they say what it could license and
  name nobody); changing or deleting them is for the studio and operators.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from sqlalchemy import ColumnElement, Insert, Select, delete, func, insert, select, union_all
from sqlalchemy.orm import Session

from catalog.access import can_manage, get_managed_title, get_visible_title, visible_titles
from catalog.codes import normalize_territory
from catalog.coverage import ALL_USES
from catalog.models import RightsGrant, RightsTerm, Title, TitleCoverage
from marketplace.accounts.principal import Principal
from marketplace.audit.service import record_event
from marketplace.core.errors import Conflict, Forbidden, NotFound, ValidationFailed


def normalize_territories(territories: Iterable[str], field: str = "territories") -> list[str]:
    """Return sorted, unique, normalized territory codes; ValidationFailed naming the bad ones."""
    codes: set[str] = set()
    problems: list[str] = []
    for territory in territories:
        try:
            codes.add(normalize_territory(territory))
        except ValueError as exc:
            problems.append(str(exc))
    if problems:
        raise ValidationFailed("invalid territory", errors={field: problems})
    if not codes:
        raise ValidationFailed("no territory", errors={field: ["Name at least one territory."]})
    return sorted(codes)


def normalize_uses(uses: Iterable[str], field: str = "permitted_uses") -> list[str]:
    """Return uses in canonical order; ValidationFailed unless a non-empty subset of ALL_USES."""
    wanted = set(uses)
    unknown = sorted(wanted - set(ALL_USES))
    if unknown:
        raise ValidationFailed(
            "unknown use",
            errors={field: [f"Unknown use {u!r}: use {', '.join(ALL_USES)}." for u in unknown]},
        )
    if not wanted:
        raise ValidationFailed("no use", errors={field: ["Name at least one use."]})
    return [u for u in ALL_USES if u in wanted]


def check_window(start: date, end: date) -> None:
    """Refuse a window that ends before it starts (both ends are inclusive)."""
    if end < start:
        raise ValidationFailed(
            "the window ends before it starts", errors={"end": ["Must not be before start."]}
        )


def sync_rights_terms(session: Session, grant: RightsGrant) -> None:
    """Replace a grant's `rights_terms` rows by its current territories × uses."""
    session.execute(delete(RightsTerm).where(RightsTerm.grant_id == grant.id))
    session.add_all(
        RightsTerm(grant_id=grant.id, territory=t, use=u, title_id=grant.title_id)
        for t in grant.territories
        for u in grant.permitted_uses
    )


def refresh_title_coverage(
    session: Session, *, title_ids: Iterable[str] = (), studio_id: str | None = None
) -> None:
    """Recompute `title_coverage` for the hierarchies of `title_ids` (each title's root and
    everything under it), or for every title of `studio_id`: set-based, in the database."""
    if studio_id is not None:
        scopes: list[ColumnElement[bool]] = [Title.studio_id == studio_id]
    else:
        ids = list(dict.fromkeys(title_ids))
        if not ids:
            return
        roots = select(func.coalesce(Title.root_id, Title.id)).where(Title.id.in_(ids))
        # Every hierarchy is within one root: the root itself and the titles naming it.
        scopes = [Title.id.in_(roots), Title.root_id.in_(roots)]
    for scope in scopes:
        session.execute(
            delete(TitleCoverage).where(TitleCoverage.title_id.in_(select(Title.id).where(scope)))
        )
        session.execute(_coverage_insert(scope))


def _coverage_insert(scope: ColumnElement[bool]) -> Insert:
    # A grant on the title, its parent or its root (the hierarchy is at most three deep; a
    # season's parent is its root, counted once).
    holders = (
        Title.id == RightsGrant.title_id,
        Title.parent_id == RightsGrant.title_id,
        (Title.root_id == RightsGrant.title_id) & (Title.root_id != Title.parent_id),
    )
    covering = union_all(
        *(
            select(
                Title.id.label("title_id"),
                RightsGrant.id.label("grant_id"),
                RightsGrant.end.label("ends_on"),
            )
            .join(RightsGrant, holder)
            .where(scope)
            for holder in holders
        )
    ).subquery("covering")
    rows = (
        select(
            covering.c.title_id,
            RightsTerm.use,
            RightsTerm.territory,
            func.max(covering.c.ends_on),
        )
        .join(RightsTerm, RightsTerm.grant_id == covering.c.grant_id)
        .group_by(covering.c.title_id, RightsTerm.use, RightsTerm.territory)
    )
    columns = ["title_id", "use", "territory", "ends_on"]
    return insert(TitleCoverage).from_select(columns, rows)


def create_grant(
    session: Session,
    principal: Principal,
    title_id: str,
    *,
    territories: Iterable[str],
    start: date,
    end: date,
    permitted_uses: Iterable[str],
    exclusive_available: bool = False,
    external_id: str | None = None,
) -> RightsGrant:
    """Record the rights a studio holds for a title (and, on a series or season, its children)."""
    title = get_managed_title(session, principal, title_id)
    codes = normalize_territories(territories)
    uses = normalize_uses(permitted_uses)
    check_window(start, end)
    if external_id is not None and session.scalar(
        select(RightsGrant.id).where(
            RightsGrant.studio_id == title.studio_id, RightsGrant.external_id == external_id
        )
    ):
        raise Conflict(
            f"external_id {external_id!r} is already used by another grant of this studio",
            errors={"external_id": ["Already used by another grant of this studio."]},
        )
    grant = RightsGrant(
        title_id=title.id,
        studio_id=title.studio_id,
        external_id=external_id,
        territories=codes,
        start=start,
        end=end,
        permitted_uses=uses,
        exclusive_available=exclusive_available,
    )
    session.add(grant)
    session.flush()
    sync_rights_terms(session, grant)
    session.flush()
    refresh_title_coverage(session, title_ids=[title.id])
    record_event(
        session,
        principal,
        "rights.granted",
        object_id=grant.id,
        organization_id=title.studio_id,
        data={
            "title_id": title.id,
            "territories": codes,
            "start": start.isoformat(),
            "end": end.isoformat(),
            "permitted_uses": uses,
            "exclusive_available": exclusive_available,
        },
    )
    return grant


def title_grants(session: Session, viewer: Principal, title_id: str) -> Select[RightsGrant]:
    """Select the grants held on one title itself (NotFound if `viewer` cannot see it)."""
    get_visible_title(session, viewer, title_id)
    return select(RightsGrant).where(RightsGrant.title_id == title_id)


def delete_grant(session: Session, principal: Principal, grant_id: str) -> None:
    """Withdraw a rights grant (and its search terms)."""
    grant = session.scalars(
        select(RightsGrant)
        .join(Title, Title.id == RightsGrant.title_id)
        .where(
            RightsGrant.id == grant_id,
            Title.id.in_(visible_titles(principal).with_only_columns(Title.id)),
        )
    ).one_or_none()
    if grant is None:
        raise NotFound(f"rights grant {grant_id} not found")
    if not can_manage(principal, grant.studio_id):
        raise Forbidden("only the studio that holds these rights, or an operator, may delete them")
    session.execute(delete(RightsTerm).where(RightsTerm.grant_id == grant.id))
    session.delete(grant)
    session.flush()
    refresh_title_coverage(session, title_ids=[grant.title_id])
    record_event(
        session,
        principal,
        "rights.deleted",
        object_id=grant_id,
        organization_id=grant.studio_id,
        data={"title_id": grant.title_id},
    )
