"""Clearance: may these titles be licensed for these uses, in these territories, over this term?

A title is cleared when all of these hold, and blocked with one reason per failure otherwise:
- `no_rights`: every requested use × territory is permitted for every day of the term by grants
  on the title or on an ancestor (a series' or season's grant covers its children). Grants may
  add up (adjacent windows, separate territories), but a list of countries never makes `WW`.
  With `exclusive`, only grants whose rights are `exclusive_available` count.
- `talent_consent_missing`: every `cast` and `voice` credit on the title, on its ancestors
  (series regulars appear in every episode) or on its descendants (licensing a series licenses
  its episodes) has consents covering the attributes its role needs for every use × territory
  over the term. `crew` credits need none.
- `asset_not_ready`: the title, or for a series or season one of its descendants, has at least
  one `ready` video asset: there is something to deliver.
- further checks the caller passes (`checks`, from the runtime's CatalogRules: the contracts
  layer's `exclusivity_conflict`, so the catalog never imports contracts).

Each title's reasons come in the order of `REASON_CODES`, then by use and territory.

Who runs the check and who reads it may differ: an offer is checked with the offering studio's
rights (`on_behalf_of`) and its reasons are told to the caller (`viewer`), a developer
countering it included. What a viewer is told about a title is decided in one place,
`credit_as_told`: a developer reads exactly what `POST /clearance` tells it, never talent of a
title (or credited relative) anonymized or private to it.

The work is a fixed number of batched queries whatever the number of titles: titles, related
titles, grants, credits with talent, consents, and video asset counts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TypeVar

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from catalog.access import missing_ids, visible_titles
from catalog.codes import WORLDWIDE
from catalog.coverage import (
    ALL_USES,
    ATTRIBUTES,
    Grant,
    Window,
    attributes_required,
    uncovered,
    uncovered_consents,
)
from catalog.coverage import Consent as ConsentTerms
from catalog.models import Asset, Consent, Credit, RightsGrant, Talent, Title
from catalog.presenters import hides_identity
from catalog.rights import check_window, normalize_territories, normalize_uses
from marketplace.accounts.principal import Principal
from marketplace.core.errors import NotFound, ValidationFailed

MAX_TITLES = 500
_CHUNK = 500
_ONE_DAY = timedelta(days=1)
REASON_CODES = ("no_rights", "exclusivity_conflict", "talent_consent_missing", "asset_not_ready")

T = TypeVar("T")


@dataclass(frozen=True)
class Reason:
    """Why a title is blocked: a stable `code` (API.md) and a specific human `detail`."""

    code: str
    detail: str


@dataclass(frozen=True)
class Blocked:
    title_id: str
    reasons: list[Reason]


@dataclass(frozen=True)
class ClearanceResult:
    cleared: list[str]
    blocked: list[Blocked]

    @property
    def ok(self) -> bool:
        """True when every requested title is cleared."""
        return not self.blocked


@dataclass(frozen=True)
class ClearanceRequest:
    """A normalized clearance question, as registered checks receive it.

    `viewer` reads the reasons; the titles are those `on_behalf_of` may see."""

    viewer: Principal
    on_behalf_of: Principal
    title_ids: tuple[str, ...]
    uses: tuple[str, ...]
    territories: tuple[str, ...]
    window: Window
    exclusive: bool


#: A check run after the catalog's own: `check(session, request, titles)` returns reasons by
#: title id for the titles it blocks (titles are in request order, all visible to
#: `request.on_behalf_of`; details must not say more than `request.viewer` may see).
ClearanceCheck = Callable[[Session, ClearanceRequest, list[Title]], Mapping[str, list[Reason]]]


def _chunks(values: Sequence[T]) -> Iterable[Sequence[T]]:
    for i in range(0, len(values), _CHUNK):
        yield values[i : i + _CHUNK]


def _span(window: Window) -> str:
    return f"{window.start.isoformat()}..{window.end.isoformat()}"


def _first_uncovered_day(windows: Iterable[Window], target: Window) -> date | None:
    """The first day of `target` no window covers (None when all are covered)."""
    first = target.start
    for window in sorted((w for w in windows if w.overlaps(target)), key=lambda w: w.start):
        if window.start > first:
            return first
        if window.end >= target.end:
            return None
        first = max(first, window.end + _ONE_DAY)
    return first


def check_clearance(
    session: Session,
    viewer: Principal,
    *,
    title_ids: Sequence[str],
    uses: Iterable[str],
    territories: Iterable[str],
    start: date,
    end: date,
    exclusive: bool = False,
    checks: Sequence[ClearanceCheck],
    on_behalf_of: Principal | None = None,
) -> ClearanceResult:
    """Say which titles are cleared for uses × territories × term, and why the others are not.

    `checks` are the cross-domain rules run after the catalog's own (CatalogRules). The titles
    are looked up with the rights of `on_behalf_of` (default: the viewer); the reasons are
    worded for `viewer`."""
    checker = on_behalf_of or viewer
    ids = list(dict.fromkeys(title_ids))
    if not ids or len(ids) > MAX_TITLES:
        raise ValidationFailed(
            f"name between 1 and {MAX_TITLES} titles",
            errors={"title_ids": [f"Name 1 to {MAX_TITLES} titles."]},
        )
    request = ClearanceRequest(
        viewer=viewer,
        on_behalf_of=checker,
        title_ids=tuple(ids),
        uses=tuple(normalize_uses(uses, "uses")),
        territories=tuple(normalize_territories(territories, "territories")),
        window=_window(start, end),
        exclusive=exclusive,
    )
    found: dict[str, Title] = {}
    for chunk in _chunks(ids):
        found.update(
            (t.id, t) for t in session.scalars(visible_titles(checker).where(Title.id.in_(chunk)))
        )
    missing = missing_ids(ids, list(found))
    if missing:
        raise NotFound(f"titles not found: {', '.join(missing)}", errors={"title_ids": missing})
    titles = [found[i] for i in ids]
    related = _related_titles(session, titles)
    reasons: dict[str, list[Reason]] = defaultdict(list)
    for title_id, found_reasons in _rights_reasons(session, request, titles).items():
        reasons[title_id].extend(found_reasons)
    for title_id, found_reasons in _consent_reasons(session, request, titles, related).items():
        reasons[title_id].extend(found_reasons)
    for title_id, found_reasons in _asset_reasons(session, titles, related).items():
        reasons[title_id].extend(found_reasons)
    for check in checks:
        for title_id, found_reasons in check(session, request, titles).items():
            if title_id in found:
                reasons[title_id].extend(found_reasons)
    order = {code: i for i, code in enumerate(REASON_CODES)}
    return ClearanceResult(
        cleared=[i for i in ids if not reasons.get(i)],
        blocked=[
            Blocked(i, sorted(reasons[i], key=lambda r: order.get(r.code, len(order))))
            for i in ids
            if reasons.get(i)
        ],
    )


def _window(start: date, end: date) -> Window:
    check_window(start, end)
    return Window(start, end)


@dataclass
class _Related:
    """Titles around the requested ones: ancestors and descendants, by requested title id."""

    titles: dict[str, Title]
    ancestors: dict[str, list[str]]
    descendants: dict[str, list[str]]

    def family(self, title_id: str) -> list[str]:
        return [title_id, *self.ancestors[title_id], *self.descendants[title_id]]


def _related_titles(session: Session, titles: list[Title]) -> _Related:
    ids = [t.id for t in titles]
    known: dict[str, Title] = {t.id: t for t in titles}
    descendants: dict[str, list[str]] = {i: [] for i in ids}
    for chunk in _chunks(ids):
        for child in session.scalars(
            select(Title).where(or_(Title.parent_id.in_(chunk), Title.root_id.in_(chunk)))
        ):
            known[child.id] = child
            for ancestor in child.ancestor_ids:
                if ancestor in descendants:
                    descendants[ancestor].append(child.id)
    wanted = sorted({a for t in titles for a in t.ancestor_ids} - set(known))
    for chunk in _chunks(wanted):
        known.update((t.id, t) for t in session.scalars(select(Title).where(Title.id.in_(chunk))))
    ancestors = {t.id: t.ancestor_ids for t in titles}
    return _Related(titles=known, ancestors=ancestors, descendants=descendants)


def _rights_reasons(
    session: Session, request: ClearanceRequest, titles: list[Title]
) -> dict[str, list[Reason]]:
    window = request.window
    holders = sorted({i for t in titles for i in (t.id, *t.ancestor_ids)})
    grants: dict[str, list[Grant]] = defaultdict(list)
    for chunk in _chunks(holders):
        stmt = select(RightsGrant).where(
            RightsGrant.title_id.in_(chunk),
            RightsGrant.start <= window.end,
            RightsGrant.end >= window.start,
        )
        if request.exclusive:
            stmt = stmt.where(RightsGrant.exclusive_available.is_(True))
        for row in session.scalars(stmt):
            grants[row.title_id].append(
                Grant(
                    frozenset(row.territories),
                    Window(row.start, row.end),
                    frozenset(row.permitted_uses),
                )
            )
    how = "exclusively " if request.exclusive else ""
    result: dict[str, list[Reason]] = {}
    for title in titles:
        applicable = [g for holder in (title.id, *title.ancestor_ids) for g in grants[holder]]
        gaps = uncovered(
            applicable, uses=request.uses, territories=request.territories, window=window
        )
        reasons = []
        for use, territory in gaps:
            windows = [
                g.window
                for g in applicable
                if use in g.uses and (WORLDWIDE in g.territories or territory in g.territories)
            ]
            first = _first_uncovered_day(windows, window)
            if not windows:
                detail = f"no grant {how}permits {use} in {territory} during {_span(window)}"
            else:
                detail = (
                    f"grants {how}permit {use} in {territory} for part of {_span(window)} only: "
                    f"{first.isoformat() if first else window.start.isoformat()} is not covered"
                )
            reasons.append(Reason("no_rights", detail))
        if reasons:
            result[title.id] = reasons
    return result


def _consent_reasons(
    session: Session, request: ClearanceRequest, titles: list[Title], related: _Related
) -> dict[str, list[Reason]]:
    family_ids = sorted({i for t in titles for i in related.family(t.id)})
    credits: dict[str, list[tuple[Credit, str]]] = defaultdict(list)
    for chunk in _chunks(family_ids):
        for credit, name in session.execute(
            select(Credit, Talent.name)
            .join(Talent, Talent.id == Credit.talent_id)
            .where(Credit.title_id.in_(chunk), Credit.role.in_(("cast", "voice")))
            .order_by(Credit.id)
        ):
            credits[credit.title_id].append((credit, name))
    talent_ids = sorted({c.talent_id for rows in credits.values() for c, _ in rows})
    consents: dict[str, list[ConsentTerms]] = defaultdict(list)
    window = request.window
    for chunk in _chunks(talent_ids):
        for row in session.scalars(
            select(Consent).where(
                Consent.talent_id.in_(chunk),
                Consent.start <= window.end,
                Consent.end >= window.start,
            )
        ):
            consents[row.talent_id].append(
                ConsentTerms(
                    frozenset(row.attributes),
                    frozenset(row.permitted_uses),
                    frozenset(row.territories),
                    Window(row.start, row.end),
                )
            )
    result: dict[str, list[Reason]] = {}
    for title in titles:
        reasons = []
        seen: set[tuple[str, str]] = set()
        for member in related.family(title.id):
            for credit, name in credits.get(member, []):
                if (credit.talent_id, credit.role) in seen:
                    continue
                seen.add((credit.talent_id, credit.role))
                gaps = uncovered_consents(
                    consents[credit.talent_id],
                    attributes_needed=attributes_required(credit.role),
                    uses=request.uses,
                    territories=request.territories,
                    window=window,
                )
                if not gaps:
                    continue
                who = credit_as_told(
                    request.viewer, credit, name, title=title, holder=related.titles[member]
                )
                reasons.append(Reason("talent_consent_missing", _consent_detail(who, gaps, window)))
        if reasons:
            result[title.id] = reasons
    return result


def credit_as_told(
    viewer: Principal, credit: Credit, name: str, *, title: Title, holder: Title
) -> str:
    """How a reason names a credit on `holder` (the requested `title` or a relative) to
    `viewer`: by talent name and id only when neither title hides its identity from it."""
    if hides_identity(title, viewer) or hides_identity(holder, viewer):
        return f"a {credit.role} credit"
    return f"{name} ({credit.talent_id}, {credit.role})"


def _consent_detail(who: str, gaps: list[tuple[str, str, str]], window: Window) -> str:
    attributes = [a for a in ATTRIBUTES if any(g[0] == a for g in gaps)]
    uses = [u for u in ALL_USES if any(g[1] == u for g in gaps)]
    territories = sorted({g[2] for g in gaps})
    return (
        f"{who} has no consent covering {', '.join(attributes)} for {', '.join(uses)} "
        f"in {', '.join(territories)} during {_span(window)}"
    )


def _asset_reasons(
    session: Session, titles: list[Title], related: _Related
) -> dict[str, list[Reason]]:
    holders = sorted({i for t in titles for i in (t.id, *related.descendants[t.id])})
    counts: dict[tuple[str, str], int] = {}
    for chunk in _chunks(holders):
        for title_id, status, count in session.execute(
            select(Asset.title_id, Asset.status, func.count())
            .where(Asset.title_id.in_(chunk), Asset.kind == "video")
            .group_by(Asset.title_id, Asset.status)
        ):
            counts[(title_id, status)] = count
    result: dict[str, list[Reason]] = {}
    for title in titles:
        scope = (title.id, *related.descendants[title.id])
        ready = sum(counts.get((i, "ready"), 0) for i in scope)
        if ready:
            continue
        pending = sum(counts.get((i, "pending"), 0) for i in scope)
        where = "this title" if title.kind in ("film", "episode") else f"this {title.kind} or below"
        detail = (
            f"no ready video asset on {where}: {pending} video asset(s) registered but never "
            "completed (upload the file, then POST /assets/{id}/complete)"
            if pending
            else f"no video asset on {where}: register and upload one"
        )
        result[title.id] = [Reason("asset_not_ready", detail)]
    return result
