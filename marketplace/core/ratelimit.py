"""Request rate limits per API key: fixed windows in Redis (shared by every worker and host)
or, for the embedded single-process default, in memory."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int


class RateLimiter(Protocol):
    def hit(self, key: str, *, limit: int, window: int) -> Decision: ...


class MemoryRateLimiter:
    """One process's counters; right for `make run`, wrong for several workers (use Redis)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[int, int]] = {}

    def hit(self, key: str, *, limit: int, window: int) -> Decision:
        now = self._clock()
        bucket = int(now // window)
        with self._lock:
            start, count = self._windows.get(key, (bucket, 0))
            if start != bucket:
                start, count = bucket, 0
            count += 1
            self._windows[key] = (start, count)
            if len(self._windows) > 100_000:  # forget old windows; bounded memory
                self._windows = {k: v for k, v in self._windows.items() if v[0] == bucket}
        reset = int((bucket + 1) * window - now) or 1
        return Decision(count <= limit, limit, max(0, limit - count), reset)


class RedisRateLimiter:
    """Fixed windows in Redis: INCR plus EXPIRE in one round trip."""

    def __init__(
        self, client: Any, *, prefix: str = "clearcut:rl:", clock: Callable[[], float] = time.time
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._clock = clock

    @classmethod
    def from_url(cls, url: str) -> RedisRateLimiter:
        import redis

        return cls(redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5))

    def hit(self, key: str, *, limit: int, window: int) -> Decision:
        now = self._clock()
        bucket = int(now // window)
        name = f"{self._prefix}{key}:{bucket}"
        reset = int((bucket + 1) * window - now) or 1
        try:
            pipe = self._client.pipeline(transaction=True)
            pipe.incr(name)
            pipe.expire(name, window + 1)
            count = int(pipe.execute()[0])
        except Exception:  # an unreachable limiter must not take the API down with it
            log.warning("rate limiter unavailable; allowing the request", exc_info=True)
            return Decision(True, limit, limit, reset)
        return Decision(count <= limit, limit, max(0, limit - count), reset)
