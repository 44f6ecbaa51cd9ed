"""GET /audit-events."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from marketplace.audit.models import AuditEvent
from marketplace.audit.schemas import AuditEventPageSchema, AuditEventQueryArgsSchema
from marketplace.audit.service import present_event, visible_events
from marketplace.core.api import Blueprint
from marketplace.core.pagination import Page, SortKey, paginate
from marketplace.core.web import current_actor, db, read_only, state

blp = Blueprint("audit", __name__, url_prefix="/api/v1", description="The tamper-evident audit log")


@blp.route("/audit-events")
class AuditEvents(MethodView):
    @blp.arguments(AuditEventQueryArgsSchema(), location="query")
    @blp.response(200, AuditEventPageSchema)
    @read_only
    def get(self, args: dict[str, Any]) -> Any:
        """List audit events: all for operators, those about your organization otherwise."""
        viewer = current_actor()
        stmt = visible_events(viewer)
        if args.get("object_id"):
            stmt = stmt.where(AuditEvent.object_id == args["object_id"])
        if args.get("action"):
            stmt = stmt.where(AuditEvent.action == args["action"])
        page = paginate(
            db(),
            stmt,
            keys=[SortKey(AuditEvent.seq)],
            limit=args["limit"],
            cursor=args["cursor"],
            codec=state().cursors,
            scope="audit-events",
        )
        return Page([present_event(event, viewer) for event in page.items], page.next_cursor)
