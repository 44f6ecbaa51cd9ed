"""Rate limits per key: 429 `rate_limited` with Retry-After, in memory and in real Redis."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import Connection

from marketplace.app import create_app
from marketplace.core.ratelimit import MemoryRateLimiter, RedisRateLimiter
from tests.helpers import bound_sessions, problem
from tests.world import World

REDIS_URL = "redis://127.0.0.1:6379/0"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_the_limit_applies_per_user_and_says_when_to_retry(
    settings: Any, connection: Connection, storage: Any, world: World
) -> None:
    app = create_app(
        settings.with_overrides(rate_limit_per_minute=3),
        session_factory=bound_sessions(connection),
        storage=storage,
    )
    client = app.test_client()
    headers = world["studio_a"].headers
    answers = [client.get("/api/v1/me", headers=headers) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["RateLimit-Remaining"] for a in answers[:3]] == ["2", "1", "0"]
    body = problem(answers[3], 429, "rate_limited")
    assert 1 <= int(answers[3].headers["Retry-After"]) <= 60
    assert "3 requests a minute" in body["detail"]
    # Another user's budget is untouched.
    assert client.get("/api/v1/me", headers=world["studio_b"].headers).status_code == 200


def test_memory_limiter_opens_a_new_window() -> None:
    clock = Clock(1_000_020.0)
    limiter = MemoryRateLimiter(clock)
    assert [limiter.hit("k", limit=2, window=60).allowed for _ in range(3)] == [True, True, False]
    clock.now += 60
    assert limiter.hit("k", limit=2, window=60).allowed


@pytest.fixture
def redis_client() -> Any:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        pytest.skip(f"no Redis at {REDIS_URL} (the embedded default does not need one)")
    yield client
    client.close()


@pytest.mark.servers
def test_redis_limiter_counts_across_instances(redis_client: Any) -> None:
    prefix = f"clearcut-test:{uuid.uuid4().hex}:"
    clock = Clock(2_000_000.0)
    first = RedisRateLimiter(redis_client, prefix=prefix, clock=clock)
    second = RedisRateLimiter(redis_client, prefix=prefix, clock=clock)  # another worker/host
    results = [
        limiter.hit("u", limit=3, window=60).allowed for limiter in (first, second, first, second)
    ]
    assert results == [True, True, True, False]
    clock.now += 60
    assert second.hit("u", limit=3, window=60).allowed
    keys = list(redis_client.scan_iter(f"{prefix}*"))
    assert keys and all(0 < redis_client.ttl(k) <= 61 for k in keys)
    redis_client.delete(*keys)


def test_an_unreachable_redis_does_not_take_the_api_down() -> None:
    limiter = RedisRateLimiter.from_url("redis://127.0.0.1:1/0")
    assert limiter.hit("u", limit=1, window=60).allowed
