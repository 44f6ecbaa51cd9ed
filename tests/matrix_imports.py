"""Authorization matrix entries for the bulk catalog import routes."""

from __future__ import annotations

from catalog.models import ImportJob
from tests.matrix import ANON, Ctx, Route


def import_report_of(ctx: Ctx, owner: str) -> dict[str, str]:
    job = ImportJob(
        studio_id=ctx.world[owner].org_id,
        format="jsonl",
        file_sha256="0" * 64,
        status="succeeded",
        rows_total=0,
        rows_ok=0,
        summary={},
        errors=[],
    )
    ctx.session.add(job)
    ctx.session.flush()
    return {"import_id": job.id}


def catalog_editors(status: int) -> object:
    """Studios and operators get `status`; developers are refused before the body is read."""

    def expect(actor: str, owner: str | None) -> int:
        if actor == ANON:
            return 401
        return 403 if actor.startswith("developer") else status

    return expect


def report_readers(actor: str, owner: str | None) -> int:
    """The importing studio and operators read a report; to anyone else it does not exist."""
    if actor == ANON:
        return 401
    if actor == "operator" or (actor == owner and actor.startswith("studio")):
        return 200
    return 404


ROUTES: list[Route] = [
    # The matrix sends JSON, never a file: a studio or operator gets as far as the form's 422.
    Route("POST", "/api/v1/catalog/imports", catalog_editors(422)),  # type: ignore[arg-type]
    Route("GET", "/api/v1/catalog/imports/{import_id}", report_readers, target=import_report_of),
]
