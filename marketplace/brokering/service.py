"""License requests, offers, counter-offers and acceptance: the negotiation's state machine."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, exists, func, or_, select, update
from sqlalchemy.orm import Session

from catalog.access import visible_titles
from catalog.clearance import ClearanceCheck, check_clearance
from catalog.codes import normalize_currency, normalize_territory
from catalog.coverage import ALL_USES
from catalog.errors import NotCleared
from catalog.models import Title
from contracts.models import Contract
from contracts.service import ContractDraft, create_contract
from marketplace.accounts.models import Organization
from marketplace.accounts.principal import Principal
from marketplace.audit.service import record_event
from marketplace.brokering.models import LicenseRequest, Message, Offer, RequestStudio
from marketplace.brokering.views import present_offer, present_request
from marketplace.core.db import utcnow
from marketplace.core.errors import Forbidden, InvalidState, NotFound, ValidationFailed
from marketplace.core.money import check_chargeable
from marketplace.webhooks.service import publish

DEFAULT_OFFER_LIFETIME = timedelta(days=14)
BYTES_PER_GB = 1_000_000_000


# ---------------------------------------------------------------- requests


def visible_requests(viewer: Principal) -> Select[LicenseRequest]:
    """The one scope of requests, and of their offers and messages: every route that lists or
    reads them starts here.

    Operators: all. Developers: their own. Studios: those they offered on, and open requests
    that concern them: one naming a title of theirs, or one by criteria alone (an open brief
    to every studio). A request naming only other studios' titles is not theirs to see."""
    stmt = select(LicenseRequest)
    if viewer.is_operator:
        return stmt
    if viewer.is_developer:
        return stmt.where(LicenseRequest.developer_id == viewer.organization_id)
    offered = exists().where(
        Offer.request_id == LicenseRequest.id, Offer.studio_id == viewer.organization_id
    )
    names_ours = exists().where(
        RequestStudio.request_id == LicenseRequest.id,
        RequestStudio.studio_id == viewer.organization_id,
    )
    # No link and no title named: criteria alone. (A request whose titles were all deleted
    # before its links were written names titles and has no link: it reaches no studio.)
    brief = and_(
        ~exists().where(RequestStudio.request_id == LicenseRequest.id),
        func.json_array_length(LicenseRequest.title_ids) == 0,
    )
    return stmt.where(or_(and_(LicenseRequest.status == "open", or_(names_ours, brief)), offered))


def get_request(session: Session, viewer: Principal, request_id: str) -> LicenseRequest:
    request = session.scalars(
        visible_requests(viewer).where(LicenseRequest.id == request_id)
    ).one_or_none()
    if request is None:
        raise NotFound(f"license request {request_id} not found")
    return request


def _terms(data: dict[str, Any]) -> dict[str, Any]:
    """Validate and normalize uses, territories, term and currency shared by requests and offers."""
    errors: dict[str, list[str]] = {}
    uses = sorted(set(data["uses"]))
    if bad := [u for u in uses if u not in ALL_USES]:
        errors["uses"] = [f"Unknown use: {u}." for u in bad]
    territories = []
    for code in data["territories"]:
        try:
            territories.append(normalize_territory(code))
        except ValueError as exc:
            errors.setdefault("territories", []).append(str(exc))
    if data["end"] < data["start"]:
        errors["end"] = ["Must not be before start."]
    currency = data.get("currency")
    if currency is not None:
        try:
            currency = normalize_currency(currency)
        except ValueError as exc:
            errors["currency"] = [str(exc)]
    if errors:
        raise ValidationFailed("the terms are not valid", errors=errors)
    return {**data, "uses": uses, "territories": sorted(set(territories)), "currency": currency}


def create_request(session: Session, viewer: Principal, data: dict[str, Any]) -> LicenseRequest:
    """Ask the marketplace for a licence (developers)."""
    if not viewer.is_developer:
        raise Forbidden("only developers ask for licences")
    data = _terms(data)
    title_ids = sorted(set(data.get("title_ids") or []))
    if title_ids:
        found = set(
            session.scalars(
                visible_titles(viewer).with_only_columns(Title.id).where(Title.id.in_(title_ids))
            )
        )
        if missing := [t for t in title_ids if t not in found]:
            raise NotFound(f"titles not found: {', '.join(missing)}")
    request = LicenseRequest(
        developer_id=viewer.organization_id,
        created_by=viewer.user_id,
        title_ids=title_ids,
        criteria=data.get("criteria") or {},
        uses=data["uses"],
        territories=data["territories"],
        start=data["start"],
        end=data["end"],
        exclusive=data.get("exclusive", False),
        budget_cents=data.get("budget_cents"),
        currency=data["currency"] or "usd",
        message=data.get("message"),
        anonymous=data.get("anonymous", False),
    )
    session.add(request)
    session.flush()
    if title_ids:
        studios = session.scalars(select(Title.studio_id).where(Title.id.in_(title_ids)).distinct())
        session.add_all(RequestStudio(request_id=request.id, studio_id=s) for s in studios)
        session.flush()
    record_event(
        session,
        viewer,
        "license_request.created",
        object_id=request.id,
        organization_id=viewer.organization_id,
        data={"titles": len(title_ids), "anonymous": request.anonymous},
    )
    # The studios it concerns, as visible_requests decides: those owning a title it names, or
    # every studio for a brief by criteria alone.
    if title_ids:
        concerned = select(RequestStudio.studio_id).where(RequestStudio.request_id == request.id)
    else:
        concerned = select(Organization.id).where(Organization.kind == "studio")
    publish(
        session,
        "license_request.received",
        organization_ids=session.scalars(concerned),
        payload_for=lambda who: present_request(session, request, who),
        path=f"/api/v1/license-requests/{request.id}",
        object_id=request.id,
    )
    return request


def close_request(
    session: Session, viewer: Principal, request_id: str, *, now: datetime | None = None
) -> LicenseRequest:
    """Close a request (its developer or an operator); its open offers are withdrawn."""
    now = now or utcnow()
    request = get_request(session, viewer, request_id)
    if not (viewer.is_operator or viewer.organization_id == request.developer_id):
        raise Forbidden("only the requesting developer or an operator closes a request")
    if request.status != "open":
        raise InvalidState("the request is already closed")
    request.status, request.closed_at = "closed", now
    session.execute(
        update(Offer)
        .where(Offer.request_id == request.id, Offer.status == "open")
        .values(status="withdrawn", decided_at=now)
    )
    record_event(
        session,
        viewer,
        "license_request.closed",
        object_id=request.id,
        organization_id=request.developer_id,
    )
    return request


# ---------------------------------------------------------------- offers


def visible_offers(viewer: Principal) -> Select[Offer]:
    stmt = select(Offer)
    if viewer.is_operator:
        return stmt
    if viewer.is_studio:
        return stmt.where(Offer.studio_id == viewer.organization_id)
    return stmt.where(Offer.developer_id == viewer.organization_id)


def get_offer(session: Session, viewer: Principal, offer_id: str) -> Offer:
    offer = session.scalars(visible_offers(viewer).where(Offer.id == offer_id)).one_or_none()
    if offer is None:
        raise NotFound(f"offer {offer_id} not found")
    return offer


def side_of(viewer: Principal) -> str | None:
    return "studio" if viewer.is_studio else "developer" if viewer.is_developer else None


def _clear_or_refuse(
    session: Session,
    viewer: Principal,
    studio_id: str,
    terms: dict[str, Any],
    checks: Sequence[ClearanceCheck],
) -> None:
    """Refuse (422 not_cleared) unless rights, consents, assets and exclusivity allow the terms.

    The check runs with the offering studio's rights; its reasons are worded for `viewer`, so a
    developer reads exactly what `POST /clearance` tells it about the same titles."""
    studio_view = Principal(
        user_id="clearance", organization_id=studio_id, kind="studio", role="owner"
    )
    result = check_clearance(
        session,
        viewer,
        on_behalf_of=studio_view,
        title_ids=terms["title_ids"],
        uses=terms["uses"],
        territories=terms["territories"],
        start=terms["start"],
        end=terms["end"],
        exclusive=terms["exclusive"],
        checks=checks,
    )
    if result.blocked:
        raise NotCleared.of(result)


def _price(session: Session, terms: dict[str, Any]) -> tuple[int, float]:
    """Total price in cents, and the titles' content seconds it was computed from."""
    seconds = float(
        sum(session.scalars(select(Title.content_seconds).where(Title.id.in_(terms["title_ids"]))))
    )
    pricing = terms["pricing"]
    amount = pricing["amount_cents"]
    if pricing["model"] == "per_hour":
        return round(amount * seconds / 3600), seconds
    if pricing["model"] == "per_gb":
        return round(amount * terms["quota"]["bytes"] / BYTES_PER_GB), seconds
    return amount, seconds


def _nameable_titles(
    session: Session, viewer: Principal, request_id: str, studio_id: str, title_ids: list[str]
) -> set[str]:
    """The titles of `title_ids` that `viewer` may put in an offer of `studio_id`.

    The studio and operators: the studio's own titles. A developer: only titles it already
    knows to be the studio's, its `listed` titles and those the studio has offered on this
    request; any other id (anonymized or private, of this studio or another, or no title at
    all) gets one and the same refusal, so countering never tells who owns a title."""
    owned = select(Title.id).where(Title.id.in_(title_ids), Title.studio_id == studio_id)
    if not viewer.is_developer:
        return set(session.scalars(owned))
    offered = {
        title_id
        for ids in session.scalars(
            select(Offer.title_ids).where(
                Offer.request_id == request_id, Offer.studio_id == studio_id
            )
        )
        for title_id in ids
    }
    listed = set(session.scalars(owned.where(Title.visibility == "listed")))
    return (offered | listed) & set(title_ids)


def _offer_terms(
    session: Session,
    viewer: Principal,
    data: dict[str, Any],
    request_id: str,
    studio_id: str,
    now: datetime,
) -> dict[str, Any]:
    terms = _terms({**data, "currency": data["pricing"]["currency"]})
    title_ids = sorted(set(terms["title_ids"]))
    nameable = _nameable_titles(session, viewer, request_id, studio_id, title_ids)
    if missing := [t for t in title_ids if t not in nameable]:
        if viewer.is_developer:
            raise ValidationFailed(
                "a counter-offer may name the studio's listed titles and those it has offered",
                errors={
                    "title_ids": [f"Not a title this studio offers you: {t}." for t in missing]
                },
            )
        raise ValidationFailed(
            "an offer may only name the offering studio's own titles",
            errors={"title_ids": [f"Not a title of this studio: {t}." for t in missing]},
        )
    expires_at = terms.get("expires_at") or now + DEFAULT_OFFER_LIFETIME
    if expires_at <= now:
        raise ValidationFailed(
            "expires_at is in the past", errors={"expires_at": ["Must be in the future."]}
        )
    terms["title_ids"], terms["expires_at"] = title_ids, expires_at
    return terms


def _new_offer(
    session: Session,
    viewer: Principal,
    request: LicenseRequest,
    studio_id: str,
    terms: dict[str, Any],
    *,
    proposed_by: str,
    previous: Offer | None,
    checks: Sequence[ClearanceCheck],
) -> Offer:
    _clear_or_refuse(session, viewer, studio_id, terms, checks)
    total, seconds = _price(session, terms)
    # A deal one payment cannot collect is never made (a per-hour or per-GB price multiplies).
    check_chargeable(total, field="pricing.amount_cents", what="the offer's total")
    offer = Offer(
        request_id=request.id,
        studio_id=studio_id,
        developer_id=request.developer_id,
        proposed_by=proposed_by,
        created_by=viewer.user_id,
        brokered=viewer.is_operator,
        title_ids=terms["title_ids"],
        uses=terms["uses"],
        territories=terms["territories"],
        start=terms["start"],
        end=terms["end"],
        exclusive=terms["exclusive"],
        pricing_model=terms["pricing"]["model"],
        amount_cents=terms["pricing"]["amount_cents"],
        currency=terms["currency"],
        total_cents=total,
        content_seconds=seconds,
        quota_bytes=terms["quota"]["bytes"],
        quota_downloads=terms["quota"]["downloads"],
        expires_at=terms["expires_at"],
        previous_offer_id=previous.id if previous else None,
        message=terms.get("message"),
    )
    session.add(offer)
    session.flush()
    record_event(
        session,
        viewer,
        "offer.created",
        object_id=offer.id,
        organization_id=studio_id,
        parties=[request.developer_id],
        data={
            "request_id": request.id,
            "proposed_by": proposed_by,
            "previous_offer_id": offer.previous_offer_id,
            "total_cents": total,
            "brokered": offer.brokered,
        },
    )
    _publish_offer(session, "offer.countered" if previous else "offer.made", offer)
    return offer


def create_offer(
    session: Session,
    viewer: Principal,
    request_id: str,
    data: dict[str, Any],
    *,
    checks: Sequence[ClearanceCheck],
    now: datetime | None = None,
) -> Offer:
    """Offer titles against a request (the studio, or an operator on a studio's behalf);
    `checks` are the clearance rules beyond the catalog's own (CatalogRules)."""
    now = now or utcnow()
    request = get_request(session, viewer, request_id)
    if viewer.is_developer:
        raise Forbidden("developers counter offers; studios make them")
    if viewer.is_operator:
        studio = session.get(Organization, data["studio_id"]) if data.get("studio_id") else None
        if studio is None or studio.kind != "studio":
            raise ValidationFailed(
                "an operator offers on a studio's behalf",
                errors={"studio_id": ["Name the studio this offer is from."]},
            )
        studio_id = studio.id
    else:
        if data.get("studio_id") not in (None, viewer.organization_id):
            raise ValidationFailed(
                "studio_id names another studio",
                errors={"studio_id": ["A studio offers its own titles."]},
            )
        studio_id = viewer.organization_id
    if request.status != "open":
        raise InvalidState("the request is closed")
    terms = _offer_terms(session, viewer, data, request.id, studio_id, now)
    return _new_offer(
        session,
        viewer,
        request,
        studio_id,
        terms,
        proposed_by="studio",
        previous=None,
        checks=checks,
    )


def _transition(session: Session, offer: Offer, new_status: str, now: datetime) -> None:
    """Move an open, unexpired offer to `new_status` atomically; 409 if someone got there first."""
    result = session.execute(
        update(Offer)
        .where(Offer.id == offer.id, Offer.status == "open", Offer.expires_at > now)
        .values(status=new_status, decided_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.refresh(offer)
        raise InvalidState(f"the offer is {offer.current_status(now)}, no longer open")
    session.refresh(offer)


def _publish_offer(
    session: Session, event_type: str, offer: Offer, now: datetime | None = None
) -> None:
    """Tell both parties' webhooks, each with the offer as the API shows it to them."""
    publish(
        session,
        event_type,
        organization_ids=[offer.studio_id, offer.developer_id],
        payload_for=lambda who: present_offer(session, offer, who),
        path=f"/api/v1/offers/{offer.id}",
        object_id=offer.id,
        now=now,
    )


def _receiving_side(offer: Offer) -> str:
    return "developer" if offer.proposed_by == "studio" else "studio"


def counter_offer(
    session: Session,
    viewer: Principal,
    offer_id: str,
    data: dict[str, Any],
    *,
    checks: Sequence[ClearanceCheck],
    now: datetime | None = None,
) -> Offer:
    """Replace an open offer with new terms; the old one becomes `countered`."""
    now = now or utcnow()
    offer = get_offer(session, viewer, offer_id)
    if viewer.is_operator:
        proposed_by = data.get("on_behalf_of") or _receiving_side(offer)
    else:
        proposed_by = side_of(viewer) or ""
        if proposed_by != _receiving_side(offer):
            raise Forbidden("you made this offer; withdraw it, or wait for the other party")
    if offer.current_status(now) != "open":
        raise InvalidState(f"the offer is {offer.current_status(now)}, no longer open")
    request = session.get(LicenseRequest, offer.request_id)
    assert request is not None  # noqa: S101 - foreign key
    merged = {
        "title_ids": data.get("title_ids", offer.title_ids),
        "uses": data.get("uses", offer.uses),
        "territories": data.get("territories", offer.territories),
        "start": data.get("start", offer.start),
        "end": data.get("end", offer.end),
        "exclusive": data.get("exclusive", offer.exclusive),
        "pricing": data.get("pricing")
        or {
            "model": offer.pricing_model,
            "amount_cents": offer.amount_cents,
            "currency": offer.currency,
        },
        "quota": data.get("quota")
        or {"bytes": offer.quota_bytes, "downloads": offer.quota_downloads},
        "expires_at": data.get("expires_at"),
        "message": data.get("message"),
    }
    terms = _offer_terms(session, viewer, merged, request.id, offer.studio_id, now)
    _transition(session, offer, "countered", now)
    return _new_offer(
        session,
        viewer,
        request,
        offer.studio_id,
        terms,
        proposed_by=proposed_by,
        previous=offer,
        checks=checks,
    )


def accept_offer(
    session: Session,
    viewer: Principal,
    offer_id: str,
    *,
    checks: Sequence[ClearanceCheck],
    now: datetime | None = None,
) -> tuple[Offer, Contract]:
    """Accept an offer (the party it was made to): clearance again, then the contract."""
    now = now or utcnow()
    offer = get_offer(session, viewer, offer_id)
    if side_of(viewer) != _receiving_side(offer):
        raise Forbidden(f"only the {_receiving_side(offer)} this offer was made to accepts it")
    if offer.current_status(now) != "open":
        raise InvalidState(f"the offer is {offer.current_status(now)}, no longer open")
    terms = {
        "title_ids": offer.title_ids,
        "uses": offer.uses,
        "territories": offer.territories,
        "start": offer.start,
        "end": offer.end,
        "exclusive": offer.exclusive,
    }
    _clear_or_refuse(session, viewer, offer.studio_id, terms, checks)
    _transition(session, offer, "accepted", now)
    request = session.get(LicenseRequest, offer.request_id)
    assert request is not None  # noqa: S101 - foreign key
    record_event(
        session,
        viewer,
        "offer.accepted",
        object_id=offer.id,
        organization_id=offer.studio_id,
        parties=[offer.developer_id],
    )
    contract = create_contract(
        session,
        viewer,
        ContractDraft(
            offer_id=offer.id,
            request_id=offer.request_id,
            studio_id=offer.studio_id,
            developer_id=offer.developer_id,
            anonymous=request.anonymous,
            title_ids=offer.title_ids,
            uses=offer.uses,
            territories=offer.territories,
            start=offer.start,
            end=offer.end,
            exclusive=offer.exclusive,
            pricing={"model": offer.pricing_model, "amount_cents": offer.amount_cents},
            amount_cents=offer.total_cents,
            currency=offer.currency,
            content_seconds=offer.content_seconds,
            quota_bytes=offer.quota_bytes,
            quota_downloads=offer.quota_downloads,
        ),
        now=now,
    )
    _publish_offer(session, "offer.accepted", offer, now)  # its view names the contract
    return offer, contract


def reject_offer(
    session: Session, viewer: Principal, offer_id: str, *, now: datetime | None = None
) -> Offer:
    """Decline an offer (the party it was made to)."""
    now = now or utcnow()
    offer = get_offer(session, viewer, offer_id)
    if side_of(viewer) != _receiving_side(offer):
        raise Forbidden(f"only the {_receiving_side(offer)} this offer was made to rejects it")
    _transition(session, offer, "rejected", now)
    record_event(
        session,
        viewer,
        "offer.rejected",
        object_id=offer.id,
        organization_id=offer.studio_id,
        parties=[offer.developer_id],
    )
    _publish_offer(session, "offer.rejected", offer, now)
    return offer


def withdraw_offer(
    session: Session, viewer: Principal, offer_id: str, *, now: datetime | None = None
) -> Offer:
    """Take back an offer (the party that made it, or an operator)."""
    now = now or utcnow()
    offer = get_offer(session, viewer, offer_id)
    if not viewer.is_operator and side_of(viewer) != offer.proposed_by:
        raise Forbidden("only the party that made this offer, or an operator, withdraws it")
    _transition(session, offer, "withdrawn", now)
    record_event(
        session,
        viewer,
        "offer.withdrawn",
        object_id=offer.id,
        organization_id=offer.studio_id,
        parties=[offer.developer_id],
    )
    _publish_offer(session, "offer.withdrawn", offer, now)
    return offer


def offers_of_request(session: Session, viewer: Principal, request_id: str) -> Select[Offer]:
    request = get_request(session, viewer, request_id)
    return visible_offers(viewer).where(Offer.request_id == request.id)


# ---------------------------------------------------------------- messages


def visible_messages(session: Session, viewer: Principal, request_id: str) -> Select[Message]:
    """Developers and operators see every thread of a request; a studio, only its own."""
    request = get_request(session, viewer, request_id)
    stmt = select(Message).where(Message.request_id == request.id)
    if viewer.is_studio:
        stmt = stmt.where(Message.studio_id == viewer.organization_id)
    return stmt


def post_message(
    session: Session, viewer: Principal, request_id: str, *, body: str, studio_id: str | None = None
) -> Message:
    """Write in a request's thread with one studio (or, with no studio, to the marketplace)."""
    request = get_request(session, viewer, request_id)
    if viewer.is_studio:
        studio_id = viewer.organization_id
    elif studio_id is not None:
        studio = session.get(Organization, studio_id)
        if studio is None or studio.kind != "studio":
            raise ValidationFailed(
                "studio_id is not a studio", errors={"studio_id": ["Not a studio."]}
            )
    message = Message(
        request_id=request.id,
        studio_id=studio_id,
        author_organization_id=viewer.organization_id,
        author_user_id=viewer.user_id,
        author_kind=viewer.kind,
        body=body,
    )
    session.add(message)
    session.flush()
    # The studio's copy of the event carries its own id, never an anonymous developer's.
    record_event(
        session,
        viewer,
        "message.posted",
        object_id=message.id,
        organization_id=studio_id or request.developer_id,
        parties=[request.developer_id],
        data={"request_id": request.id},
    )
    return message


def today(now: datetime | None = None) -> date:
    return (now or utcnow()).date()


#: Offers expired by one job run at most (the next run takes the rest).
EXPIRE_BATCH = 1000


def expire_offers(session: Session, *, now: datetime | None = None) -> list[str]:
    """Move open offers past their `expires_at` to `expired`, each with an `offer.expired`
    event at its expiry time, without anyone reading them (a scheduled job). Reads still
    derive `expired` from the clock meanwhile (Offer.current_status). Idempotent: an offer
    already moved, accepted or withdrawn is left alone."""
    now = now or utcnow()
    due = select(Offer).where(Offer.status == "open", Offer.expires_at <= now)
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)  # another run, or an accept in flight
    offers = list(session.scalars(due.order_by(Offer.expires_at, Offer.id).limit(EXPIRE_BATCH)))
    for offer in offers:
        offer.status, offer.decided_at = "expired", offer.expires_at
        record_event(
            session,
            None,
            "offer.expired",
            object_id=offer.id,
            organization_id=offer.studio_id,
            parties=[offer.developer_id],
            data={"request_id": offer.request_id, "expires_at": offer.expires_at.isoformat()},
            at=now,
        )
        _publish_offer(session, "offer.expired", offer, now)
    session.flush()
    return [offer.id for offer in offers]
