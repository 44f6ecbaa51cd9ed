"""Running one job: claim it, run its handler in a unit of work that also marks it done, and on
failure record the attempt and queue the retry after its backoff."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import update

from marketplace.core.jobs import (
    Handler,
    Job,
    backoff_seconds,
    claim,
    record_failure,
    renew_lease,
)
from marketplace.core.runtime import Runtime, UnitOfWork

log = logging.getLogger("marketplace.worker")


@dataclass(frozen=True)
class JobContext:
    """What a handler works with: the runtime, and the unit of work its job's "done" commits
    in (write the job's effect there, so that effect and "done" commit together)."""

    runtime: Runtime
    uow: UnitOfWork
    job_id: int
    attempt: int


class JobRunner:
    """Runs job ids taken from the queue with the handlers it was given (explicitly)."""

    def __init__(self, runtime: Runtime, handlers: Mapping[str, Handler]) -> None:
        self.runtime = runtime
        self.handlers = dict(handlers)
        self.lease_seconds = float(runtime.settings.job_lease_seconds)

    def run(self, job_id: int) -> str:
        """Run one job if it is due and free; returns what happened (for logs and tests)."""
        runtime = self.runtime
        with runtime.unit_of_work() as uow:
            job = claim(uow.session, job_id, now=runtime.clock(), lease_seconds=self.lease_seconds)
            if job is None:
                return "skipped"
            name, args, attempt = job.name, dict(job.args), job.attempts
        handler = self.handlers.get(name)
        stop = threading.Event()
        heartbeat = threading.Thread(
            target=self._heartbeat, args=(job_id, stop), name=f"job-{job_id}-lease", daemon=True
        )
        heartbeat.start()
        try:
            if handler is None:
                raise LookupError(f"no handler for jobs named {name!r} in this worker")
            with runtime.unit_of_work() as uow:
                handler.run(JobContext(runtime, uow, job_id, attempt), args)
                self._mark_succeeded(uow, job_id, attempt)
            log.info("job %s (%s) succeeded on attempt %s", job_id, name, attempt)
            return "succeeded"
        except Exception as exc:
            with runtime.unit_of_work() as uow:
                delay = record_failure(
                    uow.session,
                    job_id,
                    exc,
                    now=runtime.clock(),
                    max_attempts=handler.max_attempts if handler is not None else None,
                    backoff=handler.backoff if handler is not None else backoff_seconds,
                )
            if delay is not None and runtime.queue is not None:
                try:
                    runtime.queue.dispatch(job_id, delay_seconds=delay)
                except Exception:  # the sweep will
                    log.warning("retry of job %s not queued", job_id, exc_info=True)
            return "retrying" if delay is not None else "failed"
        finally:
            stop.set()
            heartbeat.join()

    def _mark_succeeded(self, uow: UnitOfWork, job_id: int, attempt: int) -> None:
        # Fenced by the attempt: if this worker's lease ran out and another took the job over,
        # this attempt's work rolls back rather than commit beside the other's.
        done = uow.session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == "running", Job.attempts == attempt)
            .values(
                status="succeeded",
                finished_at=self.runtime.clock(),
                lease_expires_at=None,
                last_error=None,
            )
            .execution_options(synchronize_session=False)
        )
        if not done.rowcount:  # type: ignore[attr-defined]
            raise LeaseLost(f"job {job_id} was taken over while attempt {attempt} ran")

    def _heartbeat(self, job_id: int, stop: threading.Event) -> None:
        while not stop.wait(self.lease_seconds / 3):
            try:
                with self.runtime.unit_of_work() as uow:
                    renew_lease(
                        uow.session,
                        job_id,
                        now=self.runtime.clock(),
                        lease_seconds=self.lease_seconds,
                    )
            except Exception:  # a missed renewal only risks a takeover, which is fenced
                log.warning("lease of job %s not renewed", job_id, exc_info=True)


class LeaseLost(RuntimeError):
    """Another worker took the job over: this attempt's writes must not commit."""


def describe(job: Job) -> dict[str, Any]:
    """A job as operators see it (GET /jobs)."""
    return {
        "id": job.public_id,
        "name": job.name,
        "status": job.status,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "last_error": job.last_error,
        "args": job.args,
        "created_at": job.created_at,
        "run_after": job.run_after,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
    }
