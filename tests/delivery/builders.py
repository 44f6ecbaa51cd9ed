"""Contracts over chosen titles, inserted as plain rows, for delivery tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

from sqlalchemy.orm import Session

from contracts.manifests import freeze_manifest
from contracts.models import Contract, ContractTitle
from marketplace.core.ids import new_id
from tests.world import World


def today() -> date:
    """Today as the API sees it (UTC)."""
    return datetime.now(UTC).date()


def make_contract(
    session: Session,
    world: World,
    title_ids: Sequence[str],
    *,
    studio: str = "studio_a",
    developer: str = "developer_x",
    status: str = "active",
    quota_downloads: int = 100,
    quota_bytes: int = 10**12,
    starts_on: date | None = None,
    ends_on: date | None = None,
) -> Contract:
    """A contract between `studio` and `developer` over `title_ids`, in force today by default."""
    signed = status != "pending_signatures"
    contract = Contract(
        offer_id=new_id("ofr"),
        request_id=new_id("req"),
        studio_id=world[studio].org_id,
        developer_id=world[developer].org_id,
        terms={"licensee": {"reference": "L"}},
        title_ids=sorted(title_ids),
        uses=["train"],
        territories=["US"],
        starts_on=starts_on or today() - timedelta(days=30),
        ends_on=ends_on or today() + timedelta(days=30),
        amount_cents=100_000,
        currency="usd",
        content_seconds=7200.0,
        quota_bytes=quota_bytes,
        quota_downloads=quota_downloads,
        document="agreement",
        document_sha256="ab" * 32,
        status=status,
        payment_status="paid" if status == "active" else "unpaid",
        signed_at=datetime.now(UTC) if signed else None,
    )
    session.add(contract)
    session.flush()
    session.add_all(ContractTitle(contract_id=contract.id, title_id=t) for t in set(title_ids))
    session.flush()
    if signed:  # as sign_contract does: the manifest is frozen from the assets ready now
        freeze_manifest(session, contract)
    return contract
