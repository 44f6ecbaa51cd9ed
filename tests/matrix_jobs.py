"""Authorization matrix entries: background jobs are for operators only, whoever's work they
carry (a job's arguments may name any tenant's objects)."""

from __future__ import annotations

from marketplace.core.jobs import enqueue
from tests.matrix import Ctx, Route, operator_only


def job_of(ctx: Ctx, owner: str) -> dict[str, str]:
    job_id = enqueue(ctx.session, "assets.verify", {"asset_id": f"ast_of_{owner}"})
    return {"job_id": f"job_{job_id}"}


ROUTES: list[Route] = [
    Route("GET", "/api/v1/jobs", operator_only(200)),
    Route("GET", "/api/v1/jobs/{job_id}", operator_only(200), target=job_of),
]
