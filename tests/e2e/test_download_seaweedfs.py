"""End to end against a real SeaweedFS: a granted URL serves the manifest's bytes, then expires."""

from __future__ import annotations

import hashlib
import os
import time
from typing import Any

import pytest
import requests
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from config import Settings
from marketplace.app import create_app
from marketplace.core.storage.s3 import S3Storage
from tests.catalog.factories import make_asset, make_title
from tests.delivery.builders import make_contract
from tests.helpers import bound_sessions
from tests.world import World

pytestmark = pytest.mark.servers


def app_on(settings: Settings, connection: Connection, storage: S3Storage) -> Any:
    """The app as conftest's `app` builds it, but on the real object store."""
    return create_app(
        settings,
        session_factory=bound_sessions(connection),
        storage=storage,
    )


def stored_film(session: Session, world: World, storage: S3Storage, data: bytes) -> Any:
    """A film whose one ready asset's bytes really are in the store, licensed to developer X."""
    title = make_title(session, world["studio_a"].org_id)
    asset = make_asset(session, title, data=data)
    storage.put_bytes(asset.storage_key, data)
    contract = make_contract(session, world, [title.id])
    session.commit()
    return contract, asset


def grant_url(client: Any, contract_id: str, asset_id: str, headers: dict[str, str]) -> str:
    response = client.post(
        f"/api/v1/contracts/{contract_id}/downloads", json={"asset_id": asset_id}, headers=headers
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    url: str = response.get_json()["url"]
    return url


def test_a_granted_url_downloads_the_manifest_bytes(
    settings: Settings,
    connection: Connection,
    session: Session,
    world: World,
    s3_storage: S3Storage,
) -> None:
    data = os.urandom(256 * 1024)
    contract, asset = stored_film(session, world, s3_storage, data)
    client = app_on(settings, connection, s3_storage).test_client()
    dev = world["developer_x"].headers
    manifest = client.get(f"/api/v1/contracts/{contract.id}/manifest", headers=dev).get_json()
    [entry] = manifest["assets"]
    url = grant_url(client, contract.id, asset.id, dev)
    assert url.startswith(s3_storage.endpoint_url or "")
    response = requests.get(url, timeout=30)
    assert response.status_code == 200
    assert hashlib.sha256(response.content).hexdigest() == entry["sha256"]
    assert len(response.content) == entry["byte_size"]
    assert asset.id in response.headers["Content-Disposition"]
    # The signature is what authorizes: a URL whose signature was altered is refused.
    signature_at = url.index("X-Amz-Signature=") + len("X-Amz-Signature=")
    flipped = "0" if url[signature_at] != "0" else "1"
    forged = url[:signature_at] + flipped + url[signature_at + 1 :]
    assert requests.get(forged, timeout=30).status_code == 403


def test_an_expired_url_is_refused_by_the_store(
    settings: Settings,
    connection: Connection,
    session: Session,
    world: World,
    s3_storage: S3Storage,
) -> None:
    contract, asset = stored_film(session, world, s3_storage, b"short-lived " * 100)
    short = settings.with_overrides(download_url_ttl_seconds=1)
    client = app_on(short, connection, s3_storage).test_client()
    dev = world["developer_x"].headers
    url = grant_url(client, contract.id, asset.id, dev)
    time.sleep(2)
    assert requests.get(url, timeout=30).status_code == 403
    # Only the time is wrong: the same grant with the usual lifetime works.
    fresh = grant_url(
        app_on(settings, connection, s3_storage).test_client(), contract.id, asset.id, dev
    )
    assert requests.get(fresh, timeout=30).status_code == 200


def test_a_large_asset_fetched_in_parallel_ranges_counts_its_bytes_once(
    settings: Settings,
    connection: Connection,
    session: Session,
    world: World,
    s3_storage: S3Storage,
) -> None:
    data = os.urandom(1024 * 1024 + 17)
    contract, asset = stored_film(session, world, s3_storage, data)
    client = app_on(settings, connection, s3_storage).test_client()
    dev = world["developer_x"].headers
    size, pieces = len(data), 4
    step = -(-size // pieces)
    fetched = b""
    for first in range(0, size, step):
        wanted = {"first_byte": first, "last_byte": min(first + step, size) - 1}
        response = client.post(
            f"/api/v1/contracts/{contract.id}/downloads",
            json={"asset_id": asset.id, "range": wanted},
            headers=dev,
        )
        assert response.status_code == 201, response.get_data(as_text=True)
        body = response.get_json()
        piece = requests.get(body["url"], headers=body["headers"], timeout=30)
        assert piece.status_code == 206 and len(piece.content) == body["byte_size"]
        fetched += piece.content
        # The store refuses the URL without its signed range, or with another one.
        assert requests.get(body["url"], timeout=30).status_code == 403
        other = {"Range": f"bytes=0-{size - 1}"}
        assert requests.get(body["url"], headers=other, timeout=30).status_code == 403
    assert hashlib.sha256(fetched).hexdigest() == asset.sha256
    usage = client.get(f"/api/v1/contracts/{contract.id}/usage", headers=dev).get_json()
    # The parts of one asset count as one download, and its bytes once.
    assert (usage["downloads_used"], usage["bytes_used"]) == (1, size)
