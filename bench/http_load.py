"""A small closed-loop HTTP load generator (keep-alive, several client processes)."""

from __future__ import annotations

import http.client
import multiprocessing as mp
import time
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LoadResult:
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p95_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "seconds": round(self.seconds, 3),
            "requests_per_second": round(self.rps, 1),
            "p50_ms": round(self.p50_ms, 3),
            "p95_ms": round(self.p95_ms, 3),
        }


def _client(port: int, path: str, headers: dict[str, str], duration: float, out: Any) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + duration
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        try:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                errors += 1
            if response.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        except (OSError, http.client.HTTPException):
            errors += 1
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        latencies.append(time.perf_counter() - start)
    out.put((latencies, errors))


def run_load(
    port: int,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    clients: int = 4,
    duration: float = 5.0,
) -> LoadResult:
    """Hit `path` from `clients` processes for `duration` seconds."""
    queue: Any = mp.Queue()
    procs = [
        mp.Process(target=_client, args=(port, path, headers or {}, duration, queue))
        for _ in range(clients)
    ]
    started = time.perf_counter()
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - started
    latencies = sorted(x for lat, _ in results for x in lat)
    errors = sum(e for _, e in results)

    def pct(q: float) -> float:
        return (
            latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else 0
        )

    return LoadResult(len(latencies), errors, elapsed, pct(0.50), pct(0.95))
