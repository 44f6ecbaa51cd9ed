"""flask-smorest wiring: the Api whose errors are problem documents, and shared schemas."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import flask
import flask_smorest
import marshmallow as ma
from apispec import BasePlugin
from flask_smorest import Api as SmorestApi
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.exceptions import HTTPException

from marketplace.core import json_input
from marketplace.core.db import format_utc
from marketplace.core.errors import BadRequest
from marketplace.core.pagination import DEFAULT_LIMIT, MAX_LIMIT


class ProblemSchema(ma.Schema):
    """RFC 9457 problem details, with the stable `code` of API.md."""

    type = ma.fields.String(required=True)
    title = ma.fields.String(required=True)
    status = ma.fields.Integer(required=True)
    detail = ma.fields.String()
    code = ma.fields.String(required=True, metadata={"description": "Stable error code"})
    errors = ma.fields.Raw(metadata={"description": "Per-field messages, or per-item reasons"})


PROBLEM_CONTENT_TYPE = "application/problem+json"

# What any operation may answer besides its own responses, by the request lifecycle
# (marketplace.core.web): documented on every operation so a client knows them.
_LIFECYCLE_ERRORS = {
    "400": "BAD_REQUEST",  # malformed JSON, a bad query parameter, a body past the JSON bounds
    "401": "UNAUTHORIZED",  # no key, an unknown or revoked one (`unauthenticated`)
    "429": "TOO_MANY_REQUESTS",  # over the key's rate limit (`rate_limited`)
    "503": "SERVICE_UNAVAILABLE",  # database_busy / database_unavailable, with Retry-After
}


class Api(SmorestApi):
    """The one override point for errors: every HTTP error becomes problem+json, and the
    OpenAPI document says so: every error response is `application/problem+json` with the
    Problem schema, and every operation lists the lifecycle's errors."""

    ERROR_SCHEMA = ProblemSchema

    def handle_http_exception(self, error: HTTPException) -> Any:
        from marketplace.core.web import render_http_exception

        return render_http_exception(error)

    def _register_responses(self) -> None:
        from flask_smorest.utils import prepare_response

        for status in HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            content_type = self.DEFAULT_RESPONSE_CONTENT_TYPE
            if status >= 400:
                response["schema"] = self.ERROR_SCHEMA
                content_type = PROBLEM_CONTENT_TYPE
            prepare_response(response, self.spec, content_type)
            self.spec.components.response(status.name, response, lazy=True)
        default = {"description": "Any other error", "schema": self.ERROR_SCHEMA}
        prepare_response(default, self.spec, PROBLEM_CONTENT_TYPE)
        self.spec.components.response("DEFAULT_ERROR", default, lazy=True)

    def _init_spec(self, **kwargs: Any) -> None:
        extra = [*(kwargs.pop("extra_plugins", None) or ()), _ErrorResponses()]
        super()._init_spec(extra_plugins=extra, **kwargs)


class _ErrorResponses(BasePlugin):
    """Every error response of every operation as application/problem+json, and the errors
    the request lifecycle may give on any operation (404 where the path names an object)."""

    def operation_helper(
        self, path: str | None = None, operations: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        from marketplace.core.web import is_public_path

        public = path is not None and is_public_path(path.split("{")[0].rstrip("/") or path)
        for operation in (operations or {}).values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            for status, response in responses.items():
                if str(status).startswith(("4", "5")) and isinstance(response, dict):
                    content = response.get("content")
                    if content and "application/json" in content:
                        content[PROBLEM_CONTENT_TYPE] = content.pop("application/json")
            for status, name in _LIFECYCLE_ERRORS.items():
                if status == "401" and public:
                    continue
                responses.setdefault(status, name)
            if path is not None and "{" in path:
                responses.setdefault("404", "NOT_FOUND")
            if "requestBody" in operation:  # past MAX_CONTENT_LENGTH (MAX_IMPORT_BYTES)
                responses.setdefault("413", HTTPStatus(413).name)


class JSONBodyParser(FlaskParser):
    """webargs' parser, reading JSON bodies within the bounds of core.json_input."""

    def _raw_load_json(self, req: flask.Request) -> Any:
        if not is_json_request(req):
            return ma.missing
        try:
            return json_input.loads(req.get_data(cache=True))
        except json_input.Refused as exc:
            where = f"{exc.field}: " if exc.field else ""
            raise BadRequest(
                f"the request body holds JSON the API does not accept: {where}{exc.message}",
                errors={exc.field or "_schema": [exc.message]},
            ) from None


# The one subclass of the banned name (pyproject.toml, banned-api).
class Blueprint(flask_smorest.Blueprint):  # noqa: TID251
    """flask-smorest's Blueprint whose @arguments read JSON bodies with JSONBodyParser.

    Every route module uses this one (ruff's banned-api rule refuses flask_smorest.Blueprint).
    """

    ARGUMENTS_PARSER = JSONBodyParser()


class Schema(ma.Schema):
    """Base for request and response shapes; unknown input fields are refused (422)."""

    class Meta:
        unknown = ma.RAISE
        ordered = True


class PageArgsSchema(Schema):
    limit = ma.fields.Integer(
        load_default=DEFAULT_LIMIT, validate=ma.validate.Range(min=1, max=MAX_LIMIT)
    )
    cursor = ma.fields.String(load_default=None, validate=ma.validate.Length(max=2000))


def page_of(item: type[ma.Schema], name: str) -> type[ma.Schema]:
    """A `{items: [...], next_cursor}` list schema named `name`."""
    return type(
        name,
        (Schema,),
        {
            "items": ma.fields.List(ma.fields.Nested(item), required=True),
            "next_cursor": ma.fields.String(allow_none=True, required=True),
        },
    )


class UTCDateTime(ma.fields.DateTime):
    """ISO 8601 UTC with a `Z`, as API.md asks."""

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else format_utc(value)
