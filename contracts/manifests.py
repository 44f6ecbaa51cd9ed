"""Manifests frozen at signature: the list of assets a contract licenses, as it was then.

A manifest used to be recomputed from the title's ready assets on every read, so it drifted
whenever a studio added, replaced or removed a file. It is now written once, when the
operator's countersignature makes the contract signed (version 1), and every reader (the
manifest route, grants, `marketplace pull`, attestations, the lineage record) names that
version by its `manifest_sha256`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, insert, or_, select
from sqlalchemy.orm import Session

from catalog.models import Asset, Title
from contracts.models import Contract, ContractManifest, ContractTitle, ManifestEntry
from marketplace.core.db import utcnow
from marketplace.core.errors import InvalidState


def canonical_bytes(contract_id: str, assets: Sequence[Mapping[str, Any]]) -> bytes:
    """The exact bytes signed: `{"assets", "contract_id"}` as sorted-key compact UTF-8 JSON."""
    document = {"contract_id": contract_id, "assets": [dict(a) for a in assets]}
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def manifest_assets_stmt(contract: Contract) -> Select[Asset]:
    """Ready assets of the contract's titles and of their descendants (a series' episodes)."""
    licensed = select(ContractTitle.title_id).where(ContractTitle.contract_id == contract.id)
    return (
        select(Asset)
        .join(Title, Title.id == Asset.title_id)
        .where(
            Asset.status == "ready",
            Asset.studio_id == contract.studio_id,
            or_(
                Title.id.in_(licensed),
                Title.parent_id.in_(licensed),
                Title.root_id.in_(licensed),
            ),
        )
    )


@dataclass(frozen=True, slots=True)
class FrozenManifest:
    contract_id: str
    version: int
    manifest_sha256: str
    created_at: datetime
    assets: list[dict[str, Any]]


def freeze_manifest(
    session: Session, contract: Contract, *, now: datetime | None = None
) -> ContractManifest:
    """Write the next manifest version of `contract` from its titles' ready assets now."""
    now = now or utcnow()
    latest = session.scalar(
        select(ContractManifest.version)
        .where(ContractManifest.contract_id == contract.id)
        .order_by(ContractManifest.version.desc())
        .limit(1)
    )
    version = (latest or 0) + 1
    entries = [
        {
            "asset_id": a.id,
            "title_id": a.title_id,
            "kind": a.kind,
            "byte_size": a.byte_size,
            "sha256": a.sha256,
        }
        for a in session.scalars(manifest_assets_stmt(contract).order_by(Asset.id))
    ]
    manifest = ContractManifest(
        contract_id=contract.id,
        version=version,
        manifest_sha256=hashlib.sha256(canonical_bytes(contract.id, entries)).hexdigest(),
        asset_count=len(entries),
        byte_size=sum(e["byte_size"] for e in entries),
        created_at=now,
    )
    session.add(manifest)
    session.flush()
    if entries:
        session.execute(
            insert(ManifestEntry),
            [{"contract_id": contract.id, "version": version, **e} for e in entries],
        )
    return manifest


def current_manifest(session: Session, contract: Contract) -> ContractManifest:
    """The latest frozen version of a signed contract's manifest."""
    if contract.signed_at is None:
        raise InvalidState(
            f"contract {contract.id} is {contract.status}: its manifest exists once it is signed"
        )
    manifest = session.scalar(
        select(ContractManifest)
        .where(ContractManifest.contract_id == contract.id)
        .order_by(ContractManifest.version.desc())
        .limit(1)
    )
    if manifest is None:  # signed with no manifest written: a bug, not the caller's fault
        raise RuntimeError(f"contract {contract.id} is signed but has no frozen manifest")
    return manifest


def load_manifest(session: Session, contract: Contract) -> FrozenManifest:
    """The latest frozen manifest with its entries, checked against its stored hash."""
    manifest = current_manifest(session, contract)
    entries = [
        e.as_dict()
        for e in session.scalars(
            select(ManifestEntry)
            .where(
                ManifestEntry.contract_id == contract.id,
                ManifestEntry.version == manifest.version,
            )
            .order_by(ManifestEntry.asset_id)
        )
    ]
    digest = hashlib.sha256(canonical_bytes(contract.id, entries)).hexdigest()
    if digest != manifest.manifest_sha256:
        raise RuntimeError(
            f"manifest {manifest.version} of contract {contract.id} does not match its hash"
        )
    return FrozenManifest(
        contract_id=contract.id,
        version=manifest.version,
        manifest_sha256=manifest.manifest_sha256,
        created_at=manifest.created_at,
        assets=entries,
    )


def manifest_entries(
    session: Session, manifest: ContractManifest, asset_ids: Sequence[str]
) -> dict[str, ManifestEntry]:
    """The entries of `manifest` among `asset_ids`, by asset id (one query)."""
    rows = session.scalars(
        select(ManifestEntry).where(
            ManifestEntry.contract_id == manifest.contract_id,
            ManifestEntry.version == manifest.version,
            ManifestEntry.asset_id.in_(set(asset_ids)),
        )
    )
    return {r.asset_id: r for r in rows}
