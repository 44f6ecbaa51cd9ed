"""Demo data for the embedded stack: idempotent, with stable development-only keys."""

from __future__ import annotations

import hashlib
import hmac
import io
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.models import Asset, ImportJob
from marketplace.accounts import keys
from marketplace.accounts.models import ApiKey, Organization, User
from marketplace.accounts.principal import Principal
from marketplace.audit.service import record_event
from marketplace.core.storage import ObjectStorage


@dataclass(frozen=True)
class DemoAccount:
    org_name: str
    kind: str
    email: str


DEMO_ACCOUNTS = (
    DemoAccount("Clearcut Operations", "operator", "ops@clearcut.example"),
    DemoAccount("Northlight Pictures", "studio", "rights@northlight.example"),
    DemoAccount("Harbor Lane Television", "studio", "licensing@harborlane.example"),
    DemoAccount("Lumen Labs", "developer", "data@lumenlabs.example"),
    DemoAccount("Parallax AI", "developer", "datasets@parallax.example"),
)


@dataclass(frozen=True)
class SeededAccount:
    account: DemoAccount
    organization_id: str
    user_id: str
    api_key: str


def demo_key(secret_key: str, email: str) -> tuple[str, str, str]:
    """A key derived from SECRET_KEY and the email, so reruns print the same keys (dev only)."""
    material = hmac.new(secret_key.encode(), f"demo-key:{email}".encode(), hashlib.sha256)
    digest = material.hexdigest()
    prefix, secret = digest[:12], digest[12:]
    raw = f"{keys.KEY_PREFIX}_{prefix}_{secret}"
    return raw, prefix, keys.hash_key(raw)


def seed_demo_accounts(session: Session, *, secret_key: str) -> list[SeededAccount]:
    """Create the demo organizations, users and keys unless they exist; return their keys."""
    seeded = []
    for account in DEMO_ACCOUNTS:
        # An address may belong to several organizations: the demo account is the one in its
        # own demo organization.
        user = session.scalars(
            select(User)
            .join(Organization, Organization.id == User.organization_id)
            .where(
                User.email == account.email,
                Organization.kind == account.kind,
                Organization.name == account.org_name,
            )
            .order_by(User.id)
            .limit(1)
        ).first()
        if user is None:
            org = Organization(name=account.org_name, kind=account.kind)
            session.add(org)
            session.flush()
            record_event(
                session,
                None,
                "organization.created",
                object_id=org.id,
                organization_id=org.id,
                data={"name": org.name, "kind": org.kind},
            )
            user = User(organization_id=org.id, email=account.email, role="owner")
            session.add(user)
            session.flush()
            record_event(
                session,
                None,
                "user.created",
                object_id=user.id,
                organization_id=org.id,
                data={"role": "owner"},
            )
        raw, prefix, digest = demo_key(secret_key, account.email)
        api_key = session.scalars(select(ApiKey).where(ApiKey.prefix == prefix)).one_or_none()
        if api_key is None:
            api_key = ApiKey(user_id=user.id, prefix=prefix, key_hash=digest)
            session.add(api_key)
            session.flush()
            record_event(
                session,
                None,
                "api_key.created",
                object_id=api_key.id,
                organization_id=user.organization_id,
                data={"user_id": user.id},
            )
        seeded.append(SeededAccount(account, user.organization_id, user.id, raw))
    return seeded


DEMO_TITLES_PER_STUDIO = 300
DEMO_READY_VIDEOS = 4


def seed_demo_catalog(
    session: Session,
    storage: ObjectStorage,
    accounts: Sequence[SeededAccount],
    *,
    titles: int = DEMO_TITLES_PER_STUDIO,
    ready_videos: int = DEMO_READY_VIDEOS,
) -> dict[str, ImportJob]:
    """Import a synthetic catalog into each demo studio, a few of its videos uploaded and ready.

    Idempotent, as imports are: a rerun finds every record unchanged and every upload done.
    """
    from catalog.assets import complete_asset
    from catalog.imports.generate import generate_catalog, write_jsonl
    from catalog.imports.service import import_catalog

    jobs: dict[str, ImportJob] = {}
    studios = [seeded for seeded in accounts if seeded.account.kind == "studio"]
    for number, seeded in enumerate(studios, start=1):
        uploads: dict[str, bytes] = {}
        records = _with_demo_videos(generate_catalog(titles, seed=number), uploads, ready_videos)
        with tempfile.TemporaryFile() as spool:
            text = io.TextIOWrapper(spool, encoding="utf-8", newline="\n")
            write_jsonl(records, text)
            text.flush()
            text.detach()
            job = import_catalog(
                session, None, spool, studio_id=seeded.organization_id, filename="demo.jsonl"
            )
        if job.status != "succeeded":
            raise RuntimeError(f"the demo catalog did not import: {job.errors[:3]}")
        owner = Principal(seeded.user_id, seeded.organization_id, "studio", "owner")
        for external_id, data in uploads.items():
            asset = session.scalars(
                select(Asset).where(
                    Asset.studio_id == seeded.organization_id, Asset.external_id == external_id
                )
            ).one()
            if asset.status != "ready":
                storage.put_bytes(asset.storage_key, data)
                complete_asset(session, owner, asset.id, storage=storage)
        jobs[seeded.organization_id] = job
    return jobs


def _with_demo_videos(
    records: Iterable[dict[str, Any]], uploads: dict[str, bytes], count: int
) -> Iterator[dict[str, Any]]:
    """Give the first `count` titles' first video real (small) bytes, noted in `uploads`."""
    titles: set[str] = set()
    for record in records:
        if (
            len(uploads) < count
            and record["type"] == "asset"
            and record["kind"] == "video"
            and record["title_external_id"] not in titles
        ):
            data = f"Clearcut demo rendition {record['external_id']}\n".encode() * 256
            record = record | {"byte_size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            uploads[record["external_id"]] = data
            titles.add(record["title_external_id"])
        yield record
