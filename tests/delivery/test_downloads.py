"""Metered downloads: who may, when, what, how much; usage, the delivery log, and races."""

from __future__ import annotations

import hashlib
import threading
import urllib.parse
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from catalog.models import Asset
from contracts.models import Contract
from marketplace.app import create_app
from marketplace.audit.models import AuditEvent, AuditEventParty
from marketplace.core.db import make_session_factory
from marketplace.core.health import StorageHealth
from marketplace.core.storage.fake import InMemoryStorage
from marketplace.delivery.models import Download
from tests.catalog.factories import make_asset, make_title
from tests.deals import cleared_title, signed_contract
from tests.delivery.builders import make_contract, today
from tests.helpers import bound_sessions, problem
from tests.world import World, build_world


def grant(client: Any, contract_id: str, asset_id: str, headers: dict[str, str]) -> Any:
    return client.post(
        f"/api/v1/contracts/{contract_id}/downloads", json={"asset_id": asset_id}, headers=headers
    )


def usage(client: Any, contract_id: str, headers: dict[str, str]) -> dict[str, int]:
    response = client.get(f"/api/v1/contracts/{contract_id}/usage", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    body: dict[str, int] = response.get_json()
    return body


def film(session: Session, world: World, *sizes: int, studio: str = "studio_a") -> list[Asset]:
    """A film with one ready asset of each size (distinct bytes)."""
    title = make_title(session, world[studio].org_id)
    return [
        make_asset(session, title, data=bytes([65 + i % 26]) * size) for i, size in enumerate(sizes)
    ]


class TestGrant:
    def test_licensee_gets_a_working_url_counted_logged_and_audited(
        self, client: Any, session: Session, world: World, storage: InMemoryStorage, settings: Any
    ) -> None:
        title = make_title(session, world["studio_a"].org_id)
        data = b"frame " * 1000
        asset = make_asset(session, title, data=data)
        storage.put_bytes(asset.storage_key, data)
        contract = make_contract(session, world, [title.id])
        session.commit()
        dev = world["developer_x"]
        before = datetime.now(UTC)
        response = grant(client, contract.id, asset.id, dev.member_headers)
        assert response.status_code == 201, response.get_data(as_text=True)
        body = response.get_json()
        assert set(body) == {
            "id",
            "url",
            "expires_at",
            "byte_size",
            "range",
            "headers",
            # since the batch form: the manifest version followed, what was counted
            "asset_id",
            "counted_bytes",
            "filename",
            "manifest_version",
            "manifest_sha256",
        }
        assert (body["range"], body["headers"]) == (None, {})  # the whole asset
        assert body["id"].startswith("dl_")
        assert body["byte_size"] == len(data)
        expires = datetime.fromisoformat(body["expires_at"])
        ttl = timedelta(seconds=settings.download_url_ttl_seconds)
        assert before + ttl - timedelta(seconds=1) <= expires <= datetime.now(UTC) + ttl
        # The URL fetches exactly the manifest's bytes, as an attachment named by asset id.
        status, fetched, headers = storage.simulate_get(body["url"])
        assert status == 200
        manifest = client.get(
            f"/api/v1/contracts/{contract.id}/manifest", headers=dev.headers
        ).get_json()
        assert hashlib.sha256(fetched).hexdigest() == manifest["assets"][0]["sha256"]
        assert f'filename="{asset.id}"' in headers["Content-Disposition"]
        assert title.name not in urllib.parse.unquote(body["url"])
        assert usage(client, contract.id, world["studio_a"].headers) == {
            "downloads_used": 1,
            "downloads_quota": 100,
            "bytes_used": len(data),
            "bytes_quota": 10**12,
        }
        # The studio's track and trace: which user got which asset, when.
        log = client.get(
            f"/api/v1/contracts/{contract.id}/downloads", headers=world["studio_a"].headers
        ).get_json()
        [entry] = log["items"]
        assert entry["id"] == body["id"]
        assert (entry["asset_id"], entry["title_id"]) == (asset.id, title.id)
        assert (entry["user_id"], entry["organization_id"]) == (dev.member_id, dev.org_id)
        assert entry["sha256"] == asset.sha256 and entry["expires_at"] == body["expires_at"]
        assert "url" not in entry
        event = session.scalars(select(AuditEvent).where(AuditEvent.object_id == body["id"])).one()
        assert event.action == "download.granted"
        assert event.organization_id == world["studio_a"].org_id
        assert event.actor_user_id == dev.member_id
        assert event.data["contract_id"] == contract.id and event.data["asset_id"] == asset.id
        readers = set(
            session.scalars(
                select(AuditEventParty.organization_id).where(AuditEventParty.event_id == event.id)
            )
        )
        assert readers == {world["studio_a"].org_id, dev.org_id}

    def test_a_negotiated_contract_delivers_once_active(
        self, client: Any, session: Session, world: World
    ) -> None:
        title = cleared_title(session, world["studio_a"].org_id)
        session.commit()
        contract = signed_contract(client, world, [title.id])
        asset_id = session.scalars(select(Asset.id).where(Asset.title_id == title.id)).one()
        dev = world["developer_x"].headers
        problem(grant(client, contract["id"], asset_id, dev), 409, "invalid_state")  # unpaid
        session.execute(
            update(Contract)
            .where(Contract.id == contract["id"])
            .values(
                status="active",
                payment_status="paid",
                starts_on=today() - timedelta(days=1),
                ends_on=today() + timedelta(days=1),
            )
        )
        session.commit()
        response = grant(client, contract["id"], asset_id, dev)
        assert response.status_code == 201, response.get_data(as_text=True)
        assert response.get_json()["byte_size"] == 1_000_000


class TestRefusals:
    def test_only_the_licensee_downloads(self, client: Any, session: Session, world: World) -> None:
        [asset] = film(session, world, 10)
        contract = make_contract(session, world, [asset.title_id])
        session.commit()
        for who in ("studio_a", "operator"):
            problem(grant(client, contract.id, asset.id, world[who].headers), 403, "forbidden")
        for who in ("developer_y", "studio_b"):
            problem(grant(client, contract.id, asset.id, world[who].headers), 404, "not_found")
        assert usage(client, contract.id, world["operator"].headers)["downloads_used"] == 0

    @pytest.mark.parametrize(
        ("status", "start_days", "end_days"),
        [
            ("pending_signatures", -1, 1),  # unsigned
            ("signed", -1, 1),  # signed, not paid yet
            ("active", 1, 30),  # paid, not started
            ("active", -30, -1),  # expired yesterday
            ("terminated", -1, 1),
        ],
        ids=["unsigned", "unpaid", "not_started", "expired", "terminated"],
    )
    def test_a_contract_not_active_today_delivers_nothing(
        self,
        client: Any,
        session: Session,
        world: World,
        status: str,
        start_days: int,
        end_days: int,
    ) -> None:
        [asset] = film(session, world, 10)
        contract = make_contract(
            session,
            world,
            [asset.title_id],
            status=status,
            starts_on=today() + timedelta(days=start_days),
            ends_on=today() + timedelta(days=end_days),
        )
        session.commit()
        problem(
            grant(client, contract.id, asset.id, world["developer_x"].headers), 409, "invalid_state"
        )
        assert usage(client, contract.id, world["developer_x"].headers)["downloads_used"] == 0
        assert session.scalar(select(func.count()).select_from(Download)) == 0

    def test_termination_revokes_delivery_at_once(
        self, client: Any, session: Session, world: World
    ) -> None:
        [asset] = film(session, world, 10)
        contract = make_contract(session, world, [asset.title_id])
        session.commit()
        dev = world["developer_x"].headers
        assert grant(client, contract.id, asset.id, dev).status_code == 201
        terminated = client.post(
            f"/api/v1/contracts/{contract.id}/terminate",
            json={"reason": "breach of the licence"},
            headers=world["operator"].headers,
        )
        assert terminated.status_code == 200, terminated.get_data(as_text=True)
        problem(grant(client, contract.id, asset.id, dev), 409, "invalid_state")
        assert usage(client, contract.id, dev)["downloads_used"] == 1

    def test_assets_outside_the_manifest_are_not_found(
        self, client: Any, session: Session, world: World
    ) -> None:
        title = make_title(session, world["studio_a"].org_id)
        licensed = make_asset(session, title, data=b"ready")
        pending = make_asset(session, title, data=b"uploading", status="pending")
        [unlicensed] = film(session, world, 10)
        [elsewhere] = film(session, world, 10, studio="studio_b")
        contract = make_contract(session, world, [licensed.title_id])
        session.commit()
        dev = world["developer_x"].headers
        for asset_id in (pending.id, unlicensed.id, elsewhere.id, "ast_" + "0" * 26):
            problem(grant(client, contract.id, asset_id, dev), 404, "not_found")
        assert usage(client, contract.id, dev)["downloads_used"] == 0

    def test_the_body_is_validated(self, client: Any, session: Session, world: World) -> None:
        [asset] = film(session, world, 10)
        contract = make_contract(session, world, [asset.title_id])
        session.commit()
        path = f"/api/v1/contracts/{contract.id}/downloads"
        dev = world["developer_x"].headers
        problem(client.post(path, json={}, headers=dev), 422, "validation_error")
        body = problem(
            client.post(path, json={"asset_id": asset.id, "bytes": 1}, headers=dev),
            422,
            "validation_error",
        )
        assert "bytes" in body["errors"]


class TestQuota:
    def test_downloads_are_counted_up_to_the_quota_exactly(
        self, client: Any, session: Session, world: World
    ) -> None:
        [asset] = film(session, world, 10)
        contract = make_contract(session, world, [asset.title_id], quota_downloads=3)
        session.commit()
        dev = world["developer_x"].headers
        for _ in range(3):
            assert grant(client, contract.id, asset.id, dev).status_code == 201
        body = problem(grant(client, contract.id, asset.id, dev), 429, "quota_exceeded")
        assert "downloads" in body["detail"]
        assert usage(client, contract.id, dev) == {
            "downloads_used": 3,
            "downloads_quota": 3,
            "bytes_used": 30,
            "bytes_quota": 10**12,
        }
        assert session.scalar(select(func.count()).select_from(Download)) == 3

    def test_bytes_are_counted_up_to_the_quota_exactly(
        self, client: Any, session: Session, world: World
    ) -> None:
        big, small = film(session, world, 100, 50)
        contract = make_contract(session, world, [big.title_id], quota_bytes=250)
        session.commit()
        dev = world["developer_x"].headers
        for _ in range(2):
            assert grant(client, contract.id, big.id, dev).status_code == 201
        # 200 used: 100 more would make 300 > 250, refused; 50 more lands exactly on 250.
        body = problem(grant(client, contract.id, big.id, dev), 429, "quota_exceeded")
        assert "bytes" in body["detail"]
        assert grant(client, contract.id, small.id, dev).status_code == 201
        assert usage(client, contract.id, dev)["bytes_used"] == 250
        problem(grant(client, contract.id, small.id, dev), 429, "quota_exceeded")
        refused_events = session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "download.granted")
        )
        assert refused_events == 3  # only the grants were recorded
        assert usage(client, contract.id, dev) == {
            "downloads_used": 3,
            "downloads_quota": 100,
            "bytes_used": 250,
            "bytes_quota": 250,
        }

    def test_an_asset_larger_than_the_whole_quota_is_refused(
        self, client: Any, session: Session, world: World
    ) -> None:
        [asset] = film(session, world, 11)
        contract = make_contract(session, world, [asset.title_id], quota_bytes=10)
        session.commit()
        problem(
            grant(client, contract.id, asset.id, world["developer_x"].headers),
            429,
            "quota_exceeded",
        )


def grant_range(
    client: Any, contract_id: str, asset_id: str, headers: dict[str, str], **wanted: int
) -> Any:
    return client.post(
        f"/api/v1/contracts/{contract_id}/downloads",
        json={"asset_id": asset_id, "range": wanted},
        headers=headers,
    )


class TestRangedGrant:
    """A part of an asset: a broken download of a large master resumed, or one fetched in
    parallel pieces, counts only the bytes of each part."""

    def test_a_range_counts_its_bytes_and_its_url_serves_only_them(
        self, client: Any, session: Session, world: World, storage: InMemoryStorage
    ) -> None:
        data = bytes(range(256)) * 4
        [asset] = film(session, world, len(data))
        storage.put_bytes(asset.storage_key, data)
        contract = make_contract(session, world, [asset.title_id])
        session.commit()
        dev = world["developer_x"].headers
        response = grant_range(client, contract.id, asset.id, dev, first_byte=100, last_byte=299)
        assert response.status_code == 201, response.get_data(as_text=True)
        body = response.get_json()
        assert body["byte_size"] == 200
        assert body["range"] == {"first_byte": 100, "last_byte": 299}
        assert body["headers"] == {"Range": "bytes=100-299"}
        status, fetched, _ = storage.simulate_get(body["url"], body["headers"])
        assert (status, fetched) == (206, data[100:300])
        # The URL is signed for that range: the whole asset, or another range, is refused.
        assert storage.simulate_get(body["url"])[0] == 403
        assert storage.simulate_get(body["url"], {"Range": "bytes=0-1023"})[0] == 403
        assert usage(client, contract.id, dev)["bytes_used"] == 200
        log = client.get(f"/api/v1/contracts/{contract.id}/downloads", headers=dev).get_json()
        assert log["items"][0]["range"] == body["range"]
        assert log["items"][0]["byte_size"] == 200
        event = session.scalars(select(AuditEvent).where(AuditEvent.object_id == body["id"])).one()
        assert (event.data["byte_size"], event.data["byte_range"]) == (200, [100, 299])

    def test_a_broken_download_resumes_from_where_it_stopped(
        self, client: Any, session: Session, world: World, storage: InMemoryStorage
    ) -> None:
        data = b"x" * 1000
        [asset] = film(session, world, len(data))
        storage.put_bytes(asset.storage_key, data)
        contract = make_contract(session, world, [asset.title_id], quota_bytes=1500)
        session.commit()
        dev = world["developer_x"].headers
        assert grant(client, contract.id, asset.id, dev).status_code == 201  # 1,000 bytes
        # 600 bytes arrived before the connection broke: the rest, to the last byte.
        rest = grant_range(client, contract.id, asset.id, dev, first_byte=600)
        assert rest.status_code == 201, rest.get_data(as_text=True)
        assert rest.get_json()["range"] == {"first_byte": 600, "last_byte": 999}
        url = rest.get_json()["url"]
        status, fetched, _ = storage.simulate_get(url, {"Range": "bytes=600-999"})
        assert (status, len(fetched)) == (206, 400)
        # Those bytes were counted by the first grant: the resumption counts none of them.
        assert rest.get_json()["counted_bytes"] == 0
        assert usage(client, contract.id, dev) | {} == {
            "downloads_used": 1,
            "downloads_quota": 100,
            "bytes_used": 1000,
            "bytes_quota": 1500,
        }
        # The whole asset again is a new copy (API.md): it counts, and would pass the quota.
        problem(grant(client, contract.id, asset.id, dev), 429, "quota_exceeded")
        tail = grant_range(client, contract.id, asset.id, dev, first_byte=900)
        assert (tail.status_code, tail.get_json()["counted_bytes"]) == (201, 0)

    @pytest.mark.parametrize(
        ("wanted", "field"),
        [
            ({"first_byte": 10, "last_byte": 9}, "range"),  # last before first
            ({"first_byte": 0, "last_byte": 100}, "range"),  # past the last byte (99)
            ({"first_byte": 100}, "range"),  # starts past the end
            ({"first_byte": -1, "last_byte": 5}, "range.first_byte"),
            ({"last_byte": 5}, "range.first_byte"),  # no first byte
            ({"first_byte": 0, "last_byte": 5, "step": 1}, "range.step"),  # unknown field
            ({"first_byte": "0"}, "range.first_byte"),  # not an integer
        ],
    )
    def test_a_range_outside_the_asset_is_refused_and_counts_nothing(
        self, client: Any, session: Session, world: World, wanted: dict[str, Any], field: str
    ) -> None:
        [asset] = film(session, world, 100)
        contract = make_contract(session, world, [asset.title_id])
        session.commit()
        dev = world["developer_x"].headers
        body = problem(
            grant_range(client, contract.id, asset.id, dev, **wanted), 422, "validation_error"
        )
        assert field in body["errors"], body
        assert usage(client, contract.id, dev)["downloads_used"] == 0
        assert session.scalar(select(func.count()).select_from(Download)) == 0


class TestDeliveryLog:
    def test_the_log_pages_and_is_private_to_the_parties(
        self, client: Any, session: Session, world: World
    ) -> None:
        first, second = film(session, world, 10, 20)
        contract = make_contract(session, world, [first.title_id])
        other = make_contract(session, world, [first.title_id])
        session.commit()
        dev = world["developer_x"]
        granted = [
            grant(client, contract.id, a.id, dev.headers).get_json()["id"]
            for a in (first, second, first)
        ]
        grant(client, other.id, first.id, dev.headers)  # another contract's log
        path = f"/api/v1/contracts/{contract.id}/downloads"
        seen: list[str] = []
        cursor = ""
        while True:
            page = client.get(
                f"{path}?limit=2{cursor}", headers=world["operator"].headers
            ).get_json()
            seen += [item["id"] for item in page["items"]]
            if page["next_cursor"] is None:
                break
            cursor = f"&cursor={page['next_cursor']}"
        assert seen == granted
        for who in ("developer_y", "studio_b"):
            problem(client.get(path, headers=world[who].headers), 404, "not_found")
            problem(
                client.get(f"/api/v1/contracts/{contract.id}/usage", headers=world[who].headers),
                404,
                "not_found",
            )


class TestTrackAndTrace:
    """GET /downloads: the delivery log across contracts, for a studio's trace of its assets."""

    def ids(self, client: Any, headers: dict[str, str], query: str = "") -> list[str]:
        seen: list[str] = []
        cursor = ""
        while True:
            response = client.get(f"/api/v1/downloads?limit=2{query}{cursor}", headers=headers)
            assert response.status_code == 200, response.get_data(as_text=True)
            page = response.get_json()
            seen += [item["id"] for item in page["items"]]
            if page["next_cursor"] is None:
                return seen
            cursor = f"&cursor={page['next_cursor']}"

    def test_each_sees_the_downloads_of_its_own_deals_only(
        self, client: Any, session: Session, world: World
    ) -> None:
        master, trailer = film(session, world, 10, 20)
        [other_studios] = film(session, world, 5, studio="studio_b")
        with_x = make_contract(session, world, [master.title_id])
        with_y = make_contract(session, world, [master.title_id], developer="developer_y")
        b_with_x = make_contract(session, world, [other_studios.title_id], studio="studio_b")
        session.commit()
        x, y = world["developer_x"].headers, world["developer_y"].headers

        def take(contract: Contract, asset: Asset, headers: dict[str, str]) -> str:
            response = grant(client, contract.id, asset.id, headers)
            assert response.status_code == 201, response.get_data(as_text=True)
            return str(response.get_json()["id"])

        x_master = take(with_x, master, x)
        y_master = take(with_y, master, y)
        x_trailer = take(with_x, trailer, x)
        x_other = take(b_with_x, other_studios, x)

        studio_a = world["studio_a"].headers
        assert self.ids(client, studio_a) == [x_master, y_master, x_trailer]
        assert self.ids(client, studio_a, f"&asset_id={master.id}") == [x_master, y_master]
        developer_y = world["developer_y"].org_id
        assert self.ids(client, studio_a, f"&developer_id={developer_y}") == [y_master]
        assert self.ids(client, studio_a, f"&contract_id={with_x.id}") == [x_master, x_trailer]
        assert self.ids(client, studio_a, f"&title_id={master.title_id}") == [
            x_master,
            y_master,
            x_trailer,
        ]
        assert self.ids(client, world["studio_b"].headers) == [x_other]
        assert self.ids(client, x) == [x_master, x_trailer, x_other]
        assert self.ids(client, y) == [y_master]
        # A filter never widens what one may see: another licensee's downloads stay hidden.
        assert self.ids(client, y, f"&asset_id={master.id}") == [y_master]
        assert self.ids(client, y, f"&contract_id={with_x.id}") == []
        assert self.ids(client, world["studio_b"].headers, f"&asset_id={master.id}") == []
        everything = self.ids(client, world["operator"].headers)
        assert everything == [x_master, y_master, x_trailer, x_other]

    def test_bad_filters_are_400(self, client: Any, world: World) -> None:
        for query in ("limit=0", "limit=201", "asset_id=", "contract_id=" + "c" * 41):
            response = client.get(f"/api/v1/downloads?{query}", headers=world["studio_a"].headers)
            problem(response, 400, "bad_request")


@pytest.mark.committing
class TestConcurrency:
    """Real commits on separate connections: the database, not luck, enforces the quota."""

    @pytest.mark.parametrize("limit", ["downloads", "bytes"])
    def test_concurrent_grants_never_pass_the_quota(
        self, committing_engine: Engine, settings: Any, storage: InMemoryStorage, limit: str
    ) -> None:
        size, quota, threads = 1000, 5, 12
        with Session(committing_engine, expire_on_commit=False) as session:
            world = build_world(session)
            [asset] = film(session, world, size)
            quotas = (
                {"quota_downloads": quota, "quota_bytes": 10**12}
                if limit == "downloads"
                else {"quota_downloads": 1000, "quota_bytes": quota * size}
            )
            contract = make_contract(session, world, [asset.title_id], **quotas)
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
            headers = dev.headers if i % 2 else dev.member_headers
            barrier.wait()
            results[i] = grant(client, contract_id, asset_id, headers)

        workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        statuses = sorted(r.status_code for r in results)
        assert statuses == [201] * quota + [429] * (threads - quota), statuses
        assert {r.get_json()["code"] for r in results if r.status_code == 429} == {"quota_exceeded"}
        with Session(committing_engine) as session:
            row = session.get(Contract, contract_id)
            assert row is not None
            assert (row.downloads_used, row.bytes_used) == (quota, quota * size)
            assert session.scalar(select(func.count()).select_from(Download)) == quota
            events = session.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.action == "download.granted")
            )
            assert events == quota


class TestStorageDown:
    """Signing a URL never touches the store: while it is known to be down (the check /readyz
    reports), a grant is a 503 that counts nothing, so a retry is not paid twice."""

    def test_a_grant_is_503_and_counts_nothing(
        self, client: Any, session: Session, world: World, storage: InMemoryStorage
    ) -> None:
        [asset] = film(session, world, 10)
        contract = make_contract(session, world, [asset.title_id])
        session.commit()
        dev = world["developer_x"].headers
        storage.available = False
        audit_before = session.scalar(select(func.count()).select_from(AuditEvent))
        for _ in range(2):  # a retry is refused alike, and counts nothing either
            response = grant(client, contract.id, asset.id, dev)
            body = problem(response, 503, "storage_unavailable")
            assert response.headers["Retry-After"] == "5"
            assert "no download was granted or counted" in body["detail"]
        assert client.get("/readyz").get_json()["checks"]["object_storage"] == "unavailable"
        assert usage(client, contract.id, dev)["downloads_used"] == 0
        assert usage(client, contract.id, dev)["bytes_used"] == 0
        assert session.scalar(select(func.count()).select_from(Download)) == 0
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == audit_before

    def test_refusals_that_do_not_depend_on_the_store_come_first(
        self, client: Any, session: Session, world: World, storage: InMemoryStorage
    ) -> None:
        [asset] = film(session, world, 10)
        contract = make_contract(session, world, [asset.title_id])
        session.commit()
        storage.available = False
        problem(
            grant(client, contract.id, asset.id, world["developer_y"].headers), 404, "not_found"
        )
        problem(grant(client, contract.id, asset.id, world["studio_a"].headers), 403, "forbidden")

    def test_grants_follow_the_cached_check_as_it_is_refreshed(
        self,
        session: Session,
        world: World,
        settings: Any,
        connection: Any,
        storage: InMemoryStorage,
    ) -> None:
        now = [0.0]
        health = StorageHealth(storage, interval=5.0, clock=lambda: now[0])
        app = create_app(
            settings,
            session_factory=bound_sessions(connection),
            storage=storage,
            storage_health=health,
        )
        client = app.test_client()
        [asset] = film(session, world, 10)
        contract = make_contract(session, world, [asset.title_id])
        session.commit()
        dev = world["developer_x"].headers
        assert grant(client, contract.id, asset.id, dev).status_code == 201
        storage.available = False
        now[0] += 5.0  # the next check finds the store down
        assert client.get("/readyz").status_code == 503
        problem(grant(client, contract.id, asset.id, dev), 503, "storage_unavailable")
        storage.available = True
        problem(grant(client, contract.id, asset.id, dev), 503, "storage_unavailable")
        assert client.get("/readyz").status_code == 503  # one check, the same answer
        now[0] += 5.0  # and the one after, up again
        assert grant(client, contract.id, asset.id, dev).status_code == 201
        assert client.get("/readyz").status_code == 200
        assert usage(client, contract.id, dev)["downloads_used"] == 2


class TestTerminationAndLiveUrls:
    """What the terminate route's OpenAPI description says: no new grants at once; a URL
    granted before lives until its own expiry (DOWNLOAD_URL_TTL_SECONDS) and no longer."""

    def test_a_url_granted_before_termination_works_until_its_ttl(
        self, session: Session, world: World, settings: Any, connection: Any
    ) -> None:
        now = [1_000_000.0]
        storage = InMemoryStorage("clearcut-ttl", clock=lambda: now[0])
        client = create_app(
            settings.with_overrides(download_url_ttl_seconds=300),
            session_factory=bound_sessions(connection),
            storage=storage,
        ).test_client()
        [asset] = film(session, world, 10)
        storage.put_bytes(asset.storage_key, b"A" * 10)
        contract = make_contract(session, world, [asset.title_id])
        session.commit()
        dev = world["developer_x"].headers
        url = grant(client, contract.id, asset.id, dev).get_json()["url"]
        terminated = client.post(
            f"/api/v1/contracts/{contract.id}/terminate",
            json={"reason": "breach of the licence"},
            headers=world["operator"].headers,
        )
        assert terminated.status_code == 200
        problem(grant(client, contract.id, asset.id, dev), 409, "invalid_state")
        now[0] += 300
        assert storage.simulate_get(url)[0] == 200  # still live, up to its TTL
        now[0] += 1
        assert storage.simulate_get(url)[0] == 403

    def test_the_terminate_route_says_so_in_the_openapi_document(self, client: Any) -> None:
        spec = client.get("/api/v1/openapi.json").get_json()
        operation = spec["paths"]["/api/v1/contracts/{contract_id}/terminate"]["post"]
        text = operation["summary"] + " " + operation["description"]
        for words in ("DOWNLOAD_URL_TTL_SECONDS", "409", "rotate the object store's credentials"):
            assert words in text
