"""`GET /jobs` and `GET /jobs/{id}`: background jobs, for operators."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView
from sqlalchemy import select

from marketplace.accounts.principal import Principal
from marketplace.core.api import Blueprint, PageArgsSchema, Schema, UTCDateTime, page_of
from marketplace.core.errors import Forbidden, NotFound
from marketplace.core.jobs import JOB_STATUSES, Job
from marketplace.core.pagination import SortKey, paginate
from marketplace.core.web import current_actor, db, read_only, state
from marketplace.worker.runner import describe

blp = Blueprint("jobs", __name__, url_prefix="/api/v1", description="Background jobs (operators)")


class JobSchema(Schema):
    id = ma.fields.String()
    name = ma.fields.String()
    status = ma.fields.String(metadata={"enum": list(JOB_STATUSES)})
    attempts = ma.fields.Integer()
    max_attempts = ma.fields.Integer()
    last_error = ma.fields.String(allow_none=True)
    args = ma.fields.Dict()
    created_at = UTCDateTime()
    run_after = UTCDateTime()
    started_at = UTCDateTime(allow_none=True)
    finished_at = UTCDateTime(allow_none=True)


class JobQueryArgsSchema(PageArgsSchema):
    status = ma.fields.String(validate=ma.validate.OneOf(JOB_STATUSES))
    name = ma.fields.String(validate=ma.validate.Length(max=80))


JobPageSchema = page_of(JobSchema, "JobPageSchema")


def _operator() -> Principal:
    viewer: Principal = current_actor()
    if not viewer.is_operator:
        raise Forbidden("background jobs are for operators")
    return viewer


@blp.route("/jobs")
class Jobs(MethodView):
    @blp.arguments(JobQueryArgsSchema(), location="query")
    @blp.response(200, JobPageSchema)
    @read_only
    def get(self, args: dict[str, Any]) -> Any:
        """List background jobs, newest first (operators); `status=failed` for those given up."""
        _operator()
        stmt = select(Job)
        if args.get("status"):
            stmt = stmt.where(Job.status == args["status"])
        if args.get("name"):
            stmt = stmt.where(Job.name == args["name"])
        page = paginate(
            db(),
            stmt,
            keys=[SortKey(Job.id, descending=True)],
            limit=args["limit"],
            cursor=args["cursor"],
            codec=state().cursors,
            scope="jobs",
        )
        return {"items": [describe(job) for job in page.items], "next_cursor": page.next_cursor}


@blp.route("/jobs/<job_id>")
class JobById(MethodView):
    @blp.response(200, JobSchema)
    @read_only
    def get(self, job_id: str) -> Any:
        """Get one background job (operators)."""
        _operator()
        number = job_id.removeprefix("job_")
        job = db().get(Job, int(number)) if number.isdigit() and len(number) < 19 else None
        if job is None:
            raise NotFound(f"job {job_id} not found")
        return describe(job)
