"""Asset upload end to end against a real SeaweedFS: presigned PUT, verified completion."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import pytest
import requests
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from catalog import assets
from catalog.checksums import verify_asset
from config import Settings
from marketplace.app import create_app
from marketplace.core.runtime import UnitOfWork
from marketplace.core.storage.s3 import S3Storage
from tests.helpers import bound_sessions, problem
from tests.world import World

pytestmark = pytest.mark.servers

API = "/api/v1"


@pytest.fixture
def s3_client(settings: Settings, connection: Connection, s3_storage: S3Storage) -> Any:
    """The app on the test's transaction, storing assets in the real SeaweedFS."""
    return create_app(
        settings, session_factory=bound_sessions(connection), storage=s3_storage
    ).test_client()


def create(client: Any, headers: dict[str, str], path: str, body: dict[str, Any]) -> Any:
    response = client.post(API + path, headers=headers, json=body)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def register(client: Any, headers: dict[str, str], title_id: str, data: bytes) -> Any:
    return create(
        client,
        headers,
        f"/titles/{title_id}/assets",
        {
            "kind": "video",
            "byte_size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "filename": "episode one.mp4",
            "duration_seconds": 2700.0,
            "height": 2160,
        },
    )


def status_of(client: Any, headers: dict[str, str], title_id: str, asset_id: str) -> str:
    listed = client.get(f"{API}/titles/{title_id}/assets", headers=headers).get_json()
    return str(next(a["status"] for a in listed["items"] if a["id"] == asset_id))


def test_upload_through_the_presigned_url_then_complete(s3_client: Any, world: World) -> None:
    headers = world["studio_a"].headers
    series = create(
        s3_client, headers, "/titles", {"external_id": "s", "kind": "series", "name": "S"}
    )
    episode = create(
        s3_client,
        headers,
        "/titles",
        {"external_id": "e", "kind": "episode", "name": "E", "parent_id": series["id"]},
    )
    data = os.urandom(256 * 1024)
    asset = register(s3_client, headers, episode["id"], data)
    upload = asset["upload"]

    # The store itself refuses a body of another size or other bytes (both are signed).
    short = requests.put(upload["url"], data=data[:-1], headers=upload["headers"], timeout=30)
    assert short.status_code == 403
    other = bytearray(data)
    other[0] ^= 0xFF
    tampered = requests.put(upload["url"], data=bytes(other), headers=upload["headers"], timeout=30)
    assert tampered.status_code == 400
    problem(
        s3_client.post(f"{API}/assets/{asset['id']}/complete", headers=headers),
        409,
        "invalid_state",
    )
    assert status_of(s3_client, headers, episode["id"], asset["id"]) == "pending"

    put = requests.put(upload["url"], data=data, headers=upload["headers"], timeout=30)
    assert put.status_code == 200, put.text
    done = s3_client.post(f"{API}/assets/{asset['id']}/complete", headers=headers)
    assert done.status_code == 200, done.get_data(as_text=True)
    assert done.get_json()["status"] == "ready"
    # The store reported the object's SHA-256: checked at completion.
    assert done.get_json()["sha256_verified_at"] == done.get_json()["ready_at"]
    for title in (episode, series):
        body = s3_client.get(f"{API}/titles/{title['id']}", headers=headers).get_json()
        assert (body["content_hours"], body["max_height"]) == (0.75, 2160)


def test_complete_without_an_upload_is_409_and_stays_pending(s3_client: Any, world: World) -> None:
    headers = world["studio_a"].headers
    film = create(s3_client, headers, "/titles", {"external_id": "f", "kind": "film", "name": "F"})
    asset = register(s3_client, headers, film["id"], b"never uploaded")
    body = problem(
        s3_client.post(f"{API}/assets/{asset['id']}/complete", headers=headers),
        409,
        "invalid_state",
    )
    assert body["errors"] == {"upload": ["No object has been uploaded."]}
    assert status_of(s3_client, headers, film["id"], asset["id"]) == "pending"
    title = s3_client.get(f"{API}/titles/{film['id']}", headers=headers).get_json()
    assert title["content_hours"] == 0.0


def test_a_store_object_of_another_size_is_refused(
    s3_client: Any, world: World, s3_storage: S3Storage
) -> None:
    headers = world["studio_a"].headers
    film = create(s3_client, headers, "/titles", {"external_id": "g", "kind": "film", "name": "G"})
    data = b"declared bytes" * 100
    asset = register(s3_client, headers, film["id"], data)
    # Written around the presigned URL (e.g. by a misbehaving tool with store credentials).
    s3_storage.put_bytes(asset["storage_key"], data + b"!")
    body = problem(
        s3_client.post(f"{API}/assets/{asset['id']}/complete", headers=headers),
        409,
        "invalid_state",
    )
    assert list(body["errors"]) == ["byte_size"]
    assert status_of(s3_client, headers, film["id"], asset["id"]) == "pending"


def test_an_asset_past_one_put_goes_up_in_parts_to_the_store(
    s3_client: Any,
    world: World,
    s3_storage: S3Storage,
    connection: Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # S3's thresholds lowered (5 GiB for one PUT, parts of 64 MiB here): 12 MiB in 5 MiB parts.
    mib = 1024**2
    monkeypatch.setattr(assets, "SINGLE_PUT_MAX_BYTES", 8 * mib)
    monkeypatch.setattr(assets, "MIN_PART_SIZE", 5 * mib)
    headers = world["studio_a"].headers
    film = create(s3_client, headers, "/titles", {"external_id": "m", "kind": "film", "name": "M"})
    data = os.urandom(12 * mib)
    chunks = [data[i : i + 5 * mib] for i in range(0, len(data), 5 * mib)]
    sha = [hashlib.sha256(c).hexdigest() for c in chunks]
    asset = register(s3_client, headers, film["id"], data)
    assert asset["upload"]["multipart"] == {"part_size": 5 * mib, "part_count": 3}
    path = f"{API}/assets/{asset['id']}"
    wanted = {"parts": [{"part_number": n, "sha256": sha[n - 1]} for n in (1, 2, 3)]}
    signed = s3_client.post(f"{path}/upload-parts", headers=headers, json=wanted)
    assert signed.status_code == 200, signed.get_data(as_text=True)
    parts = signed.get_json()["parts"]

    # Each part URL carries its exact length and SHA-256: the store refuses anything else.
    def put(part: dict[str, Any], body: bytes) -> requests.Response:
        return requests.put(part["url"], data=body, headers=part["headers"], timeout=60)

    assert put(parts[0], chunks[0][:100]).status_code == 403
    flipped = bytes([chunks[0][0] ^ 0xFF]) + chunks[0][1:]  # one byte changed, whatever it was
    assert put(parts[0], flipped).status_code == 400
    listed = []
    for part, body, digest in zip(parts, chunks, sha, strict=True):
        answer = put(part, body)
        assert answer.status_code == 200, answer.text
        listed.append(
            {"part_number": part["part_number"], "etag": answer.headers["ETag"], "sha256": digest}
        )

    wrong = [*listed[:2], {**listed[2], "etag": listed[0]["etag"]}]
    problem(
        s3_client.post(f"{path}/complete", headers=headers, json={"parts": wrong}),
        409,
        "invalid_state",
    )
    assert status_of(s3_client, headers, film["id"], asset["id"]) == "pending"
    done = s3_client.post(f"{path}/complete", headers=headers, json={"parts": listed})
    assert done.status_code == 200, done.get_data(as_text=True)
    assert done.get_json()["status"] == "ready"
    stored = requests.get(s3_storage.presign_get(asset["storage_key"], expires_in=60), timeout=60)
    assert stored.status_code == 200 and stored.content == data

    # The store keeps no SHA-256 of an object made of parts: the asset is ready, its whole
    # SHA-256 checked once the object has been read back.
    assert done.get_json()["sha256_verified_at"] is None
    session = Session(bind=connection, join_transaction_mode="create_savepoint")
    verdict = verify_asset(lambda: UnitOfWork(session), s3_storage, asset["id"])
    assert (verdict.outcome, verdict.sha256) == ("verified", hashlib.sha256(data).hexdigest())
    listed = s3_client.get(f"{API}/titles/{film['id']}/assets", headers=headers).get_json()
    assert listed["items"][0]["sha256_verified_at"] is not None
