"""Delivery use cases: the signed manifest, metered download grants, usage, the delivery log.

Metering is one conditional UPDATE … RETURNING on the contract row: the database decides, under
any concurrency, whether one more download of n bytes still fits, and counts it in the same
statement. Nothing is read, compared in Python and written back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import PurePosixPath
from typing import NoReturn

from sqlalchemy import Select, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from catalog.errors import StorageUnavailableError
from catalog.models import Asset, Title
from contracts.models import Contract, ContractTitle
from contracts.service import get_contract
from marketplace.accounts.principal import Principal
from marketplace.audit.service import record_event
from marketplace.core.db import utcnow
from marketplace.core.errors import Forbidden, InvalidState, NotFound, ValidationFailed
from marketplace.core.health import StorageHealth
from marketplace.core.storage import ObjectStorage, StorageUnavailable, range_headers
from marketplace.delivery.errors import QuotaExceeded
from marketplace.delivery.manifest import SignedManifest, sign_manifest
from marketplace.delivery.models import Download

_SAFE_SUFFIX = re.compile(r"^\.[A-Za-z0-9]{1,10}$")


@dataclass(frozen=True)
class DownloadGrant:
    download: Download
    url: str

    @property
    def headers(self) -> dict[str, str]:
        """What the downloader must send with the URL: the Range it is signed for, if any."""
        d = self.download
        if d.first_byte is None or d.last_byte is None:
            return {}
        return range_headers((d.first_byte, d.last_byte))


@dataclass(frozen=True)
class Usage:
    downloads_used: int
    downloads_quota: int
    bytes_used: int
    bytes_quota: int


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


def _require_signed(contract: Contract) -> None:
    if contract.signed_at is None:
        raise InvalidState(
            f"contract {contract.id} is {contract.status}: its manifest exists once it is signed"
        )


def contract_manifest(
    session: Session, viewer: Principal, contract_id: str, *, secret_key: str
) -> SignedManifest:
    """Return the signed list of assets a signed contract licenses (parties and operators)."""
    contract = get_contract(session, viewer, contract_id)
    _require_signed(contract)
    assets = session.scalars(manifest_assets_stmt(contract).order_by(Asset.id))
    entries = [
        {
            "asset_id": a.id,
            "title_id": a.title_id,
            "kind": a.kind,
            "byte_size": a.byte_size,
            "sha256": a.sha256,
        }
        for a in assets
    ]
    return sign_manifest(secret_key, contract.id, entries)


def _inactive_reason(contract: Contract, today: date) -> str | None:
    status = contract.current_status(today)
    if status == "active" and today < contract.starts_on:
        return f"contract {contract.id} starts on {contract.starts_on}"
    if status != "active":
        return f"contract {contract.id} is {status}: only an active contract delivers"
    return None


def _download_filename(asset: Asset) -> str:
    # Name the file by its manifest id: the studio's own path (and title names) stay private.
    suffix = PurePosixPath(asset.storage_key).suffix
    return asset.id + (suffix if _SAFE_SUFFIX.match(suffix) else "")


def grant_download(
    session: Session,
    viewer: Principal,
    contract_id: str,
    asset_id: str,
    *,
    storage: ObjectStorage,
    storage_health: StorageHealth,
    ttl_seconds: int,
    first_byte: int | None = None,
    last_byte: int | None = None,
    now: datetime | None = None,
) -> DownloadGrant:
    """Count one download of an asset against the quota and return a presigned GET URL.

    With first_byte (and last_byte, inclusive; the asset's last byte if None), the download
    is of that range only: its bytes are the ones counted, and the URL serves nothing else.
    While the store is known to be down, nothing is counted: StorageUnavailableError (503).
    """
    now = now or utcnow()
    today = now.date()
    contract = get_contract(session, viewer, contract_id)
    # Only the licensee downloads: operators mediate, they do not take delivery of content.
    if viewer.organization_id != contract.developer_id:
        raise Forbidden("only the licensee downloads a contract's assets")
    reason = _inactive_reason(contract, today)
    if reason is not None:
        raise InvalidState(reason)
    asset = session.scalars(
        manifest_assets_stmt(contract).where(Asset.id == asset_id)
    ).one_or_none()
    if asset is None:
        raise NotFound(f"asset {asset_id} is not in the manifest of contract {contract.id}")
    byte_range = _byte_range(asset, first_byte, last_byte)
    byte_size = asset.byte_size if byte_range is None else byte_range[1] - byte_range[0] + 1
    # Signing a URL never touches the store: without this, a grant would be counted (and a
    # retry counted again) for a URL nobody can fetch.
    if not storage_health.is_up():
        raise StorageUnavailableError(
            "the object store is unavailable: no download was granted or counted; retry later",
            retry_after=storage_health.retry_after_seconds,
        )
    counted = session.execute(
        update(Contract)
        .where(
            Contract.id == contract.id,
            # Repeated here, not only checked above: a termination committed meanwhile wins.
            Contract.status == "active",
            Contract.starts_on <= today,
            Contract.ends_on >= today,
            Contract.downloads_used + 1 <= Contract.quota_downloads,
            Contract.bytes_used + byte_size <= Contract.quota_bytes,
        )
        .values(
            downloads_used=Contract.downloads_used + 1,
            bytes_used=Contract.bytes_used + byte_size,
        )
        .returning(Contract.downloads_used, Contract.bytes_used),
        execution_options={"synchronize_session": False},
    ).one_or_none()
    if counted is None:
        _refuse(session, contract, byte_size, today)
    # Keep the loaded row truthful without marking it dirty (no second UPDATE at flush).
    set_committed_value(contract, "downloads_used", counted.downloads_used)
    set_committed_value(contract, "bytes_used", counted.bytes_used)
    download = Download(
        contract_id=contract.id,
        asset_id=asset.id,
        title_id=asset.title_id,
        organization_id=viewer.organization_id,
        user_id=viewer.user_id,
        byte_size=byte_size,
        sha256=asset.sha256,
        first_byte=None if byte_range is None else byte_range[0],
        last_byte=None if byte_range is None else byte_range[1],
        created_at=now,
        expires_at=now + timedelta(seconds=ttl_seconds),
    )
    session.add(download)
    session.flush()
    record_event(
        session,
        viewer,
        "download.granted",
        object_id=download.id,
        organization_id=contract.studio_id,
        parties=[contract.developer_id],
        data={
            "contract_id": contract.id,
            "asset_id": asset.id,
            "title_id": asset.title_id,
            "byte_size": byte_size,
            "byte_range": None if byte_range is None else list(byte_range),
            "downloads_used": counted.downloads_used,
            "bytes_used": counted.bytes_used,
        },
        at=now,
    )
    try:
        url = storage.presign_get(
            asset.storage_key,
            expires_in=ttl_seconds,
            filename=_download_filename(asset),
            byte_range=byte_range,
        )
    except StorageUnavailable as exc:  # signing is local for S3; the request rolls back
        raise StorageUnavailableError(retry_after=storage_health.retry_after_seconds) from exc
    return DownloadGrant(download=download, url=url)


def _byte_range(
    asset: Asset, first_byte: int | None, last_byte: int | None
) -> tuple[int, int] | None:
    """The range asked for, checked against the asset's size; None for the whole asset."""
    if first_byte is None:
        if last_byte is not None:
            raise ValidationFailed(
                "a range starts at its first byte",
                errors={"range.first_byte": ["Missing data for required field."]},
            )
        return None
    last = asset.byte_size - 1 if last_byte is None else last_byte
    if first_byte < 0 or last < first_byte:
        raise ValidationFailed(
            "a range runs from its first byte to a last byte not before it",
            errors={"range": ["last_byte must not be before first_byte (both from 0)."]},
        )
    if last >= asset.byte_size:
        raise ValidationFailed(
            f"asset {asset.id} has {asset.byte_size} bytes",
            errors={"range": [f"Asset has {asset.byte_size} bytes: 0 to {asset.byte_size - 1}."]},
        )
    return first_byte, last


def _refuse(session: Session, contract: Contract, byte_size: int, today: date) -> NoReturn:
    """Explain why the conditional UPDATE matched no row, from the row as it is now."""
    session.refresh(contract)
    reason = _inactive_reason(contract, today)
    if reason is not None:
        raise InvalidState(reason)
    if contract.downloads_used + 1 > contract.quota_downloads:
        raise QuotaExceeded(
            f"all {contract.quota_downloads} downloads of contract {contract.id} are used"
        )
    raise QuotaExceeded(
        f"{byte_size} more bytes would pass the quota of contract {contract.id}: "
        f"{contract.bytes_used} of {contract.quota_bytes} bytes are used"
    )


def contract_usage(session: Session, viewer: Principal, contract_id: str) -> Usage:
    """Return the contract's downloads and bytes used against its quota."""
    contract = get_contract(session, viewer, contract_id)
    return Usage(
        downloads_used=contract.downloads_used,
        downloads_quota=contract.quota_downloads,
        bytes_used=contract.bytes_used,
        bytes_quota=contract.quota_bytes,
    )


def visible_downloads(viewer: Principal) -> Select[Download]:
    """Every download `viewer` may see, across contracts: operators all; a studio those of its
    contracts (its assets, whoever took them); a developer its own organization's."""
    stmt = select(Download)
    if viewer.is_operator:
        return stmt
    if viewer.is_studio:
        own = select(Contract.id).where(Contract.studio_id == viewer.organization_id)
        return stmt.where(Download.contract_id.in_(own))
    return stmt.where(Download.organization_id == viewer.organization_id)


def downloads_stmt(session: Session, viewer: Principal, contract_id: str) -> Select[Download]:
    """The contract's delivery log (who got which asset when), for parties and operators."""
    contract = get_contract(session, viewer, contract_id)
    return select(Download).where(Download.contract_id == contract.id)
