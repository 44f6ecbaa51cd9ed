"""The principal cache: a key's principal from memory for a few seconds, never another key's,
and revocation seen at once in the process that revokes, within the bound everywhere else."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from config import Settings
from marketplace.accounts import service
from marketplace.accounts.cache import PRINCIPAL_CACHE, PrincipalCache
from marketplace.accounts.principal import Principal
from marketplace.app import create_app
from tests.helpers import problem
from tests.world import World


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _principal(key_id: str = "key_1", user_id: str = "usr_1") -> Principal:
    return Principal(
        user_id=user_id, organization_id="org_1", kind="studio", role="owner", key_id=key_id
    )


class TestPrincipalCache:
    def test_an_entry_lives_for_its_seconds(self) -> None:
        clock = FakeClock()
        cache = PrincipalCache(2, clock=clock)
        cache.put("digest", _principal(), cache.generation)
        clock.now += 1.9
        assert cache.get("digest") == _principal()
        clock.now += 0.1
        assert cache.get("digest") is None
        assert len(cache) == 0

    def test_forgetting_a_key_drops_only_that_key(self) -> None:
        cache = PrincipalCache(2, clock=FakeClock())
        cache.put("a", _principal("key_a"), cache.generation)
        cache.put("b", _principal("key_b"), cache.generation)
        cache.forget_key("key_a")
        assert cache.get("a") is None
        assert cache.get("b") == _principal("key_b")

    def test_a_lookup_that_raced_a_revocation_is_not_stored(self) -> None:
        cache = PrincipalCache(2, clock=FakeClock())
        generation = cache.generation  # a lookup starts, reads the key as valid ...
        cache.forget_key("key_other")  # ... while a revocation commits
        cache.put("digest", _principal(), generation)
        assert cache.get("digest") is None

    def test_zero_seconds_stores_nothing(self) -> None:
        cache = PrincipalCache(0)
        cache.put("digest", _principal(), cache.generation)
        assert cache.get("digest") is None

    def test_it_is_bounded(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from marketplace.accounts import cache as cache_module

        monkeypatch.setattr(cache_module, "MAX_ENTRIES", 3)
        cache = PrincipalCache(2, clock=FakeClock())
        for i in range(10):
            cache.put(f"d{i}", _principal(f"key_{i}"), cache.generation)
        assert len(cache) <= 3
        assert cache.get("d9") == _principal("key_9")


class TestAuthenticateWithACache:
    def test_a_key_is_answered_from_memory_once_marked_used(
        self, session: Session, world: World, engine: Engine
    ) -> None:
        cache = PrincipalCache(2)
        key = world["studio_a"].key
        first = service.authenticate(session, key, cache=cache)  # marks last_used_at
        assert first is not None and len(cache) == 0
        second = service.authenticate(session, key, cache=cache)  # recent: stored
        assert second == first and len(cache) == 1
        statements: list[str] = []

        def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            statements.append(statement)

        event.listen(engine, "before_cursor_execute", seen)
        try:
            assert service.authenticate(session, key, cache=cache) == first
        finally:
            event.remove(engine, "before_cursor_execute", seen)
        assert statements == []  # no query

    def test_a_wrong_secret_with_a_cached_prefix_is_refused(
        self, session: Session, world: World
    ) -> None:
        cache = PrincipalCache(2)
        key = world["studio_a"].key
        for _ in range(2):
            assert service.authenticate(session, key, cache=cache) is not None
        assert len(cache) == 1
        forged = key[:-4] + ("aaaa" if not key.endswith("aaaa") else "bbbb")
        assert service.authenticate(session, forged, cache=cache) is None

    def test_each_key_gets_its_own_principal(self, session: Session, world: World) -> None:
        cache = PrincipalCache(2)
        actors = [world["studio_a"], world["studio_b"], world["developer_x"]]
        for _ in range(3):
            for actor in actors:
                found = service.authenticate(session, actor.key, cache=cache)
                assert found is not None
                assert (found.user_id, found.organization_id) == (actor.user_id, actor.org_id)
        assert len(cache) == len(actors)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """This module's apps opt in to the cache (off by default: AUTH_CACHE_SECONDS=0)."""
    return settings.with_overrides(auth_cache_seconds=2)


def test_the_cache_is_off_unless_asked_for(client: Any, world: World) -> None:
    from config import load_settings

    assert load_settings({}).auth_cache_seconds == 0
    assert PrincipalCache(0).seconds == 0


class TestRevocationThroughTheApi:
    def _use(self, client: Any, headers: dict[str, str], times: int = 3) -> None:
        for _ in range(times):
            assert client.get("/api/v1/me", headers=headers).status_code == 200

    def test_a_cached_key_is_refused_at_once_after_its_revocation(
        self, app: Any, client: Any, world: World
    ) -> None:
        actor = world["developer_x"]
        created = client.post("/api/v1/api-keys", headers=actor.headers).get_json()
        headers = {"Authorization": f"Bearer {created['api_key']}"}
        self._use(client, headers)
        cache = app.extensions["clearcut"].runtime.get(PRINCIPAL_CACHE)
        assert any(p.key_id == created["id"] for p, _ in cache._entries.values())
        revoked = client.delete(f"/api/v1/api-keys/{created['id']}", headers=actor.headers)
        assert revoked.status_code == 204
        problem(client.get("/api/v1/me", headers=headers), 401, "unauthenticated")
        assert client.get("/api/v1/me", headers=actor.headers).status_code == 200

    @pytest.mark.committing
    def test_another_process_honours_a_revoked_key_for_at_most_the_bound(
        self,
        committed_world: World,
        committing_engine: Engine,
        settings: Settings,
        storage: Any,
        payments: Any,
    ) -> None:
        world = committed_world
        clock = FakeClock()
        # Two workers on one database, each with its own cache.
        worker_a = create_app(settings, storage=storage, payments=payments)
        worker_b = create_app(settings, storage=storage, payments=payments)
        cache_b = worker_b.extensions["clearcut"].runtime.get(PRINCIPAL_CACHE)
        cache_b._clock = clock
        a, b = worker_a.test_client(), worker_b.test_client()
        owner = world["developer_x"]
        created = a.post("/api/v1/api-keys", headers=owner.headers).get_json()
        headers = {"Authorization": f"Bearer {created['api_key']}"}
        self._use(b, headers)
        assert (
            a.delete(f"/api/v1/api-keys/{created['id']}", headers=owner.headers).status_code == 204
        )
        problem(a.get("/api/v1/me", headers=headers), 401, "unauthenticated")
        # Worker B has not heard of it: within its bound, the key still works there ...
        clock.now += cache_b.seconds - 0.1
        assert b.get("/api/v1/me", headers=headers).status_code == 200
        # ... and not a moment past it.
        clock.now += 0.1
        problem(b.get("/api/v1/me", headers=headers), 401, "unauthenticated")
        for app in (worker_a, worker_b):
            app.extensions["clearcut"].runtime.dispose()
