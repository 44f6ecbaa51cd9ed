"""`POST /catalog/imports` and `GET /catalog/imports/{id}`: bulk catalog import and its report."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import request
from flask.views import MethodView
from flask_smorest.fields import Upload

from catalog.access import require_catalog_editor
from catalog.imports.queued import progress_of, queue_import
from catalog.imports.service import get_import, import_catalog
from catalog.models import ImportJob
from marketplace.accounts.principal import Principal
from marketplace.core.api import Blueprint, Schema, UTCDateTime
from marketplace.core.db import statement_bound
from marketplace.core.web import current_actor, db, read_only, state

blp = Blueprint(
    "catalog_imports",
    __name__,
    url_prefix="/api/v1",
    description="Bulk import of a studio's catalog (CSV or JSON Lines)",
)


@blp.before_request
def _allow_large_uploads() -> None:
    if request.method != "POST":
        return
    # Developers never import: refused before a byte of a possibly huge body is read.
    require_catalog_editor(_principal())
    # Only this endpoint takes files of hundreds of MB; werkzeug spools them to disk, and
    # anything beyond the import limit is refused with 413 before it is read.
    request.max_content_length = state().settings.max_import_bytes


class ImportUploadSchema(Schema):
    """The multipart form: the file, and for an operator the studio it imports into."""

    file = Upload(
        required=True,
        metadata={
            "description": "CSV (header row first, `type` column first, lists separated by `|`) "
            "or JSON Lines (one object per line); told apart by the file name's extension, "
            "else by the first character"
        },
    )
    studio_id = ma.fields.String(
        validate=ma.validate.Length(min=1, max=40),
        metadata={
            "description": "The studio to import into: operators only (a studio imports into "
            "its own catalog)"
        },
    )

    @ma.pre_load
    def _with_form_fields(self, data: Any, **kwargs: Any) -> dict[str, Any]:
        # flask-smorest reads a multipart body's files and its plain fields as two locations;
        # reading both here keeps one documented form, whose unknown fields are refused.
        merged: dict[str, Any] = request.form.to_dict()
        merged.update(request.files.to_dict())
        # webargs drops unknown fields of the `files` location; this form refuses them.
        unknown = sorted(set(merged) - set(self.fields))
        if unknown:
            raise ma.ValidationError({name: ["Unknown field."] for name in unknown})
        return merged


class ImportErrorSchema(Schema):
    row = ma.fields.Integer(
        metadata={"description": "1-based line of the file (a CSV's header is row 1)"}
    )
    field = ma.fields.String(
        allow_none=True, metadata={"description": "null when the whole row is at fault"}
    )
    message = ma.fields.String()


class ImportCountsSchema(Schema):
    created = ma.fields.Integer()
    updated = ma.fields.Integer()
    unchanged = ma.fields.Integer()


class ImportProgressSchema(Schema):
    phase = ma.fields.String(
        metadata={"description": "check (the file read and checked) | write (records written)"}
    )
    done = ma.fields.Integer()
    total = ma.fields.Integer()
    unit = ma.fields.String(metadata={"description": "bytes (check) | records (write)"})


class ImportReportSchema(Schema):
    id = ma.fields.String()
    studio_id = ma.fields.String()
    status = ma.fields.String(
        metadata={
            "description": "queued | running (a large file imported by a worker) | succeeded | "
            "failed",
            "enum": ["queued", "running", "succeeded", "failed"],
        }
    )
    format = ma.fields.String(metadata={"description": "csv | jsonl"})
    file_sha256 = ma.fields.String()
    rows_total = ma.fields.Integer(metadata={"description": "Records in the file"})
    rows_ok = ma.fields.Integer(metadata={"description": "Records without any error"})
    errors = ma.fields.List(
        ma.fields.Nested(ImportErrorSchema),
        metadata={"description": "Every bad row, ordered by row; at most the first 1,000"},
    )
    errors_total = ma.fields.Integer(
        metadata={"description": "All errors found, including those beyond the list"}
    )
    records = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Integer(),
        metadata={"description": "Records in the file by type"},
    )
    results = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Nested(ImportCountsSchema),
        metadata={"description": "By type: records created, updated, unchanged (success only)"},
    )
    created_at = UTCDateTime()
    finished_at = UTCDateTime(allow_none=True)
    progress = ma.fields.Nested(
        ImportProgressSchema,
        allow_none=True,
        metadata={"description": "While a worker imports it: what it has done so far"},
    )


def _principal() -> Principal:
    actor: Principal = current_actor()
    return actor


def _report(job: ImportJob) -> dict[str, Any]:
    summary = job.summary or {}
    progress = progress_of(state().runtime.queue, job)
    status = "running" if job.status == "queued" and progress is not None else job.status
    return {
        "id": job.id,
        "studio_id": job.studio_id,
        "status": status,
        "progress": progress,
        "format": job.format,
        "file_sha256": job.file_sha256,
        "rows_total": job.rows_total,
        "rows_ok": job.rows_ok,
        "errors": job.errors,
        "errors_total": summary.get("errors_total", len(job.errors)),
        "records": summary.get("records", {}),
        "results": summary.get("results", {}),
        "created_at": job.created_at,
        "finished_at": job.finished_at,
    }


_IMPORT_DESCRIPTION = """\
One file (CSV or JSON Lines) holds titles, assets, rights grants, talent, credits and consents,
each row with a `type` and the resource's fields, other records named by external id
(`parent_external_id`, `title_external_id`, `talent_external_id`), in any order.

- **All or nothing.** Every row is checked first, with the references between rows (duplicate
  external ids, unknown titles or talent, a parent of the wrong kind, codes, EIDR, uses, windows).
  If any row is bad the import answers 201 with `status: failed` and every bad row in `errors`
  (`row` is the file's line number; a CSV's header is row 1); nothing but the report is written.
- **Idempotent.** Records are matched by external id within the studio (credits by title, talent
  and role): new ones are created, changed ones updated in place (an optional field left empty
  is cleared), unchanged ones left alone; nothing is ever deleted. `kind` and parent of an
  existing title cannot change. Imported assets are `pending` until completed; an asset whose
  size, checksum or file name changes goes back to `pending`. `storage_key` (or `filename`)
  only names the file: the object's key is chosen by the server, as for `POST /titles/{id}/assets`.
- **CSV:** a header row, `type` first; lists separated by `|`; talent `external_ids` as
  `source:id|source:id`; booleans `true`/`false`; an empty cell is absent.
- Files up to the server's import limit (413 beyond); studios import into their own catalog,
  operators name the studio with `studio_id`; developers are refused (403).
- **Large files run in the background.** A file past the server's `IMPORT_ASYNC_BYTES` (16 MiB
  by default) is answered at once with 202 and its report `queued` (`Location` names it); a
  worker imports it, all or nothing as above, and `GET /catalog/imports/{id}` shows it
  `running` with `progress` (bytes checked, then records written) until it ends `succeeded`
  or `failed` with the same report.
"""


@blp.route("/catalog/imports")
class CatalogImports(MethodView):
    @blp.doc(description=_IMPORT_DESCRIPTION)
    @blp.arguments(ImportUploadSchema(), location="files")
    @blp.response(201, ImportReportSchema)
    @blp.alt_response(
        202,
        schema=ImportReportSchema,
        description="A file past IMPORT_ASYNC_BYTES: queued for a worker; follow its report",
    )
    def post(self, form: dict[str, Any]) -> Any:
        """Import a catalog file, all or nothing; a failed one is a 201 listing every bad row."""
        upload = form["file"]
        session = db()
        settings = state().settings
        if (request.content_length or 0) > settings.import_async_bytes:
            queued = queue_import(
                session,
                _principal(),
                upload.stream,
                storage=state().storage,
                studio_id=form.get("studio_id"),
                filename=upload.filename,
            )
            return _report(queued), 202, {"Location": f"/api/v1/catalog/imports/{queued.id}"}
        # An import's bulk statements may run far past an API request's bound.
        with statement_bound(session, state().settings.import_statement_timeout):
            job = import_catalog(
                session,
                _principal(),
                upload.stream,
                studio_id=form.get("studio_id"),
                filename=upload.filename,
            )
        return _report(job)


@blp.route("/catalog/imports/<import_id>")
class CatalogImportById(MethodView):
    @blp.response(200, ImportReportSchema)
    @read_only
    def get(self, import_id: str) -> Any:
        """Get an import's report (the studio's own, or any for operators)."""
        return _report(get_import(db(), _principal(), import_id))
