"""Delivery use cases: the frozen signed manifest, metered download grants, usage, the log.

Metering is one conditional UPDATE … RETURNING on the contract row: the database decides, under
any concurrency, whether a whole batch of downloads and its bytes still fits, and counts it in
the same statement. Nothing is read, compared in Python and written back.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import PurePosixPath
from typing import Any, NoReturn

from sqlalchemy import Select, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from catalog.errors import StorageUnavailableError
from catalog.models import Asset
from contracts.manifests import current_manifest, load_manifest, manifest_entries
from contracts.models import Contract, ManifestEntry
from contracts.service import get_contract
from marketplace.accounts.principal import Principal
from marketplace.audit.service import record_event
from marketplace.core.db import utcnow
from marketplace.core.errors import Forbidden, InvalidState, NotFound, ValidationFailed
from marketplace.core.health import StorageHealth
from marketplace.core.ids import new_id
from marketplace.core.storage import ObjectStorage, StorageUnavailable, range_headers
from marketplace.delivery.errors import QuotaExceeded
from marketplace.delivery.manifest import SignedManifest, sign_manifest
from marketplace.delivery.models import Download

_SAFE_SUFFIX = re.compile(r"^\.[A-Za-z0-9]{1,10}$")


@dataclass(frozen=True, slots=True)
class GrantRequest:
    """One item of a grant: an asset of the manifest, whole or a byte range of it."""

    asset_id: str
    first_byte: int | None = None
    last_byte: int | None = None


@dataclass(frozen=True)
class DownloadGrant:
    download: Download
    url: str
    filename: str

    @property
    def headers(self) -> dict[str, str]:
        """What the downloader must send with the URL: the Range it is signed for, if any."""
        d = self.download
        if d.first_byte is None or d.last_byte is None:
            return {}
        return range_headers((d.first_byte, d.last_byte))


@dataclass(frozen=True)
class BatchGrant:
    grants: list[DownloadGrant]
    manifest_version: int
    manifest_sha256: str
    downloads_used: int
    bytes_used: int


@dataclass(frozen=True)
class Usage:
    downloads_used: int
    downloads_quota: int
    bytes_used: int
    bytes_quota: int


def contract_manifest(
    session: Session, viewer: Principal, contract_id: str, *, secret_key: str
) -> SignedManifest:
    """Return the signed manifest frozen at signature (parties and operators)."""
    contract = get_contract(session, viewer, contract_id)
    frozen = load_manifest(session, contract)
    return sign_manifest(
        secret_key,
        contract.id,
        frozen.assets,
        version=frozen.version,
        frozen_at=frozen.created_at,
    )


def _inactive_reason(contract: Contract, today: date) -> str | None:
    status = contract.current_status(today)
    if status == "active" and today < contract.starts_on:
        return f"contract {contract.id} starts on {contract.starts_on}"
    if status != "active":
        return f"contract {contract.id} is {status}: only an active contract delivers"
    return None


def _download_filename(asset_id: str, storage_key: str) -> str:
    # Name the file by its manifest id: the studio's own path (and title names) stay private.
    suffix = PurePosixPath(storage_key).suffix
    return asset_id + (suffix if _SAFE_SUFFIX.match(suffix) else "")


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
    is of that range only, and the URL serves nothing else (see grant_downloads for what a
    range counts). While the store is known to be down, nothing is counted (503).
    """
    batch = grant_downloads(
        session,
        viewer,
        contract_id,
        [GrantRequest(asset_id, first_byte, last_byte)],
        storage=storage,
        storage_health=storage_health,
        ttl_seconds=ttl_seconds,
        now=now,
        audit_each=True,
    )
    return batch.grants[0]


@dataclass(slots=True)
class _Coverage:
    """The bytes of one asset already granted under the contract, as merged intervals."""

    intervals: list[tuple[int, int]]
    granted: bool = False  # any earlier grant of the asset (an empty asset covers no byte)

    def add(self, first: int, last: int) -> int:
        """Cover [first, last]; return how many of its bytes were not covered before."""
        self.granted = True
        if last < first:
            return 0
        new = last - first + 1
        for a, b in self.intervals:
            overlap = min(b, last) - max(a, first) + 1
            if overlap > 0:
                new -= overlap
        merged: list[tuple[int, int]] = []
        for a, b in sorted([*self.intervals, (first, last)]):
            if merged and a <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], b))
            else:
                merged.append((a, b))
        self.intervals = merged
        return new


def _coverage(session: Session, contract_id: str, asset_ids: set[str]) -> dict[str, _Coverage]:
    """What earlier grants of these assets under the contract have covered (one query)."""
    covered = {a: _Coverage([]) for a in asset_ids}
    if not asset_ids:
        return covered
    rows = session.execute(
        select(Download.asset_id, Download.first_byte, Download.last_byte, Download.byte_size)
        .where(Download.contract_id == contract_id, Download.asset_id.in_(asset_ids))
        .order_by(Download.id)
    )
    for asset_id, first, last, size in rows:
        if first is None or last is None:
            covered[asset_id].add(0, size - 1)
        else:
            covered[asset_id].add(first, last)
    return covered


def grant_downloads(
    session: Session,
    viewer: Principal,
    contract_id: str,
    wanted: Sequence[GrantRequest],
    *,
    storage: ObjectStorage,
    storage_health: StorageHealth,
    ttl_seconds: int,
    now: datetime | None = None,
    audit_each: bool = False,
) -> BatchGrant:
    """Grant presigned downloads of manifest assets, counted against the quota all or none.

    A whole-asset grant counts one download and the asset's bytes, every time (API.md). The
    parts of an asset (ranged grants) count as one download and each byte once: a range counts
    only the bytes no earlier grant of that asset under this contract (whole or ranged, in
    this batch or before) covered, and a download only if the asset was never granted before.
    So a download resumed, or fetched in parallel pieces, is counted once.

    The whole batch is counted by one conditional UPDATE of the contract row: under any
    concurrency either every grant fits and is counted, or none is (429). One audit event
    lists the batch's grants (`audit_each`: one `download.granted` per grant, as the
    single-asset form always wrote).
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
    manifest = current_manifest(session, contract)
    entries = manifest_entries(session, manifest, [w.asset_id for w in wanted])
    keys: dict[str, str] = {
        asset_id: key
        for asset_id, key in session.execute(
            select(Asset.id, Asset.storage_key).where(Asset.id.in_(set(entries)))
        )
    }
    for w in wanted:
        if w.asset_id not in entries:
            raise NotFound(f"asset {w.asset_id} is not in the manifest of contract {contract.id}")
        if w.asset_id not in keys:
            raise NotFound(f"asset {w.asset_id} of contract {contract.id} is no longer stored")
    ranges = [_byte_range(entries[w.asset_id], w.first_byte, w.last_byte) for w in wanted]
    # Signing a URL never touches the store: without this, a grant would be counted (and a
    # retry counted again) for a URL nobody can fetch.
    if not storage_health.is_up():
        raise StorageUnavailableError(
            "the object store is unavailable: no download was granted or counted; retry later",
            retry_after=storage_health.retry_after_seconds,
        )
    ranged_assets = {w.asset_id for w, r in zip(wanted, ranges, strict=True) if r is not None}
    if ranged_assets:
        # What a part counts depends on the grants before it: take the contract row's lock
        # first, so two batches of parts of one asset cannot both count the same bytes.
        session.execute(
            select(Contract.id).where(Contract.id == contract.id).with_for_update()
        ).one()
    coverage = _coverage(session, contract.id, ranged_assets)
    counts: list[tuple[int, int, bool]] = []  # (bytes served, bytes counted, download counted)
    for w, r in zip(wanted, ranges, strict=True):
        size = entries[w.asset_id].byte_size
        if r is None:
            if w.asset_id in coverage:  # a later part in this batch is then covered
                coverage[w.asset_id].add(0, size - 1)
            counts.append((size, size, True))
            continue
        cover = coverage[w.asset_id]
        first_time = not cover.granted
        counts.append((r[1] - r[0] + 1, cover.add(r[0], r[1]), first_time))
    downloads = sum(1 for _, _, d in counts if d)
    byte_count = sum(c for _, c, _ in counts)
    counted = session.execute(
        update(Contract)
        .where(
            Contract.id == contract.id,
            # Repeated here, not only checked above: a termination committed meanwhile wins.
            Contract.status == "active",
            Contract.starts_on <= today,
            Contract.ends_on >= today,
            Contract.downloads_used + downloads <= Contract.quota_downloads,
            Contract.bytes_used + byte_count <= Contract.quota_bytes,
        )
        .values(
            downloads_used=Contract.downloads_used + downloads,
            bytes_used=Contract.bytes_used + byte_count,
        )
        .returning(Contract.downloads_used, Contract.bytes_used),
        execution_options={"synchronize_session": False},
    ).one_or_none()
    if counted is None:
        _refuse(session, contract, downloads, byte_count, today)
    # Keep the loaded row truthful without marking it dirty (no second UPDATE at flush).
    set_committed_value(contract, "downloads_used", counted.downloads_used)
    set_committed_value(contract, "bytes_used", counted.bytes_used)
    expires_at = now + timedelta(seconds=ttl_seconds)
    rows = [
        {
            "id": new_id("dl"),
            "contract_id": contract.id,
            "asset_id": w.asset_id,
            "title_id": entries[w.asset_id].title_id,
            "organization_id": viewer.organization_id,
            "user_id": viewer.user_id,
            "byte_size": served,
            "sha256": entries[w.asset_id].sha256,
            "first_byte": None if r is None else r[0],
            "last_byte": None if r is None else r[1],
            "counted_bytes": counted_bytes,
            "counted_download": counted_download,
            "manifest_version": manifest.version,
            "created_at": now,
            "expires_at": expires_at,
        }
        for w, r, (served, counted_bytes, counted_download) in zip(
            wanted, ranges, counts, strict=True
        )
    ]
    session.execute(insert(Download), rows)
    audited: list[dict[str, Any]] = [
        {
            "id": row["id"],
            "asset_id": row["asset_id"],
            "title_id": row["title_id"],
            "byte_size": row["byte_size"],
            "byte_range": None if r is None else list(r),
            "counted_bytes": row["counted_bytes"],
            "counted_download": row["counted_download"],
        }
        for row, r in zip(rows, ranges, strict=True)
    ]
    common = {
        "contract_id": contract.id,
        "manifest_version": manifest.version,
        "downloads_used": counted.downloads_used,
        "bytes_used": counted.bytes_used,
    }
    if audit_each:
        for item in audited:
            record_event(
                session,
                viewer,
                "download.granted",
                object_id=str(item["id"]),
                organization_id=contract.studio_id,
                parties=[contract.developer_id],
                data={**common, **{k: v for k, v in item.items() if k != "id"}},
                at=now,
            )
    else:
        record_event(
            session,
            viewer,
            "download.batch_granted",
            object_id=contract.id,
            organization_id=contract.studio_id,
            parties=[contract.developer_id],
            data={**common, "manifest_sha256": manifest.manifest_sha256, "grants": audited},
            at=now,
        )
    grants = []
    try:
        for w, r, row in zip(wanted, ranges, rows, strict=True):
            filename = _download_filename(w.asset_id, keys[w.asset_id])
            url = storage.presign_get(
                keys[w.asset_id], expires_in=ttl_seconds, filename=filename, byte_range=r
            )
            grants.append(DownloadGrant(download=Download(**row), url=url, filename=filename))
    except StorageUnavailable as exc:  # signing is local for S3; the request rolls back
        raise StorageUnavailableError(retry_after=storage_health.retry_after_seconds) from exc
    return BatchGrant(
        grants=grants,
        manifest_version=manifest.version,
        manifest_sha256=manifest.manifest_sha256,
        downloads_used=counted.downloads_used,
        bytes_used=counted.bytes_used,
    )


def _byte_range(
    asset: ManifestEntry, first_byte: int | None, last_byte: int | None
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
            f"asset {asset.asset_id} has {asset.byte_size} bytes",
            errors={"range": [f"Asset has {asset.byte_size} bytes: 0 to {asset.byte_size - 1}."]},
        )
    return first_byte, last


def _refuse(
    session: Session, contract: Contract, downloads: int, byte_size: int, today: date
) -> NoReturn:
    """Explain why the conditional UPDATE matched no row, from the row as it is now."""
    session.refresh(contract)
    reason = _inactive_reason(contract, today)
    if reason is not None:
        raise InvalidState(reason)
    if contract.downloads_used + downloads > contract.quota_downloads:
        if downloads == 1:
            raise QuotaExceeded(
                f"all {contract.quota_downloads} downloads of contract {contract.id} are used"
            )
        raise QuotaExceeded(
            f"{downloads} more downloads would pass the quota of contract {contract.id}: "
            f"{contract.downloads_used} of {contract.quota_downloads} are used"
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
