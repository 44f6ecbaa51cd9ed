"""The job queue on huey (a maintained task queue library): SQLite for the embedded default,
Redis in production (QUEUE_URL). It carries job ids only; the jobs themselves, their state,
retries and leases live in the database (marketplace.core.jobs).

Why huey: one small, maintained library whose storage is a SQLite file shared by processes on
one machine (no server to run for `make run`) or Redis (several workers on several machines),
with the same API; a consumer with worker threads and a scheduler for periodic tasks. Its
delivery is at most once (a message is removed from the queue when a worker takes it): the
database's leases and the sweep make ours at least once, and the job's "done" committing with
its effect makes the effect happen once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from huey import Huey, RedisHuey, SqliteHuey
from huey.constants import EmptyData

log = logging.getLogger("marketplace.queue")

RUN_JOB = "clearcut.run_job"


def make_huey(queue_url: str, *, name: str = "clearcut") -> Huey:
    """A huey instance for `sqlite:///path` or `redis://…`; results are not kept (the database
    holds every job's outcome)."""
    if queue_url.startswith("sqlite:///"):
        path = Path(queue_url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        return SqliteHuey(name, filename=str(path), results=False, utc=True)
    if queue_url.startswith(("redis://", "rediss://", "unix://")):
        return RedisHuey(name, url=queue_url, results=False, utc=True)
    raise ValueError("QUEUE_URL must be sqlite:///PATH or redis://HOST:PORT/DB")


class HueyQueue:
    """JobQueue on huey: `dispatch` puts a job id on the queue; a worker process calls
    `serve(executor)` so that its consumer runs each id it takes."""

    def __init__(self, huey: Huey) -> None:
        self.huey = huey
        self._executor: Callable[[int], object] | None = None
        self._task: Any = huey.task(name=RUN_JOB)(self._execute)

    def dispatch(self, job_id: int, *, delay_seconds: float = 0.0) -> None:
        if delay_seconds > 0:
            self._task.schedule(args=(job_id,), delay=delay_seconds)
        else:
            self._task(job_id)

    def serve(self, executor: Callable[[int], object]) -> None:
        """Run jobs taken from the queue with `executor` (the worker's job runner)."""
        self._executor = executor

    def pending(self) -> int:
        """Messages waiting in the queue (not yet taken by a worker)."""
        return int(self.huey.pending_count())

    def publish(self, key: str, value: Mapping[str, Any]) -> None:
        """Post a running job's progress where any process can read it (the queue's own
        store: on SQLite the database's write lock may be held by that very job)."""
        self.huey.storage.put_data(f"progress:{key}", json.dumps(dict(value)).encode())

    def read(self, key: str) -> dict[str, Any] | None:
        """The last progress posted under key, or None."""
        raw = self.huey.storage.peek_data(f"progress:{key}")
        if raw is EmptyData or raw is None:
            return None
        value: dict[str, Any] = json.loads(raw)
        return value

    def _execute(self, job_id: int) -> None:
        if self._executor is None:
            raise RuntimeError("this process does not run jobs (no worker runner)")
        self._executor(job_id)


class ListQueue:
    """A JobQueue that only records what was dispatched (unit tests, and processes that
    run no worker and want nothing queued)."""

    def __init__(self) -> None:
        self.dispatched: list[tuple[int, float]] = []
        self.board: dict[str, dict[str, Any]] = {}

    def dispatch(self, job_id: int, *, delay_seconds: float = 0.0) -> None:
        self.dispatched.append((job_id, delay_seconds))

    def pending(self) -> int:
        return len(self.dispatched)

    def publish(self, key: str, value: Mapping[str, Any]) -> None:
        self.board[key] = dict(value)

    def read(self, key: str) -> dict[str, Any] | None:
        return self.board.get(key)
