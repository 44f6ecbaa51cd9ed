"""End to end against a real SeaweedFS that is then stopped: grants stop, and count nothing.

A SeaweedFS of its own (the session's serves other tests): started, used, stopped. The store's
health check runs on a clock the test moves, so no test waits out the interval.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from config import Settings
from marketplace.app import create_app
from marketplace.core.health import StorageHealth
from marketplace.core.storage.s3 import S3Storage
from marketplace.dev.servers import SeaweedFS
from tests.catalog.factories import make_asset, make_title
from tests.delivery.builders import make_contract
from tests.helpers import bound_sessions, problem
from tests.world import World

pytestmark = pytest.mark.servers


@pytest.fixture
def own_seaweedfs(tmp_path: Path) -> Iterator[SeaweedFS]:
    server = SeaweedFS(
        tmp_path / "weed",
        access_key=f"down{secrets.token_hex(8)}",
        secret_key=secrets.token_urlsafe(30),
    )
    with server:
        yield server
        server.stop(timeout=2.0)  # idempotent: the test has usually stopped it already


def test_grants_are_503_and_free_while_seaweedfs_is_stopped(
    settings: Settings,
    connection: Connection,
    session: Session,
    world: World,
    own_seaweedfs: SeaweedFS,
) -> None:
    storage = S3Storage(
        "clearcut-down",
        endpoint_url=own_seaweedfs.endpoint_url,
        access_key=own_seaweedfs.access_key,
        secret_key=own_seaweedfs.secret_key,
    )
    try:
        storage.ensure_bucket()
        data = os.urandom(64 * 1024)
        title = make_title(session, world["studio_a"].org_id)
        asset = make_asset(session, title, data=data)
        storage.put_bytes(asset.storage_key, data)
        contract = make_contract(session, world, [title.id])
        session.commit()
        now = [0.0]
        health = StorageHealth(storage, clock=lambda: now[0])
        client = create_app(
            settings,
            session_factory=bound_sessions(connection),
            storage=storage,
            storage_health=health,
        ).test_client()
        dev = world["developer_x"].headers
        path = f"/api/v1/contracts/{contract.id}/downloads"

        granted = client.post(path, json={"asset_id": asset.id}, headers=dev)
        assert granted.status_code == 201, granted.get_data(as_text=True)
        assert requests.get(granted.get_json()["url"], timeout=30).content == data

        own_seaweedfs.stop(timeout=2.0)
        now[0] += health.interval  # the next check probes the stopped store
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.get_json()["checks"]["object_storage"] == "unavailable"
        for _ in range(3):  # a developer retrying is refused each time, and pays nothing
            refused = client.post(path, json={"asset_id": asset.id}, headers=dev)
            problem(refused, 503, "storage_unavailable")
            assert refused.headers["Retry-After"] == "5"
        used: dict[str, Any] = client.get(
            f"/api/v1/contracts/{contract.id}/usage", headers=dev
        ).get_json()
        assert (used["downloads_used"], used["bytes_used"]) == (1, len(data))
        log = client.get(path, headers=dev).get_json()["items"]
        assert len(log) == 1
    finally:
        storage.close()
