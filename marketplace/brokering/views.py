"""What each viewer may see of requests, offers and messages: the API's responses and webhook
payloads alike (an anonymous developer stays hidden from studios until a contract is signed)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from contracts.models import Contract
from marketplace.accounts.principal import Principal
from marketplace.brokering.models import LicenseRequest, Message, Offer
from marketplace.core.db import utcnow


def developer_hidden(session: Session, request: LicenseRequest, viewer: Principal) -> bool:
    """True while a studio must not learn who an anonymous request comes from."""
    if not request.anonymous or not viewer.is_studio:
        return False
    signed = session.scalar(
        select(
            exists().where(
                Contract.request_id == request.id,
                Contract.studio_id == viewer.organization_id,
                Contract.signed_at.is_not(None),
            )
        )
    )
    return not signed


def present_request(session: Session, request: LicenseRequest, who: Principal) -> dict[str, Any]:
    hidden = developer_hidden(session, request, who)
    return {
        **{
            c: getattr(request, c)
            for c in (
                "id",
                "title_ids",
                "criteria",
                "uses",
                "territories",
                "start",
                "end",
                "exclusive",
                "budget_cents",
                "currency",
                "message",
                "anonymous",
                "status",
                "created_at",
                "closed_at",
            )
        },
        "developer_id": None if hidden else request.developer_id,
    }


def present_offer(session: Session, offer: Offer, who: Principal) -> dict[str, Any]:
    contract_id = session.scalar(select(Contract.id).where(Contract.offer_id == offer.id))
    return {
        **{
            c: getattr(offer, c)
            for c in (
                "id",
                "request_id",
                "studio_id",
                "title_ids",
                "uses",
                "territories",
                "start",
                "end",
                "exclusive",
                "total_cents",
                "expires_at",
                "proposed_by",
                "brokered",
                "previous_offer_id",
                "message",
                "created_at",
                "decided_at",
            )
        },
        "pricing": {
            "model": offer.pricing_model,
            "amount_cents": offer.amount_cents,
            "currency": offer.currency,
        },
        "quota": {"bytes": offer.quota_bytes, "downloads": offer.quota_downloads},
        "status": offer.current_status(utcnow()),
        "contract_id": contract_id,
    }


def present_message(
    session: Session, message: Message, who: Principal, request: LicenseRequest
) -> dict[str, Any]:
    hidden = message.author_kind == "developer" and developer_hidden(session, request, who)
    return {
        "id": message.id,
        "request_id": message.request_id,
        "studio_id": message.studio_id,
        "author_organization_id": None if hidden else message.author_organization_id,
        "author_kind": message.author_kind,
        "body": message.body,
        "created_at": message.created_at,
    }
