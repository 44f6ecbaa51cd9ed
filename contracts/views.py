"""What each viewer may see of a contract: the API's responses and webhook payloads alike."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from contracts.models import Contract, Signature
from marketplace.accounts.principal import Principal
from marketplace.core.db import utcnow


def developer_disclosed(contract: Contract, viewer: Principal) -> bool:
    """Anonymous deals hide the developer from the studio until the contract is signed."""
    if not contract.anonymous or not viewer.is_studio:
        return True
    return contract.signed_at is not None


def signatures_of(session: Session, contract_id: str) -> list[Signature]:
    return list(
        session.scalars(
            select(Signature).where(Signature.contract_id == contract_id).order_by(Signature.id)
        )
    )


def present_contract(
    session: Session, contract: Contract, who: Principal, *, today: date | None = None
) -> dict[str, Any]:
    """The contract as `who` may see it: anonymous deals hide the developer until signed."""
    disclosed = developer_disclosed(contract, who)
    signatures = []
    for s in signatures_of(session, contract.id):
        hidden = s.role == "developer" and not disclosed
        signatures.append(
            {
                "organization_id": None if hidden else s.organization_id,
                "user_id": None if hidden else s.user_id,
                "role": s.role,
                "signed_at": s.signed_at,
            }
        )
    return {
        "id": contract.id,
        "offer_id": contract.offer_id,
        "request_id": contract.request_id,
        "studio_id": contract.studio_id,
        "developer_id": contract.developer_id if disclosed else None,
        "terms": contract.terms,
        "title_ids": contract.title_ids,
        "document_sha256": contract.document_sha256,
        "status": contract.current_status(today or utcnow().date()),
        "signatures": signatures,
        "payment_status": contract.payment_status,
        "starts_on": contract.starts_on,
        "ends_on": contract.ends_on,
        "exclusive": contract.exclusive,
        "amount_cents": contract.amount_cents,
        "currency": contract.currency,
        "created_at": contract.created_at,
        "signed_at": contract.signed_at,
        "terminated_at": contract.terminated_at,
        "termination_reason": contract.termination_reason,
    }
