"""Contract lifecycle: creation from an accepted offer, signatures, exclusivity, termination."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from catalog.clearance import ClearanceRequest, Reason
from catalog.coverage import territories_overlap
from catalog.models import Title
from catalog.rules import CatalogRules
from contracts.documents import (
    Party,
    TitleLine,
    canonical_terms,
    document_sha256,
    new_licensee_reference,
    render_document,
)
from contracts.errors import DocumentMismatch, ExclusivityConflict
from contracts.manifests import freeze_manifest
from contracts.models import Contract, ContractTitle, Signature
from contracts.views import present_contract, signatures_of
from marketplace.accounts.models import Organization
from marketplace.accounts.principal import Principal
from marketplace.audit.service import record_event
from marketplace.core.db import is_postgres, utcnow
from marketplace.core.errors import Conflict, Forbidden, InvalidState, NotFound
from marketplace.webhooks.service import publish

# Contracts that are in force (or will be): the ones exclusivity protects.
LIVE_STATUSES = ("signed", "active")


@dataclass(frozen=True)
class ContractDraft:
    """Everything an accepted offer fixes; brokering hands this over at acceptance."""

    offer_id: str
    request_id: str
    studio_id: str
    developer_id: str
    anonymous: bool
    title_ids: list[str]
    uses: list[str]
    territories: list[str]
    start: date
    end: date
    exclusive: bool
    pricing: dict[str, Any]
    amount_cents: int
    currency: str
    content_seconds: float
    quota_bytes: int
    quota_downloads: int


@dataclass(frozen=True)
class ExclusivityClash:
    title_id: str
    contract_id: str
    uses: list[str]
    territories: list[str]
    starts_on: date
    ends_on: date


def visible_contracts(viewer: Principal) -> Select[Contract]:
    """Operators see every contract; a studio or developer, those it is a party to."""
    stmt = select(Contract)
    if viewer.is_operator:
        return stmt
    if viewer.is_studio:
        return stmt.where(Contract.studio_id == viewer.organization_id)
    return stmt.where(Contract.developer_id == viewer.organization_id)


def get_contract(
    session: Session, viewer: Principal, contract_id: str, *, lock: bool = False
) -> Contract:
    stmt = visible_contracts(viewer).where(Contract.id == contract_id)
    if lock:
        stmt = stmt.with_for_update()
    contract = session.scalars(stmt).one_or_none()
    if contract is None:
        raise NotFound(f"contract {contract_id} not found")
    return contract


def lock_titles(session: Session, title_ids: Sequence[str]) -> None:
    """Serialize exclusivity decisions per title (PostgreSQL; SQLite has one writer already)."""
    if is_postgres(session) and title_ids:
        session.execute(
            select(Title.id)
            .where(Title.id.in_(sorted(set(title_ids))))
            .order_by(Title.id)
            .with_for_update()
        )


def exclusivity_clashes(
    session: Session,
    *,
    title_ids: Sequence[str],
    uses: Sequence[str],
    territories: Sequence[str],
    start: date,
    end: date,
    exclusive: bool,
    exclude_contract_id: str | None = None,
) -> list[ExclusivityClash]:
    """Signed or active contracts that an (exclusive) licence on these terms would collide with.

    Two licences collide when either is exclusive and they share a title, a use, a territory
    (WW overlaps everything) and at least one day.
    """
    if not title_ids:
        return []
    stmt = (
        select(Contract, ContractTitle.title_id)
        .join(ContractTitle, ContractTitle.contract_id == Contract.id)
        .where(
            ContractTitle.title_id.in_(list(title_ids)),
            Contract.status.in_(LIVE_STATUSES),
            Contract.starts_on <= end,
            Contract.ends_on >= start,
        )
    )
    if not exclusive:
        stmt = stmt.where(Contract.exclusive.is_(True))
    if exclude_contract_id:
        stmt = stmt.where(Contract.id != exclude_contract_id)
    wanted_uses, wanted_territories = set(uses), set(territories)
    clashes = []
    for contract, title_id in session.execute(stmt):
        shared_uses = wanted_uses & set(contract.uses)
        if not shared_uses or not territories_overlap(
            wanted_territories, set(contract.territories)
        ):
            continue
        clashes.append(
            ExclusivityClash(
                title_id,
                contract.id,
                sorted(shared_uses),
                sorted(contract.territories),
                contract.starts_on,
                contract.ends_on,
            )
        )
    return clashes


def clash_details(clashes: Sequence[ExclusivityClash]) -> dict[str, list[str]]:
    """Human-readable reasons per title, naming no other party or contract."""
    by_title: dict[str, list[str]] = defaultdict(list)
    for c in clashes:
        by_title[c.title_id].append(
            f"an exclusive licence already covers {', '.join(c.uses)} in "
            f"{', '.join(c.territories)} from {c.starts_on} to {c.ends_on}"
        )
    return dict(by_title)


def create_contract(
    session: Session, actor: Principal, draft: ContractDraft, *, now: datetime | None = None
) -> Contract:
    """Create the contract for an accepted offer: terms, rendered agreement and its hash."""
    now = now or utcnow()
    studio = session.get(Organization, draft.studio_id)
    developer = session.get(Organization, draft.developer_id)
    if studio is None or developer is None:
        raise NotFound("a party of this offer no longer exists")
    titles = list(session.scalars(select(Title).where(Title.id.in_(draft.title_ids))))
    if len(titles) != len(set(draft.title_ids)):
        raise Conflict("a title of this offer no longer exists")
    terms = canonical_terms(
        offer_id=draft.offer_id,
        studio=Party(studio.id, studio.name),
        developer=Party(developer.id, developer.name),
        licensee_reference=new_licensee_reference() if draft.anonymous else None,
        titles=[TitleLine(t.id, t.name, t.kind, t.release_year, t.content_hours) for t in titles],
        uses=draft.uses,
        territories=draft.territories,
        start=draft.start,
        end=draft.end,
        exclusive=draft.exclusive,
        pricing=draft.pricing,
        amount_cents=draft.amount_cents,
        currency=draft.currency,
        quota_bytes=draft.quota_bytes,
        quota_downloads=draft.quota_downloads,
    )
    document = render_document(terms)
    contract = Contract(
        offer_id=draft.offer_id,
        request_id=draft.request_id,
        studio_id=draft.studio_id,
        developer_id=draft.developer_id,
        anonymous=draft.anonymous,
        terms=terms,
        title_ids=sorted(draft.title_ids),
        uses=sorted(draft.uses),
        territories=sorted(draft.territories),
        exclusive=draft.exclusive,
        starts_on=draft.start,
        ends_on=draft.end,
        amount_cents=draft.amount_cents,
        currency=draft.currency,
        content_seconds=draft.content_seconds,
        quota_bytes=draft.quota_bytes,
        quota_downloads=draft.quota_downloads,
        document=document,
        document_sha256=document_sha256(document),
        created_at=now,
    )
    session.add(contract)
    session.flush()
    session.add_all(ContractTitle(contract_id=contract.id, title_id=t) for t in contract.title_ids)
    record_event(
        session,
        actor,
        "contract.created",
        object_id=contract.id,
        organization_id=contract.studio_id,
        parties=[contract.developer_id],
        data={"offer_id": draft.offer_id, "document_sha256": contract.document_sha256},
    )
    session.flush()
    return contract


def publish_contract(
    session: Session, event_type: str, contract: Contract, now: datetime | None = None
) -> None:
    """Tell both parties' webhooks, each with the contract as the API shows it to them (an
    anonymous developer hidden from the studio until signed)."""
    today = (now or utcnow()).date()
    publish(
        session,
        event_type,
        organization_ids=[contract.studio_id, contract.developer_id],
        payload_for=lambda who: present_contract(session, contract, who, today=today),
        path=f"/api/v1/contracts/{contract.id}",
        object_id=contract.id,
        now=now,
    )


def signer_role(viewer: Principal, contract: Contract) -> str:
    if viewer.is_operator:
        return "operator"
    if viewer.organization_id == contract.studio_id:
        return "studio"
    return "developer"


def sign_contract(
    session: Session,
    viewer: Principal,
    contract_id: str,
    *,
    document_sha256_hex: str,
    now: datetime | None = None,
) -> Contract:
    """Sign the exact document hash; the operator's countersignature, last, makes it signed."""
    now = now or utcnow()
    contract = get_contract(session, viewer, contract_id, lock=True)
    if not (viewer.is_owner or viewer.is_operator):
        raise Forbidden("only an owner of the organization signs contracts")
    if contract.current_status(now.date()) != "pending_signatures":
        raise InvalidState(
            f"contract is {contract.current_status(now.date())}, not awaiting signatures"
        )
    if document_sha256_hex != contract.document_sha256:
        raise DocumentMismatch(
            "document_sha256 does not match the contract's document; fetch it again and re-read",
            errors={"document_sha256": ["Does not match the current document."]},
        )
    role = signer_role(viewer, contract)
    signed = {s.role for s in signatures_of(session, contract.id)}
    if role in signed:
        raise Conflict(f"the {role} has already signed this contract")
    if role == "operator" and not {"studio", "developer"} <= signed:
        raise InvalidState("the operator countersigns after both parties have signed")
    session.add(
        Signature(
            contract_id=contract.id,
            organization_id=viewer.organization_id,
            user_id=viewer.user_id,
            role=role,
            document_sha256=document_sha256_hex,
            signed_at=now,
        )
    )
    record_event(
        session,
        viewer,
        "contract.signed",
        object_id=contract.id,
        organization_id=contract.studio_id,
        parties=[contract.developer_id],
        data={"role": role, "document_sha256": document_sha256_hex},
    )
    if role != "operator":
        session.flush()
        publish_contract(session, "contract.signature_added", contract, now)
    if role == "operator":
        lock_titles(session, contract.title_ids)
        clashes = exclusivity_clashes(
            session,
            title_ids=contract.title_ids,
            uses=contract.uses,
            territories=contract.territories,
            start=contract.starts_on,
            end=contract.ends_on,
            exclusive=contract.exclusive,
            exclude_contract_id=contract.id,
        )
        if clashes:
            raise ExclusivityConflict(
                "another signed licence is exclusive over part of these terms",
                errors=clash_details(clashes),
            )
        contract.status = "signed"
        contract.signed_at = now
        freeze_manifest(session, contract, now=now)
        record_event(
            session,
            viewer,
            "contract.status_changed",
            object_id=contract.id,
            organization_id=contract.studio_id,
            parties=[contract.developer_id],
            data={"status": "signed"},
        )
        session.flush()
        publish_contract(session, "contract.signed", contract, now)
    session.flush()
    return contract


def terminate_contract(
    session: Session,
    viewer: Principal,
    contract_id: str,
    *,
    reason: str,
    now: datetime | None = None,
) -> Contract:
    """End a contract at once (operators); delivery stops with it."""
    now = now or utcnow()
    if not viewer.is_operator:
        get_contract(session, viewer, contract_id)  # 404 before 403 for non-parties
        raise Forbidden("only operators terminate contracts")
    contract = get_contract(session, viewer, contract_id, lock=True)
    status = contract.current_status(now.date())
    if status in ("terminated", "expired"):
        raise InvalidState(f"contract is already {status}")
    contract.status = "terminated"
    contract.terminated_at = now
    contract.termination_reason = reason
    record_event(
        session,
        viewer,
        "contract.terminated",
        object_id=contract.id,
        organization_id=contract.studio_id,
        parties=[contract.developer_id],
        data={"reason": reason, "previous_status": status},
    )
    session.flush()
    publish_contract(session, "contract.terminated", contract, now)
    return contract


def list_contracts_stmt(
    viewer: Principal, *, status: str | None = None, today: date
) -> Select[Contract]:
    stmt = visible_contracts(viewer)
    if status == "expired":
        stmt = stmt.where(Contract.status.in_(LIVE_STATUSES), Contract.ends_on < today)
    elif status in LIVE_STATUSES:
        stmt = stmt.where(Contract.status == status, Contract.ends_on >= today)
    elif status:
        stmt = stmt.where(Contract.status == status)
    return stmt


def exclusivity_check(
    session: Session, request: ClearanceRequest, titles: list[Title]
) -> dict[str, list[Reason]]:
    clashes = exclusivity_clashes(
        session,
        title_ids=[t.id for t in titles],
        uses=request.uses,
        territories=request.territories,
        start=request.window.start,
        end=request.window.end,
        exclusive=request.exclusive,
    )
    return {
        title_id: [Reason("exclusivity_conflict", detail) for detail in details]
        for title_id, details in clash_details(clashes).items()
    }


# Contracts that hold their titles: in signing, signed or active, and not past their end.
_HOLDING_STATUSES = ("pending_signatures", "signed", "active")


def licensed_title_guard(session: Session, title: Title) -> str | None:
    """Refuse to delete a title licensed, itself or through its series or season, under a
    contract in force: its assets would vanish from a paid manifest. Expired and terminated
    contracts hold nothing."""
    covering = {t for t in (title.id, title.parent_id, title.root_id) if t is not None}
    holding = session.execute(
        select(Contract.id, Contract.ends_on)
        .join(ContractTitle, ContractTitle.contract_id == Contract.id)
        .where(
            ContractTitle.title_id.in_(covering),
            Contract.status.in_(_HOLDING_STATUSES),
            Contract.ends_on >= utcnow().date(),
        )
        .distinct()
        .order_by(Contract.id)
    ).all()
    if not holding:
        return None
    until = max(ends_on for _, ends_on in holding)
    ids = ", ".join(contract_id for contract_id, _ in holding)
    return (
        f"it is licensed under contract {ids}, in force until {until.isoformat()}; it can be "
        "deleted once that has ended or been terminated"
    )


def catalog_rules() -> CatalogRules:
    """The catalog's rules that contracts add (the catalog cannot import us): `POST /clearance`
    and offers report `exclusivity_conflict`, and title deletion respects contracts in force."""
    return CatalogRules(
        clearance_checks=(exclusivity_check,), deletion_guards=(licensed_title_guard,)
    )


def expire_contracts(session: Session, *, today: date | None = None) -> list[str]:
    """Move signed and active contracts past their end to `expired`, each with a
    `contract.expired` event (a scheduled job); reads derive it from the date meanwhile
    (Contract.current_status). Idempotent."""
    today = today or utcnow().date()
    due = select(Contract).where(
        Contract.status.in_(("signed", "active")), Contract.ends_on < today
    )
    if is_postgres(session):
        due = due.with_for_update(skip_locked=True)
    contracts = list(session.scalars(due.order_by(Contract.ends_on, Contract.id).limit(1000)))
    for contract in contracts:
        previous, contract.status = contract.status, "expired"
        record_event(
            session,
            None,
            "contract.expired",
            object_id=contract.id,
            organization_id=contract.studio_id,
            parties=[contract.developer_id],
            data={"ends_on": contract.ends_on.isoformat(), "was": previous},
        )
        session.flush()
        publish_contract(session, "contract.expired", contract)
    session.flush()
    return [contract.id for contract in contracts]
