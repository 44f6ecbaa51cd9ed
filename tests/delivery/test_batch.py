"""Batch grants and the manifest frozen at signature: all or none, parts counted once, races."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from contracts.models import Contract
from marketplace.app import create_app
from marketplace.audit.models import AuditEvent
from marketplace.core.db import make_session_factory
from marketplace.core.storage.fake import InMemoryStorage
from marketplace.delivery.models import Download
from tests.catalog.factories import make_asset, make_title
from tests.delivery.builders import make_contract
from tests.delivery.test_downloads import film, usage
from tests.helpers import problem
from tests.world import World, build_world


def batch(client: Any, contract_id: str, items: list[dict[str, Any]], headers: Any) -> Any:
    return client.post(
        f"/api/v1/contracts/{contract_id}/downloads", json={"assets": items}, headers=headers
    )


def events(session: Session, action: str) -> int:
    return session.scalar(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action)
    )


class TestBatch:
    def test_one_url_per_item_counted_together_and_audited_once(
        self, client: Any, session: Session, world: World, storage: InMemoryStorage
    ) -> None:
        assets = film(session, world, 100, 200, 300)
        for a in assets:
            storage.put_bytes(a.storage_key, b"z" * a.byte_size)
        contract = make_contract(session, world, [assets[0].title_id])
        session.commit()
        dev = world["developer_x"].headers
        response = batch(client, contract.id, [{"asset_id": a.id} for a in assets], dev)
        assert response.status_code == 201, response.get_data(as_text=True)
        body = response.get_json()
        assert [i["asset_id"] for i in body["items"]] == [a.id for a in assets]
        assert body["manifest_version"] == 1
        assert (body["downloads_used"], body["bytes_used"]) == (3, 600)
        for item, a in zip(body["items"], assets, strict=True):
            status, fetched, _ = storage.simulate_get(item["url"])
            assert (status, len(fetched)) == (200, a.byte_size)
        assert session.scalar(select(func.count()).select_from(Download)) == 3
        assert (events(session, "download.batch_granted"), events(session, "download.granted")) == (
            1,
            0,
        )
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "download.batch_granted")
        ).one()
        assert [g["id"] for g in event.data["grants"]] == [i["id"] for i in body["items"]]

    def test_all_or_none_past_the_quota(self, client: Any, session: Session, world: World) -> None:
        assets = film(session, world, 100, 100, 100)
        contract = make_contract(session, world, [assets[0].title_id], quota_downloads=2)
        session.commit()
        dev = world["developer_x"].headers
        body = problem(
            batch(client, contract.id, [{"asset_id": a.id} for a in assets], dev),
            429,
            "quota_exceeded",
        )
        assert body["detail"].startswith("3 more downloads")
        assert usage(client, contract.id, dev)["downloads_used"] == 0
        assert session.scalar(select(func.count()).select_from(Download)) == 0
        ok = batch(client, contract.id, [{"asset_id": a.id} for a in assets[:2]], dev)
        assert ok.status_code == 201

    def test_one_item_outside_the_manifest_refuses_the_batch(
        self, client: Any, session: Session, world: World
    ) -> None:
        [asset] = film(session, world, 100)
        contract = make_contract(session, world, [asset.title_id])
        session.commit()
        dev = world["developer_x"].headers
        items = [{"asset_id": asset.id}, {"asset_id": "ast_nope"}]
        problem(batch(client, contract.id, items, dev), 404, "not_found")
        assert usage(client, contract.id, dev)["downloads_used"] == 0

    @pytest.mark.parametrize(
        "body",
        [
            {"assets": []},
            {"assets": [{"asset_id": "a"}] * 1001},
            {"asset_id": "a", "assets": [{"asset_id": "a"}]},
            {},
            {"assets": [{"asset_id": "a"}], "range": {"first_byte": 0}},
        ],
        ids=["empty", "over-1000", "both-forms", "neither", "top-level-range"],
    )
    def test_the_body_is_validated(
        self, client: Any, session: Session, world: World, body: dict[str, Any]
    ) -> None:
        [asset] = film(session, world, 100)
        contract = make_contract(session, world, [asset.title_id])
        session.commit()
        response = client.post(
            f"/api/v1/contracts/{contract.id}/downloads",
            json=body,
            headers=world["developer_x"].headers,
        )
        assert response.status_code == 422, response.get_data(as_text=True)


class TestPartsCountOnce:
    def test_parts_of_an_asset_count_one_download_and_its_bytes_once(
        self, client: Any, session: Session, world: World
    ) -> None:
        [asset] = film(session, world, 1000)
        contract = make_contract(session, world, [asset.title_id])
        session.commit()
        dev = world["developer_x"].headers
        parts = [
            {"asset_id": asset.id, "range": {"first_byte": a, "last_byte": a + 249}}
            for a in range(0, 1000, 250)
        ]
        body = batch(client, contract.id, parts, dev).get_json()
        assert [i["counted_bytes"] for i in body["items"]] == [250] * 4
        assert (body["downloads_used"], body["bytes_used"]) == (1, 1000)
        # A part broke at byte 600: resuming it counts nothing more.
        resumed = batch(
            client,
            contract.id,
            [{"asset_id": asset.id, "range": {"first_byte": 600, "last_byte": 749}}],
            dev,
        ).get_json()
        assert resumed["items"][0]["counted_bytes"] == 0
        assert (resumed["downloads_used"], resumed["bytes_used"]) == (1, 1000)

    def test_overlapping_parts_count_the_new_bytes_only(
        self, client: Any, session: Session, world: World
    ) -> None:
        [asset] = film(session, world, 100)
        contract = make_contract(session, world, [asset.title_id])
        session.commit()
        dev = world["developer_x"].headers
        items = [
            {"asset_id": asset.id, "range": {"first_byte": 0, "last_byte": 59}},
            {"asset_id": asset.id, "range": {"first_byte": 40, "last_byte": 79}},
        ]
        body = batch(client, contract.id, items, dev).get_json()
        assert [i["counted_bytes"] for i in body["items"]] == [60, 20]
        assert body["bytes_used"] == 80

    def test_a_whole_grant_is_always_a_new_copy(
        self, client: Any, session: Session, world: World
    ) -> None:
        [asset] = film(session, world, 100)
        contract = make_contract(session, world, [asset.title_id])
        session.commit()
        dev = world["developer_x"].headers
        for _ in range(2):
            batch(client, contract.id, [{"asset_id": asset.id}], dev)
        assert usage(client, contract.id, dev)["downloads_used"] == 2


class TestFrozenManifest:
    def test_the_catalog_changing_after_signature_leaves_the_manifest_as_signed(
        self, client: Any, session: Session, world: World
    ) -> None:
        title = make_title(session, world["studio_a"].org_id)
        first = make_asset(session, title, data=b"a" * 10)
        contract = make_contract(session, world, [title.id])
        dev = world["developer_x"].headers
        before = client.get(f"/api/v1/contracts/{contract.id}/manifest", headers=dev).get_json()
        # A file added, and one replaced, after signature: neither changes what was licensed.
        later = make_asset(session, title, data=b"b" * 20)
        first.sha256 = "0" * 64
        session.commit()
        after = client.get(f"/api/v1/contracts/{contract.id}/manifest", headers=dev).get_json()
        assert after == before
        assert [a["asset_id"] for a in after["assets"]] == [first.id]
        assert after["version"] == 1
        problem(batch(client, contract.id, [{"asset_id": later.id}], dev), 404, "not_found")
        grant = batch(client, contract.id, [{"asset_id": first.id}], dev).get_json()
        assert grant["manifest_sha256"] == before["manifest_sha256"]
        row = session.get(Download, grant["items"][0]["id"])
        assert row is not None
        assert row.sha256 == before["assets"][0]["sha256"] != "0" * 64


@pytest.mark.committing
class TestConcurrency:
    """64 one-asset batches at once against a quota of 10 downloads: exactly 10 granted."""

    @pytest.mark.parametrize("same_asset", [True, False], ids=["one-asset", "distinct-assets"])
    def test_exactly_the_quota_is_granted(
        self, committing_engine: Engine, settings: Any, storage: InMemoryStorage, same_asset: bool
    ) -> None:
        threads, quota = 64, 10
        with Session(committing_engine, expire_on_commit=False) as session:
            world = build_world(session)
            assets = film(session, world, *([100] if same_asset else [100] * threads))
            contract = make_contract(session, world, [assets[0].title_id], quota_downloads=quota)
            session.commit()
            contract_id, asset_ids = contract.id, [a.id for a in assets]
        app = create_app(
            settings, session_factory=make_session_factory(committing_engine), storage=storage
        )
        dev = world["developer_x"]
        barrier = threading.Barrier(threads)
        results: list[Any] = [None] * threads

        def run(i: int) -> None:
            client = app.test_client()
            barrier.wait()
            results[i] = batch(
                client, contract_id, [{"asset_id": asset_ids[i % len(asset_ids)]}], dev.headers
            )

        workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        statuses = sorted(r.status_code for r in results)
        assert statuses == [201] * quota + [429] * (threads - quota), statuses
        with Session(committing_engine) as session:
            row = session.get(Contract, contract_id)
            assert row is not None
            assert (row.downloads_used, row.bytes_used) == (quota, quota * 100)
            assert session.scalar(select(func.count()).select_from(Download)) == quota
            assert events(session, "download.batch_granted") == quota

    def test_concurrent_parts_of_one_asset_count_its_bytes_once(
        self, committing_engine: Engine, settings: Any, storage: InMemoryStorage
    ) -> None:
        threads, size = 16, 1600
        with Session(committing_engine, expire_on_commit=False) as session:
            world = build_world(session)
            [asset] = film(session, world, size)
            contract = make_contract(session, world, [asset.title_id])
            session.commit()
            contract_id, asset_id = contract.id, asset.id
        app = create_app(
            settings, session_factory=make_session_factory(committing_engine), storage=storage
        )
        dev = world["developer_x"]
        barrier = threading.Barrier(threads)
        results: list[Any] = [None] * threads

        def run(i: int) -> None:
            client = app.test_client()
            # Each thread asks for an overlapping window: together they cover the asset twice.
            first = (i * 100) % size
            wanted = {"first_byte": first, "last_byte": min(first + 199, size - 1)}
            barrier.wait()
            results[i] = batch(
                client, contract_id, [{"asset_id": asset_id, "range": wanted}], dev.headers
            )

        workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert {r.status_code for r in results} == {201}
        with Session(committing_engine) as session:
            row = session.get(Contract, contract_id)
            assert row is not None
            assert (row.downloads_used, row.bytes_used) == (1, size)
