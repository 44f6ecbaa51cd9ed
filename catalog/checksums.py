"""Reading stored assets back to check their whole SHA-256.

An asset uploaded with one PUT has its bytes checked by the store against the SHA-256 its studio
declared (the digest is signed into the URL), and completion sees the store report it:
`sha256_verified_at` is set then. An asset uploaded in parts (past 5 GiB) has each part's bytes
checked, but S3 keeps no SHA-256 of an object made of parts, so completion can check its size
only. Such an asset is ready and deliverable, and its `sha256_verified_at` stays empty until
`verify_asset` has read the object back from the store and hashed it:

- the same SHA-256 and size: `sha256_verified_at` is set (`asset.sha256_verified`);
- another, or no object at all: the asset goes back to `pending`, out of search media figures,
  manifests and downloads, until its studio uploads the declared file again
  (`asset.sha256_mismatch`, for the studio and operators to see in the audit log).

Reading up to 5 TiB back takes hours, so no transaction is open meanwhile: the asset is read
in one, hashed outside any, and written in another only if it is still what was read (a
re-import, a new upload or a deletion in between leaves it to the next run). Memory holds one
chunk of the object. `marketplace catalog verify-assets` runs this over every asset waiting
for it (from cron, say); given asset ids, it checks those again even if verified before.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.media import refresh_title_media
from catalog.models import Asset
from marketplace.audit.service import record_event
from marketplace.core.db import utcnow
from marketplace.core.runtime import UnitOfWork
from marketplace.core.storage import ObjectChanged, ObjectMissing, ObjectStorage

Outcome = Literal["verified", "mismatch", "missing", "changed", "not_ready"]

# What is compared before writing: if any of it changed while the object was being read, the
# verdict is about another asset than the one now stored.
_SNAPSHOT = (
    Asset.storage_key,
    Asset.byte_size,
    Asset.sha256,
    Asset.status,
    Asset.ready_at,
    Asset.sha256_verified_at,
)


@dataclass(frozen=True)
class Verdict:
    """What reading one asset back found."""

    asset_id: str
    outcome: Outcome
    byte_size: int | None = None  # of the stored object, when there was one
    sha256: str | None = None  # of the stored object, when read whole

    @property
    def failed(self) -> bool:
        """The store does not hold the declared bytes: the asset went back to pending."""
        return self.outcome in ("mismatch", "missing")


def assets_awaiting_verification(session: Session, *, limit: int | None = None) -> list[str]:
    """The ids of ready assets whose SHA-256 has not been checked, oldest ready first."""
    stmt = (
        select(Asset.id)
        .where(Asset.status == "ready", Asset.sha256_verified_at.is_(None))
        .order_by(Asset.ready_at, Asset.id)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def verify_asset(
    units: Callable[[], UnitOfWork],
    storage: ObjectStorage,
    asset_id: str,
    *,
    progress: Callable[[int, int], None] | None = None,
    now: Callable[[], datetime] = utcnow,
) -> Verdict:
    """Read a ready asset's object back, hash it, and record what was found.

    Two units of work from `units` (runtime.unit_of_work): one reads the asset, the other
    records the verdict and commits; none is open while the object is read.
    """
    snapshot, found = read_back(units, storage, asset_id, progress=progress)
    if snapshot is None:
        return found
    with units() as uow:
        return record_verdict(uow.session, asset_id, snapshot, found, now())


def read_back(
    units: Callable[[], UnitOfWork],
    storage: ObjectStorage,
    asset_id: str,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[tuple[object, ...] | None, Verdict]:
    """Read the asset's object back and hash it, in no transaction; return what the asset was
    (to record against, None when there is nothing to record) and what was found.

    `progress(advance, total)` is called before reading (advance 0) and after each chunk, with
    the bytes it had and the declared size. StorageUnavailable propagates.
    """
    with units() as uow:
        snapshot = uow.session.execute(select(*_SNAPSHOT).where(Asset.id == asset_id)).one_or_none()
    if snapshot is None or snapshot.status != "ready":
        return None, Verdict(asset_id, "not_ready")
    digest = hashlib.sha256()
    size = 0
    if progress is not None:
        progress(0, snapshot.byte_size)
    try:
        for chunk in storage.read_chunks(snapshot.storage_key):
            digest.update(chunk)
            size += len(chunk)
            if progress is not None:
                progress(len(chunk), snapshot.byte_size)
    except ObjectMissing:
        return tuple(snapshot), Verdict(asset_id, "missing")
    except ObjectChanged:
        return None, Verdict(asset_id, "changed")
    stored = digest.hexdigest()
    same = size == snapshot.byte_size and stored == snapshot.sha256
    return tuple(snapshot), Verdict(asset_id, "verified" if same else "mismatch", size, stored)


def record_verdict(
    session: Session, asset_id: str, snapshot: Sequence[object], found: Verdict, at: datetime
) -> Verdict:
    """Record what reading the asset back found, if it is still what was read (flushed, not
    committed); otherwise write nothing and say it changed."""
    asset = session.scalars(
        select(Asset).where(Asset.id == asset_id).with_for_update()
    ).one_or_none()
    if asset is None or tuple(getattr(asset, c.key) for c in _SNAPSHOT) != tuple(snapshot):
        return Verdict(asset_id, "changed")
    data: dict[str, object] = {"title_id": asset.title_id, "sha256": asset.sha256}
    if found.outcome == "verified":
        asset.sha256_verified_at = at
        action = "asset.sha256_verified"
    else:
        asset.status = "pending"
        asset.ready_at = None
        asset.sha256_verified_at = None
        session.flush()
        refresh_title_media(session, asset.title_id)
        action = "asset.sha256_mismatch"
        data.update(stored_sha256=found.sha256, stored_byte_size=found.byte_size)
    record_event(
        session,
        None,
        action,
        object_id=asset.id,
        organization_id=asset.studio_id,
        data=data,
        at=at,
    )
    return found
