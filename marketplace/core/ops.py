"""Operational endpoints: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify
from sqlalchemy import text

from marketplace.core import metrics
from marketplace.core.jobs import queue_depth
from marketplace.core.web import db, read_only, state

log = logging.getLogger(__name__)
bp = Blueprint("ops", __name__)


@bp.get("/healthz")
@read_only
def healthz() -> Response:
    """The process is up."""
    return jsonify(status="ok")


@bp.get("/readyz")
@read_only
def readyz() -> tuple[Response, int]:
    """The database answers, and the object store did at its last probe (every few seconds)."""
    checks: dict[str, str] = {}
    try:
        db().execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception:  # readiness reports; it never raises
        log.exception("readiness: database check failed")
        checks["database"] = "unavailable"
    # The cached probe download grants also consult: both say the same about the store.
    checks["object_storage"] = "ok" if state().storage_health.is_up() else "unavailable"
    ready = all(v == "ok" for v in checks.values())
    return jsonify(status="ready" if ready else "unavailable", checks=checks), 200 if ready else 503


@bp.get("/metrics")
@read_only
def prometheus() -> Response:
    """Prometheus exposition of request counts and latencies, and the jobs' state."""
    body, content_type = metrics.render()
    return Response(body + _job_metrics(), content_type=content_type)


def _job_metrics() -> bytes:
    """Jobs by status (from the database, shared by every process) and the queue's depth."""
    lines = []
    try:
        counts = queue_depth(db())
    except Exception:  # metrics report; they never fail the scrape
        log.exception("metrics: job counts unavailable")
        counts = {}
    if counts:
        lines += ["# HELP clearcut_jobs Background jobs by status.", "# TYPE clearcut_jobs gauge"]
        lines += [f'clearcut_jobs{{status="{status}"}} {n}' for status, n in counts.items()]
    queue = state().runtime.queue
    pending = getattr(queue, "pending", None)
    if pending is not None:
        try:
            depth = pending()
        except Exception:
            log.exception("metrics: queue depth unavailable")
        else:
            lines += [
                "# HELP clearcut_queue_depth Job messages waiting in the queue for a worker.",
                "# TYPE clearcut_queue_depth gauge",
                f"clearcut_queue_depth {depth}",
            ]
    return ("\n".join(lines) + "\n").encode() if lines else b""
