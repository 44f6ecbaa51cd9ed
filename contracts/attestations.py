"""Usage attestations: what the developer says it did with the data, and the deletion duty."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, and_, exists, not_, or_, select
from sqlalchemy.orm import Session

from catalog.models import Asset
from contracts.models import Attestation, Contract, ContractManifest
from contracts.service import get_contract
from marketplace.accounts.principal import Principal
from marketplace.audit.service import record_event
from marketplace.core.db import utcnow
from marketplace.core.errors import Forbidden, InvalidState, ValidationFailed

DELETION_GRACE = timedelta(days=30)


def create_attestation(
    session: Session,
    viewer: Principal,
    contract_id: str,
    data: dict[str, Any],
    *,
    now: datetime | None = None,
) -> Attestation:
    """Record the developer's attestation of a training run, an evaluation or a deletion."""
    now = now or utcnow()
    contract = get_contract(session, viewer, contract_id)
    if viewer.organization_id != contract.developer_id:
        raise Forbidden("only the licensee attests its use of the data")
    if contract.signed_at is None:
        raise InvalidState("the contract was never signed; there is no use to attest")
    asset_ids = sorted(set(data.get("asset_ids") or []))
    if asset_ids:
        known = set(
            session.scalars(
                select(Asset.id).where(
                    Asset.id.in_(asset_ids), Asset.title_id.in_(contract.title_ids)
                )
            )
        )
        unknown = [a for a in asset_ids if a not in known]
        if unknown:
            raise ValidationFailed(
                "asset_ids names assets outside this contract",
                errors={"asset_ids": [f"Not an asset of this contract: {a}." for a in unknown]},
            )
    manifest_sha256 = _manifest_named(session, contract, data.get("manifest_sha256"))
    started, finished = data.get("started_at"), data.get("finished_at")
    if started and finished and finished < started:
        raise ValidationFailed(
            "finished_at is before started_at",
            errors={"finished_at": ["Must not be before started_at."]},
        )
    attestation = Attestation(
        contract_id=contract.id,
        kind=data["kind"],
        model_name=data.get("model_name"),
        model_version=data.get("model_version"),
        started_at=started,
        finished_at=finished,
        asset_ids=asset_ids,
        statement=data["statement"],
        manifest_sha256=manifest_sha256,
        created_by=viewer.user_id,
        created_at=now,
    )
    session.add(attestation)
    session.flush()
    record_event(
        session,
        viewer,
        f"attestation.{data['kind']}",
        object_id=attestation.id,
        organization_id=contract.studio_id,
        parties=[contract.developer_id],
        data={
            "contract_id": contract.id,
            "model_name": data.get("model_name"),
            "manifest_sha256": manifest_sha256,
        },
    )
    return attestation


def _manifest_named(session: Session, contract: Contract, wanted: str | None) -> str | None:
    """The manifest version an attestation names: one of the contract's, the latest if None."""
    if wanted is None:
        return session.scalar(
            select(ContractManifest.manifest_sha256)
            .where(ContractManifest.contract_id == contract.id)
            .order_by(ContractManifest.version.desc())
            .limit(1)
        )
    known = session.scalar(
        select(ContractManifest.version).where(
            ContractManifest.contract_id == contract.id,
            ContractManifest.manifest_sha256 == wanted,
        )
    )
    if known is None:
        raise ValidationFailed(
            "manifest_sha256 names no manifest of this contract",
            errors={"manifest_sha256": ["Not a manifest version of this contract."]},
        )
    return wanted


def attestations_stmt(session: Session, viewer: Principal, contract_id: str) -> Select[Attestation]:
    contract = get_contract(session, viewer, contract_id)
    return select(Attestation).where(Attestation.contract_id == contract.id)


def overdue_filter(today: date) -> Any:
    """Contracts that ended over 30 days ago, were signed, and lack a deletion attestation."""
    cutoff = today - DELETION_GRACE
    cutoff_at = datetime.combine(cutoff, time.min, tzinfo=UTC)
    ended_long_ago = or_(
        and_(Contract.terminated_at.is_not(None), Contract.terminated_at < cutoff_at),
        Contract.ends_on < cutoff,
    )
    has_deletion = exists().where(
        Attestation.contract_id == Contract.id, Attestation.kind == "deletion"
    )
    return and_(Contract.signed_at.is_not(None), ended_long_ago, not_(has_deletion))
