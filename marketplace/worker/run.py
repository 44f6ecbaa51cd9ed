"""`marketplace worker`: a huey consumer that runs jobs, fires the schedules and sweeps."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from huey import crontab

from marketplace.core.jobs import Handler, due_for_dispatch, enqueue, note_dispatched
from marketplace.core.queue import HueyQueue
from marketplace.core.runtime import Runtime
from marketplace.worker.runner import JobRunner
from marketplace.worker.tasks import HANDLERS, SCHEDULES, Schedule

log = logging.getLogger("marketplace.worker")


def schedule_key(job: str, at: datetime) -> str:
    """One job per schedule per minute, whichever worker's scheduler fires first."""
    return f"{job}@{at.strftime('%Y-%m-%dT%H:%M')}"


def fire(runtime: Runtime, schedule: Schedule) -> int | None:
    """Enqueue a schedule's job for this minute, unless another worker already has."""
    with runtime.unit_of_work() as uow:
        return enqueue(uow.session, schedule.job, key=schedule_key(schedule.job, runtime.clock()))


def sweep(runtime: Runtime) -> int:
    """Hand to the queue again the jobs that are due but were not taken (a hand-off lost after
    commit) and those whose worker died (lease run out). Safe to run on every worker at once:
    a job runs once whoever takes it (the claim is one conditional UPDATE)."""
    queue = runtime.queue
    if queue is None:
        return 0
    now = runtime.clock()
    with runtime.unit_of_work() as uow:
        ids = due_for_dispatch(uow.session, now=now)
        note_dispatched(uow.session, ids, now=now)
    for job_id in ids:
        queue.dispatch(job_id)
    if ids:
        log.info("sweep handed %s jobs to the queue again", len(ids))
    return len(ids)


def build_worker(
    runtime: Runtime,
    *,
    handlers: Iterable[Handler] = HANDLERS,
    schedules: Iterable[Schedule] = SCHEDULES,
) -> tuple[HueyQueue, JobRunner]:
    """Wire a runtime's queue to run jobs with `handlers` and fire `schedules` (and the sweep,
    every minute); tests pass handlers of their own."""
    queue = runtime.queue
    if not isinstance(queue, HueyQueue):
        raise RuntimeError("a worker needs the runtime's huey queue (QUEUE_URL)")
    runner = JobRunner(runtime, {h.name: h for h in handlers})
    queue.serve(runner.run)
    huey = queue.huey
    for schedule in schedules:
        _periodic(huey, schedule.minute, schedule.hour, f"schedule.{schedule.job}")(
            _firing(runtime, schedule)
        )
    _periodic(huey, "*", "*", "jobs.sweep")(lambda: sweep(runtime))
    return queue, runner


def _periodic(huey: Any, minute: str, hour: str, name: str) -> Any:
    return huey.periodic_task(crontab(minute=minute, hour=hour), name=name)


def _firing(runtime: Runtime, schedule: Schedule) -> Any:
    def fire_schedule() -> None:
        fire(runtime, schedule)

    return fire_schedule


def run_worker(
    runtime: Runtime,
    *,
    threads: int = 2,
    handlers: Iterable[Handler] = HANDLERS,
    schedules: Iterable[Schedule] = SCHEDULES,
) -> None:
    """Run jobs until SIGINT (finish what runs) or SIGTERM (stop now; leases hand the jobs on)."""
    queue, _ = build_worker(runtime, handlers=handlers, schedules=schedules)
    sweep(runtime)  # what a stopped worker left is taken up at once
    consumer = queue.huey.create_consumer(
        workers=threads, worker_type="thread", periodic=True, initial_delay=0.05, max_delay=1.0
    )
    log.info("worker running with %s threads on %s", threads, runtime.settings.queue_url)
    consumer.run()
