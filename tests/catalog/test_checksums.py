"""Reading assets back to check their whole SHA-256 (catalog.checksums).

An upload in one PUT is checked against the declared SHA-256 by the store and at completion;
an upload in parts only part by part, so its asset is ready with `sha256_verified_at` null until
it is read back. Thresholds lowered as in test_multipart_upload: 12 MiB in parts of 5 MiB.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from catalog import assets
from catalog.checksums import assets_awaiting_verification, verify_asset
from catalog.models import Asset, Title
from marketplace.audit.models import AuditEvent
from marketplace.core.runtime import UnitOfWork
from marketplace.core.storage import StorageUnavailable
from marketplace.core.storage.fake import InMemoryStorage
from tests.catalog.factories import make_title
from tests.catalog.test_multipart_upload import DATA, complete, part_urls, put_parts, sha
from tests.world import World

API = "/api/v1"
MIB = 1024**2


@pytest.fixture(autouse=True)
def small_thresholds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(assets, "SINGLE_PUT_MAX_BYTES", 8 * MIB)
    monkeypatch.setattr(assets, "MIN_PART_SIZE", 5 * MIB)


def register(
    client: Any, world: World, session: Session, data: bytes, *, declared: str | None = None
) -> dict[str, Any]:
    title = make_title(session, world["studio_a"].org_id, visibility="listed")
    session.commit()
    response = client.post(
        f"{API}/titles/{title.id}/assets",
        headers=world["studio_a"].headers,
        json={
            "kind": "video",
            "byte_size": len(data),
            "sha256": declared or sha(data),
            "duration_seconds": 3600.0,
        },
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    return body


def upload_in_parts(
    client: Any, world: World, storage: InMemoryStorage, asset: dict[str, Any]
) -> dict[str, Any]:
    """PUT DATA's three parts and complete; the completed asset."""
    parts = part_urls(client, world, asset["id"], [1, 2, 3]).get_json()["parts"]
    done = complete(client, world, asset["id"], put_parts(storage, parts))
    assert done.status_code == 200, done.get_data(as_text=True)
    body: dict[str, Any] = done.get_json()
    return body


def seen_by(client: Any, headers: dict[str, str], asset: dict[str, Any]) -> Any:
    listed = client.get(f"{API}/titles/{asset['title_id']}/assets", headers=headers).get_json()
    return next((a for a in listed["items"] if a["id"] == asset["id"]), None)


def units(session: Session) -> Callable[[], UnitOfWork]:
    """Units of work on the test's session (its savepoints), as runtime.unit_of_work makes."""
    return lambda: UnitOfWork(session)


def events(session: Session, asset_id: str) -> list[AuditEvent]:
    stmt = select(AuditEvent).where(AuditEvent.object_id == asset_id).order_by(AuditEvent.id)
    return list(session.scalars(stmt))


def test_an_upload_in_one_put_is_verified_at_completion(
    client: Any, world: World, session: Session, storage: InMemoryStorage
) -> None:
    small = os.urandom(1000)
    asset = register(client, world, session, small)
    upload = asset["upload"]
    assert asset["sha256_verified_at"] is None
    assert storage.simulate_put(upload["url"], small, upload["headers"]) == 200
    done = complete(client, world, asset["id"]).get_json()
    assert done["status"] == "ready"
    assert done["sha256_verified_at"] == done["ready_at"] is not None
    assert assets_awaiting_verification(session) == []


def test_an_upload_in_parts_is_verified_once_read_back(
    client: Any, world: World, session: Session, storage: InMemoryStorage
) -> None:
    asset = register(client, world, session, DATA)
    done = upload_in_parts(client, world, storage, asset)
    assert done["status"] == "ready" and done["sha256_verified_at"] is None
    assert events(session, asset["id"])[-1].data["sha256_verified"] is False
    assert assets_awaiting_verification(session) == [asset["id"]]

    read: list[tuple[int, int]] = []

    def progress(advance: int, total: int) -> None:
        assert not session.in_transaction()  # nothing held while hours of bytes are read
        read.append((advance, total))

    verdict = verify_asset(units(session), storage, asset["id"], progress=progress)
    assert (verdict.outcome, verdict.byte_size, verdict.sha256) == (
        "verified",
        len(DATA),
        sha(DATA),
    )
    assert read[0] == (0, len(DATA)) and sum(n for n, _ in read) == len(DATA)
    assert len(read) > 1  # in chunks, not at once

    shown = seen_by(client, world["developer_x"].headers, asset)
    assert shown["status"] == "ready" and shown["sha256_verified_at"] is not None
    assert assets_awaiting_verification(session) == []
    event = events(session, asset["id"])[-1]
    assert event.action == "asset.sha256_verified" and event.actor_user_id is None
    assert event.organization_id == world["studio_a"].org_id


def test_bytes_other_than_declared_take_the_asset_out_until_uploaded_again(
    client: Any, world: World, session: Session, storage: InMemoryStorage
) -> None:
    # Every part is checked against its own SHA-256, but the declared whole is another file's.
    declared = sha(b"the file the studio meant to send")
    asset = register(client, world, session, DATA, declared=declared)
    upload_in_parts(client, world, storage, asset)
    title = session.get(Title, asset["title_id"])
    assert title is not None and title.content_hours == 1.0
    assert seen_by(client, world["developer_x"].headers, asset) is not None

    verdict = verify_asset(units(session), storage, asset["id"])
    assert verdict.failed and (verdict.outcome, verdict.sha256) == ("mismatch", sha(DATA))
    session.expire_all()
    stored = session.get(Asset, asset["id"])
    assert stored is not None
    assert (stored.status, stored.ready_at, stored.sha256_verified_at) == ("pending", None, None)
    assert session.get(Title, asset["title_id"]).content_hours == 0.0  # type: ignore[union-attr]
    assert seen_by(client, world["developer_x"].headers, asset) is None  # out of delivery
    event = events(session, asset["id"])[-1]
    assert event.action == "asset.sha256_mismatch"
    assert event.data == {
        "title_id": asset["title_id"],
        "sha256": declared,
        "stored_sha256": sha(DATA),
        "stored_byte_size": len(DATA),
    }
    # The studio's owner sees it, and uploads again: a new upload in parts is started.
    assert seen_by(client, world["studio_a"].headers, asset)["status"] == "pending"
    assert assets_awaiting_verification(session) == []
    again = upload_in_parts(client, world, storage, asset)
    assert again["status"] == "ready" and again["sha256_verified_at"] is None


def test_an_object_gone_from_the_store_takes_the_asset_out(
    client: Any, world: World, session: Session, storage: InMemoryStorage
) -> None:
    asset = register(client, world, session, DATA)
    upload_in_parts(client, world, storage, asset)
    storage.objects.clear()
    verdict = verify_asset(units(session), storage, asset["id"])
    assert verdict.failed and verdict.outcome == "missing"
    session.expire_all()
    assert session.get(Asset, asset["id"]).status == "pending"  # type: ignore[union-attr]
    assert events(session, asset["id"])[-1].data["stored_sha256"] is None


def test_an_asset_changed_while_read_is_left_for_the_next_run(
    client: Any, world: World, session: Session, storage: InMemoryStorage
) -> None:
    asset = register(client, world, session, DATA)
    upload_in_parts(client, world, storage, asset)
    before = len(events(session, asset["id"]))

    def reimported_meanwhile(advance: int, total: int) -> None:
        if advance == 0:  # a re-import declares another file while the object is read
            session.execute(
                update(Asset).where(Asset.id == asset["id"]).values(sha256=sha(b"other"))
            )
            session.commit()

    verdict = verify_asset(units(session), storage, asset["id"], progress=reimported_meanwhile)
    assert verdict.outcome == "changed" and not verdict.failed
    session.expire_all()
    stored = session.get(Asset, asset["id"])
    assert stored is not None and stored.status == "ready" and stored.sha256_verified_at is None
    assert len(events(session, asset["id"])) == before


def test_the_store_unreachable_writes_nothing(
    client: Any, world: World, session: Session, storage: InMemoryStorage
) -> None:
    asset = register(client, world, session, DATA)
    upload_in_parts(client, world, storage, asset)
    storage.available = False
    with pytest.raises(StorageUnavailable):
        verify_asset(units(session), storage, asset["id"])
    assert assets_awaiting_verification(session) == [asset["id"]]


def test_a_pending_or_unknown_asset_is_not_read(
    client: Any, world: World, session: Session, storage: InMemoryStorage
) -> None:
    asset = register(client, world, session, DATA)
    assert verify_asset(units(session), storage, asset["id"]).outcome == "not_ready"
    assert verify_asset(units(session), storage, "ast_unknown").outcome == "not_ready"


def test_awaiting_assets_come_oldest_ready_first_up_to_a_limit(
    client: Any, world: World, session: Session, storage: InMemoryStorage
) -> None:
    ids = []
    for _ in range(3):
        asset = register(client, world, session, DATA)
        upload_in_parts(client, world, storage, asset)
        ids.append(asset["id"])
    stmt = select(Asset.id, Asset.ready_at).where(Asset.id.in_(ids))
    ready_at = {asset_id: at for asset_id, at in session.execute(stmt)}
    oldest_first = sorted(ids, key=lambda i: (ready_at[i], i))
    assert assets_awaiting_verification(session) == oldest_first
    assert assets_awaiting_verification(session, limit=2) == oldest_first[:2]
