"""Real worker processes on the real queue backends: the embedded default (huey on a SQLite
file) beside SQLite, and Redis beside PostgreSQL. A worker killed with SIGKILL mid-job leaves
nothing half-done; the job runs again on another worker and its effect happens once."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from config import Settings
from marketplace.audit.models import AuditEvent
from marketplace.bootstrap import build_runtime
from marketplace.core.jobs import Job, enqueue
from marketplace.core.storage.fake import InMemoryStorage
from marketplace.worker.run import sweep

REDIS = ("127.0.0.1", 6379)

# A worker process with one handler of the test's own: its effect (an audit event) is written
# in the job's unit of work; the first attempt then hangs, to be killed.
_WORKER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from config import load_settings
    from marketplace.audit.service import record_event
    from marketplace.bootstrap import build_runtime
    from marketplace.core.jobs import Handler
    from marketplace.core.storage.fake import InMemoryStorage
    from marketplace.worker.run import run_worker

    marker = Path(sys.argv[1])

    def slow_effect(ctx, args):
        record_event(ctx.uow.session, None, "test.effect", object_id=None, organization_id=None)
        ctx.uow.session.flush()
        if ctx.attempt == 1:
            marker.write_text(str(ctx.job_id))
            time.sleep(120)  # killed here

    runtime = build_runtime(load_settings(), storage=InMemoryStorage("w"))
    run_worker(runtime, threads=1, handlers=[Handler("test.slow_effect", slow_effect)],
               schedules=[])
    """
)


def _redis_up() -> bool:
    try:
        with socket.create_connection(REDIS, timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def queue_settings(settings: Settings, dialect: str, tmp_path: Path) -> Iterator[Settings]:
    """SQLite beside the embedded queue; PostgreSQL beside Redis, as in production."""
    name = f"clearcut-test-{uuid.uuid4().hex[:8]}"
    if dialect == "sqlite":
        yield settings.with_overrides(
            queue_url=f"sqlite:///{tmp_path / 'queue.db'}", queue_name=name, job_lease_seconds=2
        )
        return
    if not _redis_up():
        if os.environ.get("CI"):
            pytest.fail("Redis is not running on 127.0.0.1:6379 (.ci/run starts it)")
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    yield settings.with_overrides(
        queue_url=f"redis://{REDIS[0]}:{REDIS[1]}/0", queue_name=name, job_lease_seconds=2
    )
    from huey import RedisHuey

    RedisHuey(name, url=f"redis://{REDIS[0]}:{REDIS[1]}/0").storage.flush_all()


def _start_worker(settings: Settings, marker: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": os.getcwd(),
        "MARKETPLACE_ENV": "test",
        "DATABASE_URL": settings.database_url,
        "SECRET_KEY": settings.secret_key,
        "QUEUE_URL": settings.queue_url,
        "QUEUE_NAME": settings.queue_name,
        "JOB_LEASE_SECONDS": str(settings.job_lease_seconds),
        "LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [sys.executable, "-c", _WORKER, str(marker)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait(predicate: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _job(engine: Engine, job_id: int) -> Job:
    with Session(engine) as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job


def _effects(engine: Engine) -> int:
    with Session(engine) as session:
        return len(
            session.scalars(select(AuditEvent).where(AuditEvent.action == "test.effect")).all()
        )


@pytest.mark.committing
def test_a_job_killed_mid_run_runs_again_and_its_effect_happens_once(
    queue_settings: Settings, committing_engine: Engine, tmp_path: Path
) -> None:
    runtime = build_runtime(queue_settings, storage=InMemoryStorage("t"))
    marker = tmp_path / "started"
    workers: list[subprocess.Popen[bytes]] = []
    try:
        with runtime.unit_of_work() as uow:
            job_id = enqueue(uow.session, "test.slow_effect")
        assert job_id is not None  # handed to the queue after the commit
        workers.append(_start_worker(queue_settings, marker))
        _wait(marker.exists, 60, "the first worker to start the job")
        os.kill(workers[0].pid, signal.SIGKILL)
        workers[0].wait(timeout=10)
        killed = _job(committing_engine, job_id)
        assert (killed.status, killed.attempts) == ("running", 1)
        assert _effects(committing_engine) == 0  # nothing of the killed attempt committed

        workers.append(_start_worker(queue_settings, marker))
        time.sleep(queue_settings.job_lease_seconds + 0.5)  # the dead worker's lease runs out

        def swept_and_done() -> bool:
            # What every worker's sweep does each minute (the second worker's own, as it
            # starts, may be the one that hands the job over): here every second.
            if _job(committing_engine, job_id).status == "succeeded":
                return True
            sweep(runtime)
            time.sleep(0.9)
            return False

        _wait(swept_and_done, 60, "the second worker to finish the job")
        done = _job(committing_engine, job_id)
        assert done.attempts == 2
        assert _effects(committing_engine) == 1
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.terminate()
                try:
                    worker.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    worker.kill()
        runtime.dispose()
