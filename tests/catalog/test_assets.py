"""Assets through the service: registration, verified completion, derived runtimes."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog import assets
from catalog.errors import StorageUnavailableError, UploadNotVerified
from catalog.media import refresh_title_media, refresh_titles_media
from catalog.models import Asset, Title
from marketplace.audit.models import AuditEvent
from marketplace.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from marketplace.core.storage import CHECKSUM_HEADER, sha256_hex_to_base64
from marketplace.core.storage.fake import InMemoryStorage
from tests.catalog.factories import make_asset, make_title, principal
from tests.world import World

DATA = b"frame data " * 100
SHA = hashlib.sha256(DATA).hexdigest()


def register(
    session: Session, world: World, title: Title, data: bytes = DATA, **fields: object
) -> Asset:
    return assets.register_asset(
        session,
        principal(world, "studio_a"),
        title.id,
        kind=str(fields.pop("kind", "video")),
        byte_size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        **fields,  # type: ignore[arg-type]
    )


def ready_events(session: Session, asset_id: str) -> int:
    return len(
        list(
            session.scalars(
                select(AuditEvent).where(
                    AuditEvent.action == "asset.ready", AuditEvent.object_id == asset_id
                )
            )
        )
    )


class TestRegister:
    def test_the_server_chooses_a_key_in_the_studios_namespace(
        self, session: Session, world: World
    ) -> None:
        title = make_title(session, world["studio_a"].org_id)
        asset = register(session, world, title, filename="../../studios/other/Trailer final!.mp4")
        org = world["studio_a"].org_id
        assert asset.storage_key == f"studios/{org}/titles/{title.id}/{asset.id}/Trailer_final_.mp4"
        assert (asset.status, asset.studio_id, asset.sha256) == ("pending", org, SHA)
        bare = register(session, world, title, filename="///")
        assert bare.storage_key == f"studios/{org}/titles/{title.id}/{bare.id}"
        audited = session.scalars(
            select(AuditEvent.object_id).where(AuditEvent.action == "asset.registered")
        ).all()
        assert set(audited) >= {asset.id, bare.id}

    def test_the_upload_signs_size_and_checksum(self, session: Session, world: World) -> None:
        title = make_title(session, world["studio_a"].org_id)
        asset = register(session, world, title)
        storage = InMemoryStorage()
        now = datetime(2030, 1, 1, tzinfo=UTC)
        upload = assets.issue_upload(asset, storage, ttl_seconds=600, now=now)
        assert upload.headers == {CHECKSUM_HEADER: sha256_hex_to_base64(SHA)}
        assert upload.expires_at == datetime(2030, 1, 1, 0, 10, tzinfo=UTC)
        assert storage.simulate_put(upload.url, DATA[:-1], upload.headers) == 403
        assert storage.simulate_put(upload.url, DATA, {}) == 403
        assert storage.simulate_put(upload.url, DATA, upload.headers) == 200
        assert storage.head(asset.storage_key) is not None

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("byte_size", 0),
            ("sha256", "abc"),
            ("kind", "hologram"),
            ("language", "zz"),
            ("height", 0),
        ],
    )
    def test_invalid_declarations_are_named(
        self, session: Session, world: World, field: str, value: object
    ) -> None:
        title = make_title(session, world["studio_a"].org_id)
        fields: dict[str, object] = {"kind": "video", "byte_size": 10, "sha256": SHA}
        fields[field] = value
        with pytest.raises(ValidationFailed) as exc:
            assets.register_asset(session, principal(world, "studio_a"), title.id, **fields)  # type: ignore[arg-type]
        assert list(exc.value.errors or {}) == [field]

    def test_external_id_is_unique_per_studio(self, session: Session, world: World) -> None:
        title = make_title(session, world["studio_a"].org_id)
        register(session, world, title, external_id="a-1")
        with pytest.raises(Conflict):
            register(session, world, title, external_id="a-1")

    def test_only_the_owner_or_an_operator_registers(self, session: Session, world: World) -> None:
        title = make_title(session, world["studio_a"].org_id, visibility="listed")
        for name, error in (("developer_x", Forbidden), ("studio_b", NotFound)):
            with pytest.raises(error):
                assets.register_asset(
                    session, principal(world, name), title.id, kind="video", byte_size=1, sha256=SHA
                )
        by_operator = assets.register_asset(
            session, principal(world, "operator"), title.id, kind="video", byte_size=1, sha256=SHA
        )
        assert by_operator.studio_id == world["studio_a"].org_id


class TestComplete:
    def test_without_an_upload_it_stays_pending(self, session: Session, world: World) -> None:
        title = make_title(session, world["studio_a"].org_id)
        asset = register(session, world, title)
        with pytest.raises(UploadNotVerified) as exc:
            assets.complete_asset(
                session, principal(world, "studio_a"), asset.id, storage=InMemoryStorage()
            )
        assert exc.value.status == 409
        assert exc.value.code == "invalid_state"
        assert "no object has been uploaded" in exc.value.detail
        assert asset.status == "pending"
        assert ready_events(session, asset.id) == 0

    def test_a_wrong_size_object_is_refused(self, session: Session, world: World) -> None:
        title = make_title(session, world["studio_a"].org_id)
        asset = register(session, world, title)
        storage = InMemoryStorage()
        storage.put_bytes(asset.storage_key, DATA + b"extra")
        with pytest.raises(UploadNotVerified) as exc:
            assets.complete_asset(session, principal(world, "studio_a"), asset.id, storage=storage)
        assert list(exc.value.errors or {}) == ["byte_size"]
        assert f"{len(DATA) + 5} bytes" in exc.value.detail
        assert asset.status == "pending"

    def test_other_bytes_of_the_right_size_are_refused(
        self, session: Session, world: World
    ) -> None:
        title = make_title(session, world["studio_a"].org_id)
        asset = register(session, world, title)
        storage = InMemoryStorage()
        storage.put_bytes(asset.storage_key, DATA.upper())
        with pytest.raises(UploadNotVerified) as exc:
            assets.complete_asset(session, principal(world, "studio_a"), asset.id, storage=storage)
        assert list(exc.value.errors or {}) == ["sha256"]
        assert asset.status == "pending"

    def test_an_unreachable_store_is_503(self, session: Session, world: World) -> None:
        title = make_title(session, world["studio_a"].org_id)
        asset = register(session, world, title)
        storage = InMemoryStorage()
        storage.available = False
        with pytest.raises(StorageUnavailableError) as exc:
            assets.complete_asset(session, principal(world, "studio_a"), asset.id, storage=storage)
        assert exc.value.status == 503 and exc.value.headers == {"Retry-After": "5"}
        assert asset.status == "pending"

    def test_the_declared_object_makes_it_ready_once(self, session: Session, world: World) -> None:
        title = make_title(session, world["studio_a"].org_id)
        asset = register(session, world, title, duration_seconds=5400.0, height=2160)
        storage = InMemoryStorage()
        storage.put_bytes(asset.storage_key, DATA)
        now = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)
        member = principal(world, "studio_a", member=True)
        done = assets.complete_asset(session, member, asset.id, storage=storage, now=now)
        assert (done.status, done.ready_at) == ("ready", now)
        session.refresh(title)
        assert (title.own_seconds, title.content_hours, title.max_height) == (5400.0, 1.5, 2160)
        again = assets.complete_asset(session, member, asset.id, storage=storage)
        assert again.ready_at == now
        assert ready_events(session, asset.id) == 1

    def test_developers_may_not_complete_and_cannot_see_pending_assets(
        self, session: Session, world: World
    ) -> None:
        title = make_title(session, world["studio_a"].org_id, visibility="listed")
        pending = register(session, world, title)
        ready = make_asset(session, title)
        developer = principal(world, "developer_x")
        with pytest.raises(NotFound):
            assets.complete_asset(session, developer, pending.id, storage=InMemoryStorage())
        with pytest.raises(Forbidden):
            assets.complete_asset(session, developer, ready.id, storage=InMemoryStorage())
        with pytest.raises(NotFound):
            assets.complete_asset(
                session, principal(world, "studio_b"), ready.id, storage=InMemoryStorage()
            )
        listed = session.scalars(assets.title_assets(session, developer, title.id)).all()
        assert [a.id for a in listed] == [ready.id]


class TestDerivedRuntime:
    def test_renditions_do_not_add_up_but_children_do(self, session: Session, world: World) -> None:
        org = world["studio_a"].org_id
        series = make_title(session, org, kind="series")
        season = make_title(session, org, kind="season", parent=series)
        first = make_title(session, org, kind="episode", parent=season)
        second = make_title(session, org, kind="episode", parent=season)
        special = make_title(session, org, kind="episode", parent=series)
        make_asset(session, first, duration_seconds=1800.0, height=1080)
        make_asset(session, first, duration_seconds=1790.0, height=2160)  # another rendition
        make_asset(session, first, kind="audio", duration_seconds=9999.0, height=None)
        make_asset(session, second, duration_seconds=1200.0, height=720)
        make_asset(session, special, duration_seconds=3600.0, height=480)
        make_asset(session, series, kind="video", status="pending", duration_seconds=60.0)
        for title in (series, season, first, second, special):
            session.refresh(title)
        assert (first.own_seconds, first.content_seconds, first.max_height) == (
            1800.0,
            1800.0,
            2160,
        )
        assert (season.own_seconds, season.content_seconds, season.max_height) == (
            0.0,
            3000.0,
            2160,
        )
        assert (series.content_seconds, series.max_height) == (6600.0, 2160)
        assert series.content_hours == round(6600 / 3600, 4)

    def test_refresh_repairs_the_path_after_assets_change(
        self, session: Session, world: World
    ) -> None:
        org = world["studio_a"].org_id
        series = make_title(session, org, kind="series")
        episode = make_title(session, org, kind="episode", parent=series)
        other = make_title(session, org, kind="episode", parent=series)
        longest = make_asset(session, episode, duration_seconds=3000.0, height=2160)
        make_asset(session, episode, duration_seconds=2000.0, height=1080)
        make_asset(session, other, duration_seconds=100.0, height=720)
        # An importer rewrites an asset in place, then asks for a refresh.
        longest.status = "pending"
        session.flush()
        refresh_title_media(session, episode.id)
        session.refresh(series)
        assert (series.content_seconds, series.max_height) == (2100.0, 1080)
        refresh_titles_media(session, [episode.id, other.id, series.id])
        session.refresh(series)
        assert (series.content_seconds, series.max_height) == (2100.0, 1080)

    def test_other_trees_are_untouched(self, session: Session, world: World) -> None:
        org = world["studio_a"].org_id
        one = make_title(session, org, kind="series")
        two = make_title(session, org, kind="series")
        make_asset(session, make_title(session, org, kind="episode", parent=one))
        session.refresh(two)
        assert (two.content_seconds, two.max_height) == (0.0, None)
