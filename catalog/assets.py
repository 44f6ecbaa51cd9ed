"""Assets: registration with a presigned upload, and completion once the store holds the bytes.

The bytes never pass through the app. Registering an asset records what the studio declares
(size, SHA-256) and signs both into a PUT URL, so the store itself refuses any other body;
completing checks what the store then holds before the asset becomes `ready`.

Decisions where API.md is silent:
- The storage key is chosen by the server, under the studio's namespace:
  `studios/{studio_id}/titles/{title_id}/{asset_id}[/{sanitized filename}]`.
- `byte_size` is 1 byte to 5 TiB, S3's largest object. Up to 5 GiB, the most one presigned PUT
  may carry, the bytes go up in one PUT (`upload.url`). Past it, in parts (`upload.multipart`):
  `POST /assets/{id}/upload-parts` signs a URL per part, each for its exact length and the
  SHA-256 of its bytes (the store refuses others, as for one PUT), and `POST
  /assets/{id}/complete` with every part's ETag and SHA-256 has the store assemble them. The
  store reports no SHA-256 of the whole object made of parts, so its size is checked then, and
  `sha256_verified_at` stays empty until `catalog.checksums` has read the object back.
- Completing a `ready` asset again is a no-op answered with the asset (safe to retry).
- Developers see only `ready` assets of titles they can see, never a storage key or an upload.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from catalog.access import can_manage, get_managed_title, get_visible_title, visible_titles
from catalog.codes import normalize_language
from catalog.errors import StorageUnavailableError, UploadNotVerified
from catalog.media import refresh_title_media
from catalog.models import ASSET_KINDS, Asset, Title
from marketplace.accounts.principal import Principal
from marketplace.audit.service import record_event
from marketplace.core.db import utcnow
from marketplace.core.errors import (
    Conflict,
    Forbidden,
    InvalidState,
    NotFound,
    ValidationFailed,
)
from marketplace.core.ids import new_id
from marketplace.core.storage import (
    MAX_PARTS,
    MultipartRefused,
    ObjectStorage,
    PartDone,
    StorageUnavailable,
    upload_headers,
)

MAX_BYTE_SIZE = 5 * 1024**4  # S3's largest object
SINGLE_PUT_MAX_BYTES = 5 * 1024**3  # S3's limit for one PUT; larger assets go up in parts
MIN_PART_SIZE = 64 * 1024**2  # parts of at least this (S3's own minimum is 5 MiB)
MAX_PARTS_PER_REQUEST = 1000
MAX_FILENAME_LENGTH = 120
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Multipart:
    """How an asset past one PUT is cut: every part `part_size` bytes but the last."""

    part_size: int
    part_count: int

    def part_bytes(self, byte_size: int, part_number: int) -> int:
        if part_number < self.part_count:
            return self.part_size
        return byte_size - self.part_size * (self.part_count - 1)


@dataclass(frozen=True)
class Upload:
    """Where and how to PUT an asset's bytes: the URL, its expiry, and the headers to send;
    or, for an asset uploaded in parts, how to cut it (no URL: ask for the parts' URLs)."""

    url: str | None
    expires_at: datetime | None
    headers: dict[str, str]
    method: str = "PUT"
    multipart: Multipart | None = None


@dataclass(frozen=True)
class PartUpload:
    part_number: int
    byte_size: int
    url: str
    headers: dict[str, str]


def multipart_for(byte_size: int) -> Multipart | None:
    """The parts of an asset too large for one PUT (at most S3's 10,000); None otherwise."""
    if byte_size <= SINGLE_PUT_MAX_BYTES:
        return None
    mib = 1024**2
    part_size = max(MIN_PART_SIZE, -(-byte_size // MAX_PARTS // mib) * mib)
    return Multipart(part_size=part_size, part_count=-(-byte_size // part_size))


def sanitize_filename(filename: str | None) -> str | None:
    """Return a filename safe as the last storage-key segment, or None if nothing is left."""
    if not filename:
        return None
    # Only the last path segment, so "../../other-studio/x" cannot climb out of the namespace.
    base = re.split(r"[\\/]", filename)[-1]
    safe = _UNSAFE_FILENAME.sub("_", base).strip("._")
    return safe[-MAX_FILENAME_LENGTH:] or None


def storage_key_for(studio_id: str, title_id: str, asset_id: str, filename: str | None) -> str:
    """Return the server-chosen storage key of an asset, under its studio's namespace."""
    key = f"studios/{studio_id}/titles/{title_id}/{asset_id}"
    safe = sanitize_filename(filename)
    return f"{key}/{safe}" if safe else key


def visible_assets(viewer: Principal) -> Select[Asset]:
    """Select the assets `viewer` may see: those of its visible titles (developers: ready ones)."""
    stmt = select(Asset).join(Title, Title.id == Asset.title_id)
    stmt = stmt.where(Title.id.in_(visible_titles(viewer).with_only_columns(Title.id)))
    if viewer.is_developer:
        stmt = stmt.where(Asset.status == "ready")
    return stmt


def title_assets(session: Session, viewer: Principal, title_id: str) -> Select[Asset]:
    """Select the assets of one title `viewer` may see (NotFound if it cannot see the title)."""
    get_visible_title(session, viewer, title_id)
    stmt = select(Asset).where(Asset.title_id == title_id)
    if not (viewer.is_operator or viewer.is_studio):
        stmt = stmt.where(Asset.status == "ready")
    return stmt


def _validate(fields: dict[str, Any]) -> dict[str, Any]:
    out = dict(fields)
    errors: dict[str, list[str]] = {}
    if out["kind"] not in ASSET_KINDS:
        errors["kind"] = [f"Must be one of: {', '.join(ASSET_KINDS)}."]
    if not 1 <= out["byte_size"] <= MAX_BYTE_SIZE:
        errors["byte_size"] = [f"Must be between 1 and {MAX_BYTE_SIZE} bytes."]
    sha = str(out["sha256"]).strip().lower()
    if not _SHA256.fullmatch(sha):
        errors["sha256"] = ["Must be 64 hexadecimal digits."]
    out["sha256"] = sha
    if out.get("language") is not None:
        try:
            out["language"] = normalize_language(out["language"])
        except ValueError as exc:
            errors["language"] = [str(exc)]
    for name in ("duration_seconds", "fps"):
        if out.get(name) is not None and out[name] < 0:
            errors[name] = ["Must not be negative."]
    for name in ("width", "height"):
        if out.get(name) is not None and out[name] < 1:
            errors[name] = ["Must be positive."]
    if errors:
        raise ValidationFailed("invalid asset", errors=errors)
    return out


def register_asset(
    session: Session,
    principal: Principal,
    title_id: str,
    *,
    kind: str,
    byte_size: int,
    sha256: str,
    filename: str | None = None,
    external_id: str | None = None,
    duration_seconds: float | None = None,
    width: int | None = None,
    height: int | None = None,
    fps: float | None = None,
    codec: str | None = None,
    language: str | None = None,
) -> Asset:
    """Register a pending asset of a title; its bytes are then uploaded to the store."""
    title = get_managed_title(session, principal, title_id)
    fields = _validate(
        {"kind": kind, "byte_size": byte_size, "sha256": sha256, "language": language}
        | {"duration_seconds": duration_seconds, "fps": fps, "width": width, "height": height}
    )
    if external_id is not None:
        taken = session.scalar(
            select(Asset.id).where(
                Asset.studio_id == title.studio_id, Asset.external_id == external_id
            )
        )
        if taken is not None:
            raise Conflict(
                f"external_id {external_id!r} is already used by another asset of this studio",
                errors={"external_id": ["Already used by another asset of this studio."]},
            )
    asset_id = new_id("ast")
    asset = Asset(
        id=asset_id,
        title_id=title.id,
        studio_id=title.studio_id,
        external_id=external_id,
        kind=fields["kind"],
        storage_key=storage_key_for(title.studio_id, title.id, asset_id, filename),
        byte_size=fields["byte_size"],
        sha256=fields["sha256"],
        duration_seconds=duration_seconds,
        width=width,
        height=height,
        fps=fps,
        codec=codec,
        language=fields["language"],
        status="pending",
    )
    session.add(asset)
    session.flush()
    record_event(
        session,
        principal,
        "asset.registered",
        object_id=asset.id,
        organization_id=title.studio_id,
        data={"title_id": title.id, "kind": asset.kind, "byte_size": asset.byte_size},
    )
    return asset


def issue_upload(
    asset: Asset, storage: ObjectStorage, *, ttl_seconds: int, now: datetime | None = None
) -> Upload:
    """Sign a PUT URL for a pending asset's exact size and SHA-256 (or say how to cut it)."""
    now = now or utcnow()
    multipart = multipart_for(asset.byte_size)
    if multipart is not None:
        return Upload(url=None, expires_at=None, headers={}, multipart=multipart)
    try:
        url = storage.presign_put(
            asset.storage_key,
            byte_size=asset.byte_size,
            sha256_hex=asset.sha256,
            expires_in=ttl_seconds,
        )
    except StorageUnavailable as exc:  # signing is local for S3; a fake may still refuse
        raise StorageUnavailableError() from exc
    return Upload(
        url=url,
        expires_at=(now + timedelta(seconds=ttl_seconds)).replace(microsecond=0),
        headers=upload_headers(asset.sha256),
    )


def sign_upload_parts(
    session: Session,
    principal: Principal,
    asset_id: str,
    parts: list[tuple[int, str]],
    *,
    storage: ObjectStorage,
    ttl_seconds: int,
    now: datetime | None = None,
) -> tuple[list[PartUpload], datetime]:
    """Sign a PUT URL for each of these parts ((number, SHA-256 of its bytes)) of a pending
    asset too large for one PUT, starting the store's multipart upload first if it has none
    that still takes parts. The store refuses a part of other bytes, as a single PUT's."""
    asset = _managed_asset_locked(session, principal, asset_id, action="upload")
    if asset.status != "pending":
        raise InvalidState(f"asset {asset.id} is already ready")
    multipart = multipart_for(asset.byte_size)
    if multipart is None:
        raise InvalidState(
            f"asset {asset.id} goes up in one PUT, to its `upload.url`, not in parts"
        )
    part_numbers = [n for n, _ in parts]
    wrong = [n for n in part_numbers if not 1 <= n <= multipart.part_count]
    if wrong or len(set(part_numbers)) != len(part_numbers):
        raise ValidationFailed(
            "invalid part numbers",
            errors={"parts": [f"Part numbers must be distinct, from 1 to {multipart.part_count}."]},
        )
    now = now or utcnow()
    try:
        if asset.upload_id is None or not storage.multipart_alive(
            asset.storage_key, asset.upload_id
        ):
            asset.upload_id = storage.start_multipart(asset.storage_key)
            session.flush()
        signed = [
            PartUpload(
                part_number=n,
                byte_size=multipart.part_bytes(asset.byte_size, n),
                url=storage.presign_upload_part(
                    asset.storage_key,
                    asset.upload_id,
                    n,
                    byte_size=multipart.part_bytes(asset.byte_size, n),
                    sha256_hex=sha256,
                    expires_in=ttl_seconds,
                ),
                headers=upload_headers(sha256),
            )
            for n, sha256 in parts
        ]
    except StorageUnavailable as exc:
        raise StorageUnavailableError() from exc
    return signed, (now + timedelta(seconds=ttl_seconds)).replace(microsecond=0)


def _managed_asset_locked(
    session: Session, principal: Principal, asset_id: str, *, action: str
) -> Asset:
    """The asset, locked, if `principal` may manage it (NotFound if it cannot even see it)."""
    asset = get_visible_asset(session, principal, asset_id)
    if not can_manage(principal, asset.studio_id):
        raise Forbidden(f"only the studio that owns this asset, or an operator, may {action} it")
    # Locked, so two concurrent completions make one `asset.ready` event and one refresh, and
    # two requests for part URLs start one multipart upload.
    return session.scalars(
        select(Asset)
        .where(Asset.id == asset_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def get_visible_asset(session: Session, viewer: Principal, asset_id: str) -> Asset:
    """Return an asset `viewer` may see, or raise NotFound."""
    asset = session.scalars(visible_assets(viewer).where(Asset.id == asset_id)).one_or_none()
    if asset is None:
        raise NotFound(f"asset {asset_id} not found")
    return asset


def complete_asset(
    session: Session,
    principal: Principal,
    asset_id: str,
    *,
    storage: ObjectStorage,
    parts: list[PartDone] | None = None,
    now: datetime | None = None,
) -> Asset:
    """Mark an asset ready once the store holds exactly the declared object; for an asset
    uploaded in parts, have the store assemble `parts` (every one, in order) first."""
    asset = _managed_asset_locked(session, principal, asset_id, action="complete")
    if asset.status == "ready":
        return asset
    multipart = multipart_for(asset.byte_size)
    if multipart is not None:
        _assemble(asset, multipart, parts, storage)
    elif parts:
        raise ValidationFailed(
            "this asset goes up in one PUT",
            errors={"parts": ["Only for an asset uploaded in parts; send none."]},
        )
    sha256_checked = verify_upload(asset, storage)
    asset.status = "ready"
    asset.ready_at = now or utcnow()
    # An object made of parts: its SHA-256 is checked later (catalog.checksums).
    asset.sha256_verified_at = asset.ready_at if sha256_checked else None
    session.flush()
    refresh_title_media(session, asset.title_id)
    record_event(
        session,
        principal,
        "asset.ready",
        object_id=asset.id,
        organization_id=asset.studio_id,
        data={
            "title_id": asset.title_id,
            "byte_size": asset.byte_size,
            "sha256": asset.sha256,
            "sha256_verified": sha256_checked,
        },
    )
    return asset


def _assemble(
    asset: Asset,
    multipart: Multipart,
    parts: list[PartDone] | None,
    storage: ObjectStorage,
) -> None:
    expected = list(range(1, multipart.part_count + 1))
    if not parts or [part.number for part in parts] != expected:
        raise ValidationFailed(
            "every part, in order",
            errors={
                "parts": [
                    f"Must list parts 1 to {multipart.part_count} in order, each with its ETag "
                    "and SHA-256."
                ]
            },
        )
    if asset.upload_id is None:
        raise UploadNotVerified(
            f"no upload in parts has been started for asset {asset.id}: ask for part URLs, "
            "PUT every part, then complete it; the asset stays pending",
            errors={"upload": ["No upload has been started."]},
        )
    try:
        storage.complete_multipart(asset.storage_key, asset.upload_id, parts)
    except MultipartRefused as exc:
        again = " ask for part URLs again (a new upload)," if exc.upload_gone else ""
        raise UploadNotVerified(
            f"the store would not assemble the parts of asset {asset.id}: {exc};{again} "
            "the asset stays pending",
            errors={"parts": [f"{str(exc).capitalize()}."]},
        ) from exc
    except StorageUnavailable as exc:
        raise StorageUnavailableError() from exc
    asset.upload_id = None


def verify_upload(asset: Asset, storage: ObjectStorage) -> bool:
    """Raise UploadNotVerified unless the store holds the declared size (and SHA-256 if known);
    return whether the store reported the object's SHA-256 (then it is the declared one)."""
    try:
        info = storage.head(asset.storage_key)
    except StorageUnavailable as exc:
        raise StorageUnavailableError() from exc
    if info is None:
        raise UploadNotVerified(
            f"no object has been uploaded for asset {asset.id}: PUT the file to its upload URL "
            "with the upload headers, then complete it; the asset stays pending",
            errors={"upload": ["No object has been uploaded."]},
        )
    if info.byte_size != asset.byte_size:
        raise UploadNotVerified(
            f"the stored object is {info.byte_size} bytes but asset {asset.id} declares "
            f"{asset.byte_size}; upload the declared file again; the asset stays pending",
            errors={"byte_size": [f"Stored object is {info.byte_size} bytes."]},
        )
    # A store that reports no checksum of the whole object (one made of parts) is trusted on
    # size here, each part's bytes having been checked; catalog.checksums reads it back later.
    if info.sha256_hex is None:
        return False
    if info.sha256_hex != asset.sha256:
        raise UploadNotVerified(
            f"the stored object's SHA-256 differs from the one asset {asset.id} declares; "
            "upload the declared file again; the asset stays pending",
            errors={"sha256": ["Stored object has another SHA-256."]},
        )
    return True
