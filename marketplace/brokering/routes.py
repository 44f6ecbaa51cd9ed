"""License requests, offers, counter-offers, acceptance and messages."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from catalog.clearance import ClearanceCheck
from catalog.rules import CATALOG_RULES
from marketplace.accounts.principal import Principal
from marketplace.brokering import service
from marketplace.brokering.models import LicenseRequest, Message, Offer
from marketplace.brokering.schemas import (
    CounterOfferSchema,
    LicenseRequestCreateSchema,
    LicenseRequestPageSchema,
    LicenseRequestSchema,
    MessageCreateSchema,
    MessagePageSchema,
    MessageSchema,
    OfferCreateSchema,
    OfferPageSchema,
    OfferSchema,
    RequestQueryArgsSchema,
)
from marketplace.brokering.views import present_message, present_offer, present_request
from marketplace.core.api import Blueprint, PageArgsSchema
from marketplace.core.pagination import Page, SortKey, paginate
from marketplace.core.web import component, current_actor, db, read_only, state

blp = Blueprint(
    "brokering", __name__, url_prefix="/api/v1", description="License requests, offers and messages"
)


def viewer() -> Principal:
    actor: Principal = current_actor()
    return actor


def _page(args: dict[str, Any], stmt: Any, key: Any, scope: str) -> Page[Any]:
    return paginate(
        db(),
        stmt,
        keys=[SortKey(key)],
        limit=args["limit"],
        cursor=args["cursor"],
        codec=state().cursors,
        scope=scope,
    )


def _checks() -> tuple[ClearanceCheck, ...]:
    """The clearance rules beyond the catalog's own that offers must meet (exclusivity)."""
    return component(CATALOG_RULES).clearance_checks


@blp.route("/license-requests")
class LicenseRequests(MethodView):
    @blp.arguments(RequestQueryArgsSchema(), location="query")
    @blp.response(200, LicenseRequestPageSchema)
    @read_only
    def get(self, args: dict[str, Any]) -> Any:
        """List requests: your own (developers), open ones (studios), all (operators)."""
        who = viewer()
        stmt = service.visible_requests(who)
        if args.get("status"):
            stmt = stmt.where(LicenseRequest.status == args["status"])
        page = _page(args, stmt, LicenseRequest.id, "license-requests")
        return Page([present_request(db(), r, who) for r in page.items], page.next_cursor)

    @blp.arguments(LicenseRequestCreateSchema())
    @blp.response(201, LicenseRequestSchema)
    def post(self, body: dict[str, Any]) -> Any:
        """Ask for a licence (developers); `anonymous` hides you from studios until signing."""
        who = viewer()
        return present_request(db(), service.create_request(db(), who, body), who)


@blp.route("/license-requests/<request_id>")
class LicenseRequestById(MethodView):
    @blp.response(200, LicenseRequestSchema)
    @read_only
    def get(self, request_id: str) -> Any:
        """Get a license request."""
        who = viewer()
        return present_request(db(), service.get_request(db(), who, request_id), who)


@blp.route("/license-requests/<request_id>/close")
class LicenseRequestClose(MethodView):
    @blp.response(200, LicenseRequestSchema)
    def post(self, request_id: str) -> Any:
        """Close a request; its open offers are withdrawn."""
        who = viewer()
        return present_request(db(), service.close_request(db(), who, request_id), who)


@blp.route("/license-requests/<request_id>/offers")
class RequestOffers(MethodView):
    @blp.arguments(OfferCreateSchema())
    @blp.response(201, OfferSchema)
    def post(self, body: dict[str, Any], request_id: str) -> Any:
        """Make an offer (a studio, or an operator naming `studio_id`); refused if not cleared."""
        who = viewer()
        return present_offer(
            db(), service.create_offer(db(), who, request_id, body, checks=_checks()), who
        )

    @blp.arguments(PageArgsSchema(), location="query")
    @blp.response(200, OfferPageSchema)
    @read_only
    def get(self, args: dict[str, Any], request_id: str) -> Any:
        """List a request's offers that you may see."""
        who = viewer()
        page = _page(args, service.offers_of_request(db(), who, request_id), Offer.id, "offers")
        return Page([present_offer(db(), o, who) for o in page.items], page.next_cursor)


@blp.route("/offers/<offer_id>")
class OfferById(MethodView):
    @blp.response(200, OfferSchema)
    @read_only
    def get(self, offer_id: str) -> Any:
        """Get an offer."""
        who = viewer()
        return present_offer(db(), service.get_offer(db(), who, offer_id), who)


@blp.route("/offers/<offer_id>/counter")
class OfferCounter(MethodView):
    @blp.arguments(CounterOfferSchema())
    @blp.response(201, OfferSchema)
    def post(self, body: dict[str, Any], offer_id: str) -> Any:
        """Counter an offer with new terms; the old one becomes `countered`."""
        who = viewer()
        return present_offer(
            db(), service.counter_offer(db(), who, offer_id, body, checks=_checks()), who
        )


@blp.route("/offers/<offer_id>/accept")
class OfferAccept(MethodView):
    @blp.response(200, OfferSchema)
    def post(self, offer_id: str) -> Any:
        """Accept an offer made to you; this creates the contract (see `contract_id`)."""
        who = viewer()
        offer, _ = service.accept_offer(db(), who, offer_id, checks=_checks())
        return present_offer(db(), offer, who)


@blp.route("/offers/<offer_id>/reject")
class OfferReject(MethodView):
    @blp.response(200, OfferSchema)
    def post(self, offer_id: str) -> Any:
        """Reject an offer made to you."""
        who = viewer()
        return present_offer(db(), service.reject_offer(db(), who, offer_id), who)


@blp.route("/offers/<offer_id>/withdraw")
class OfferWithdraw(MethodView):
    @blp.response(200, OfferSchema)
    def post(self, offer_id: str) -> Any:
        """Withdraw an offer you made (or, operators, any offer)."""
        who = viewer()
        return present_offer(db(), service.withdraw_offer(db(), who, offer_id), who)


@blp.route("/license-requests/<request_id>/messages")
class RequestMessages(MethodView):
    @blp.arguments(MessageCreateSchema())
    @blp.response(201, MessageSchema)
    def post(self, body: dict[str, Any], request_id: str) -> Any:
        """Write to a request's thread (parties and operators only)."""
        who = viewer()
        message = service.post_message(db(), who, request_id, **body)
        request = service.get_request(db(), who, request_id)
        return present_message(db(), message, who, request)

    @blp.arguments(PageArgsSchema(), location="query")
    @blp.response(200, MessagePageSchema)
    @read_only
    def get(self, args: dict[str, Any], request_id: str) -> Any:
        """Read a request's messages that you may see."""
        who = viewer()
        request = service.get_request(db(), who, request_id)
        page = _page(args, service.visible_messages(db(), who, request_id), Message.id, "messages")
        return Page([present_message(db(), m, who, request) for m in page.items], page.next_cursor)
