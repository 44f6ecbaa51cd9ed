"""Assets past one PUT go up in parts: part URLs on demand, each signed for its length and
SHA-256, then completion with every part's ETag and SHA-256.

The thresholds are lowered here (S3's are 5 GiB for one PUT and parts of at least 5 MiB): an
asset of 12 MiB is cut into parts of 5, 5 and 2 MiB.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import pytest

from catalog import assets
from marketplace.core.storage import upload_headers
from marketplace.core.storage.fake import InMemoryStorage
from tests.catalog.factories import make_title
from tests.helpers import problem
from tests.world import World

API = "/api/v1"
MIB = 1024**2
DATA = os.urandom(12 * MIB)


@pytest.fixture(autouse=True)
def small_thresholds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(assets, "SINGLE_PUT_MAX_BYTES", 8 * MIB)
    monkeypatch.setattr(assets, "MIN_PART_SIZE", 5 * MIB)


def register(client: Any, world: World, session: Any, data: bytes = DATA) -> dict[str, Any]:
    title = make_title(session, world["studio_a"].org_id, visibility="listed")
    session.commit()
    response = client.post(
        f"{API}/titles/{title.id}/assets",
        headers=world["studio_a"].headers,
        json={"kind": "video", "byte_size": len(data), "sha256": sha(data)},
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    return body


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def chunk(data: bytes, number: int) -> bytes:
    return data[(number - 1) * 5 * MIB : number * 5 * MIB]


def part_urls(
    client: Any, world: World, asset_id: str, numbers: list[int], data: bytes = DATA
) -> Any:
    parts = [{"part_number": n, "sha256": sha(chunk(data, n))} for n in numbers]
    return client.post(
        f"{API}/assets/{asset_id}/upload-parts",
        headers=world["studio_a"].headers,
        json={"parts": parts},
    )


def put_parts(
    storage: InMemoryStorage, parts: list[dict[str, Any]], data: bytes = DATA
) -> list[dict[str, Any]]:
    """PUT each part as signed; return the parts as completing lists them."""
    done = []
    for part in parts:
        body = chunk(data, part["part_number"])
        status, etag = storage.simulate_put_part(part["url"], body, part["headers"])
        assert status == 200 and etag is not None
        done.append({"part_number": part["part_number"], "etag": etag, "sha256": sha(body)})
    return done


def complete(client: Any, world: World, asset_id: str, parts: Any = None) -> Any:
    return client.post(
        f"{API}/assets/{asset_id}/complete",
        headers=world["studio_a"].headers,
        json={} if parts is None else {"parts": parts},
    )


def test_an_asset_past_one_put_goes_up_in_parts(
    client: Any, world: World, session: Any, storage: InMemoryStorage
) -> None:
    asset = register(client, world, session)
    assert asset["upload"]["url"] is None
    assert asset["upload"]["multipart"] == {"part_size": 5 * MIB, "part_count": 3}
    signed = part_urls(client, world, asset["id"], [1, 2, 3])
    assert signed.status_code == 200, signed.get_data(as_text=True)
    parts = signed.get_json()["parts"]
    assert [(p["part_number"], p["byte_size"]) for p in parts] == [
        (1, 5 * MIB),
        (2, 5 * MIB),
        (3, 2 * MIB),
    ]
    done = complete(client, world, asset["id"], put_parts(storage, parts))
    assert done.status_code == 200, done.get_data(as_text=True)
    assert done.get_json()["status"] == "ready"
    assert storage.objects[next(iter(storage.objects))] == DATA
    assert storage.uploads == {}


def test_part_urls_can_be_asked_for_a_few_at_a_time_on_one_upload(
    client: Any, world: World, session: Any, storage: InMemoryStorage
) -> None:
    asset = register(client, world, session)
    first = part_urls(client, world, asset["id"], [1]).get_json()["parts"]
    rest = part_urls(client, world, asset["id"], [2, 3]).get_json()["parts"]
    assert len(storage.uploads) == 1  # the second request used the same upload
    listed = put_parts(storage, first + rest)
    assert complete(client, world, asset["id"], listed).get_json()["status"] == "ready"


def test_an_upload_the_store_dropped_is_started_again(
    client: Any, world: World, session: Any, storage: InMemoryStorage
) -> None:
    asset = register(client, world, session)
    part_urls(client, world, asset["id"], [1, 2, 3])
    storage.uploads.clear()  # aborted or expired in the store
    parts = part_urls(client, world, asset["id"], [1, 2, 3]).get_json()["parts"]
    assert len(storage.uploads) == 1
    listed = put_parts(storage, parts)
    assert complete(client, world, asset["id"], listed).get_json()["status"] == "ready"


def test_a_part_of_other_bytes_than_signed_is_refused_by_the_store(
    client: Any, world: World, session: Any, storage: InMemoryStorage
) -> None:
    asset = register(client, world, session)
    part = part_urls(client, world, asset["id"], [1]).get_json()["parts"][0]
    assert part["headers"] == upload_headers(sha(chunk(DATA, 1)))
    first = chunk(DATA, 1)
    other = bytes([first[0] ^ 0xFF]) + first[1:]  # one byte changed, whatever it was
    assert storage.simulate_put_part(part["url"], other, part["headers"]) == (400, None)


@pytest.mark.parametrize(
    "parts",
    [
        None,  # none at all
        [{"part_number": n, "etag": "x", "sha256": "a" * 64} for n in (1, 2)],  # one missing
        [{"part_number": n, "etag": "x", "sha256": "a" * 64} for n in (2, 1, 3)],  # disordered
        [{"part_number": n, "etag": "x"} for n in (1, 2, 3)],  # no SHA-256
    ],
)
def test_completing_needs_every_part_in_order(
    client: Any, world: World, session: Any, parts: Any
) -> None:
    asset = register(client, world, session)
    part_urls(client, world, asset["id"], [1, 2, 3])
    body = problem(complete(client, world, asset["id"], parts), 422, "validation_error")
    assert any(name.startswith("parts") for name in body["errors"])


def test_a_wrong_etag_or_checksum_leaves_the_asset_pending_until_the_right_ones_come(
    client: Any, world: World, session: Any, storage: InMemoryStorage
) -> None:
    asset = register(client, world, session)
    right = put_parts(storage, part_urls(client, world, asset["id"], [1, 2, 3]).get_json()["parts"])
    for wrong in (
        [{**p, "etag": '"0"'} for p in right],
        [*right[:2], {**right[2], "sha256": sha(b"other bytes")}],
    ):
        body = problem(complete(client, world, asset["id"], wrong), 409, "invalid_state")
        assert "pending" in body["detail"] and "parts" in body["errors"]
    assert complete(client, world, asset["id"], right).get_json()["status"] == "ready"


def test_completing_before_any_part_url_was_asked_for_is_a_409(
    client: Any, world: World, session: Any
) -> None:
    asset = register(client, world, session)
    listed = [{"part_number": n, "etag": "x", "sha256": "a" * 64} for n in (1, 2, 3)]
    body = problem(complete(client, world, asset["id"], listed), 409, "invalid_state")
    assert body["errors"] == {"upload": ["No upload has been started."]}


@pytest.mark.parametrize("numbers", [[0], [4], [1, 1], []])
def test_part_numbers_must_be_parts_of_the_asset(
    client: Any, world: World, session: Any, numbers: list[int]
) -> None:
    asset = register(client, world, session)
    problem(part_urls(client, world, asset["id"], numbers), 422, "validation_error")


def test_an_asset_of_one_put_has_no_parts(
    client: Any, world: World, session: Any, storage: InMemoryStorage
) -> None:
    small = os.urandom(1000)
    asset = register(client, world, session, small)
    assert asset["upload"]["url"] and asset["upload"]["multipart"] is None
    problem(part_urls(client, world, asset["id"], [1], small), 409, "invalid_state")
    upload = asset["upload"]
    assert storage.simulate_put(upload["url"], small, upload["headers"]) == 200
    listed = [{"part_number": 1, "etag": "x", "sha256": "a" * 64}]
    problem(complete(client, world, asset["id"], listed), 422, "validation_error")
    done = client.post(f"{API}/assets/{asset['id']}/complete", headers=world["studio_a"].headers)
    assert done.status_code == 200 and done.get_json()["status"] == "ready"  # no body at all
    problem(part_urls(client, world, asset["id"], [1], small), 409, "invalid_state")  # ready


def test_the_parts_of_the_largest_object_fit_s3s_limits() -> None:
    # With S3's own thresholds: 5 TiB in at most 10,000 parts of at most 5 GiB.
    largest = assets.multipart_for(assets.MAX_BYTE_SIZE)
    assert largest is not None
    assert largest.part_count <= 10_000 and largest.part_size <= 5 * 1024**3
    assert largest.part_bytes(assets.MAX_BYTE_SIZE, largest.part_count) > 0
    assert assets.multipart_for(assets.SINGLE_PUT_MAX_BYTES) is None


def test_completing_with_a_json_content_type_and_no_body_still_works(
    client: Any, world: World, session: Any, storage: InMemoryStorage
) -> None:
    # As `curl -X POST -H 'Content-Type: application/json'` sends it (the README's walkthrough).
    small = os.urandom(1000)
    asset = register(client, world, session, small)
    upload = asset["upload"]
    assert storage.simulate_put(upload["url"], small, upload["headers"]) == 200
    done = client.post(
        f"{API}/assets/{asset['id']}/complete",
        headers={**world["studio_a"].headers, "Content-Type": "application/json"},
        data=b"",
    )
    assert done.status_code == 200, done.get_data(as_text=True)
