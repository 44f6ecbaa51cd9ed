"""GET /audit-events, /audit-events/{id} (with its inclusion proof), /audit/heads and
/audit/public-key."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from sqlalchemy import select

from marketplace.audit.keys import AUDIT_KEYS
from marketplace.audit.models import AuditBatch, AuditEvent
from marketplace.audit.schemas import (
    AuditEventPageSchema,
    AuditEventQueryArgsSchema,
    AuditEventWithProofSchema,
    AuditHeadPageSchema,
    AuditPublicKeySchema,
)
from marketplace.audit.sealing import inclusion_proof, present_head
from marketplace.audit.service import present_event, visible_events
from marketplace.core.api import Blueprint, PageArgsSchema
from marketplace.core.errors import NotFound
from marketplace.core.pagination import Page, SortKey, paginate
from marketplace.core.web import component, current_actor, db, read_only, state

blp = Blueprint("audit", __name__, url_prefix="/api/v1", description="The tamper-evident audit log")


@blp.route("/audit-events")
class AuditEvents(MethodView):
    @blp.arguments(AuditEventQueryArgsSchema(), location="query")
    @blp.response(200, AuditEventPageSchema)
    @read_only
    def get(self, args: dict[str, Any]) -> Any:
        """List audit events by id: all for operators, those about your organization otherwise."""
        viewer = current_actor()
        stmt = visible_events(viewer)
        if args.get("object_id"):
            stmt = stmt.where(AuditEvent.object_id == args["object_id"])
        if args.get("action"):
            stmt = stmt.where(AuditEvent.action == args["action"])
        page = paginate(
            db(),
            stmt,
            keys=[SortKey(AuditEvent.id)],
            limit=args["limit"],
            cursor=args["cursor"],
            codec=state().cursors,
            scope="audit-events",
        )
        return Page([present_event(event, viewer) for event in page.items], page.next_cursor)


@blp.route("/audit-events/<event_id>")
class AuditEventById(MethodView):
    @blp.response(200, AuditEventWithProofSchema)
    @read_only
    def get(self, event_id: str) -> Any:
        """Read one audit event, with the proof that it is in a signed batch once sealed."""
        viewer = current_actor()
        session = db()
        event = session.scalars(visible_events(viewer).where(AuditEvent.id == event_id)).first()
        if event is None:
            raise NotFound(f"audit event {event_id} not found")
        proof = inclusion_proof(session, event)
        body = present_event(event, viewer)
        body["proof"] = (
            None
            if proof is None
            else {
                "batch": proof.batch.id,
                "leaf_index": proof.leaf_index,
                "batch_size": proof.batch_size,
                "path": proof.path,
                "head": present_head(proof.batch),
            }
        )
        return body


@blp.route("/audit/heads")
class AuditHeads(MethodView):
    @blp.arguments(PageArgsSchema(), location="query")
    @blp.response(200, AuditHeadPageSchema)
    @read_only
    def get(self, args: dict[str, Any]) -> Any:
        """List the signed batch heads, oldest first: keep copies to detect a rewritten log."""
        current_actor()
        page = paginate(
            db(),
            select(AuditBatch),
            keys=[SortKey(AuditBatch.id)],
            limit=args["limit"],
            cursor=args["cursor"],
            codec=state().cursors,
            scope="audit-heads",
        )
        return Page([present_head(batch) for batch in page.items], page.next_cursor)


@blp.route("/audit/public-key")
class AuditPublicKey(MethodView):
    @blp.response(200, AuditPublicKeySchema)
    @read_only
    def get(self) -> Any:
        """The Ed25519 public key that signs the batch heads."""
        current_actor()
        keys = component(AUDIT_KEYS)
        if keys is None:
            raise NotFound("this deployment has no audit signing key configured")
        return {
            "algorithm": "Ed25519",
            "key_id": keys.key_id,
            "public_key": keys.public_base64,
            "pem": keys.public_pem,
        }
