"""Contracts: list, read, document, ODRL policy, signatures, termination, attestations, prices."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Response, jsonify
from flask.views import MethodView

from contracts import attestations, service
from contracts.models import Attestation, Contract
from contracts.odrl import contract_policy
from contracts.pricing import BenchmarkQuery, price_benchmarks
from contracts.schemas import (
    AttestationCreateSchema,
    AttestationPageSchema,
    AttestationSchema,
    BenchmarkArgsSchema,
    BenchmarkSchema,
    ContractPageSchema,
    ContractQueryArgsSchema,
    ContractSchema,
    SignSchema,
    TerminateSchema,
)
from contracts.views import developer_disclosed, present_contract
from marketplace.accounts.principal import Principal
from marketplace.core.api import Blueprint, PageArgsSchema
from marketplace.core.db import utcnow
from marketplace.core.pagination import Page, SortKey, paginate
from marketplace.core.web import current_actor, db, read_only, state

blp = Blueprint("contracts", __name__, url_prefix="/api/v1", description="Contracts")


def viewer() -> Principal:
    actor: Principal = current_actor()
    return actor


def today() -> date:
    return utcnow().date()


@blp.route("/contracts")
class Contracts(MethodView):
    @blp.arguments(ContractQueryArgsSchema(), location="query")
    @blp.response(200, ContractPageSchema)
    @read_only
    def get(self, args: dict[str, Any]) -> Any:
        """List your contracts (operators: all); `attestation_overdue=true`: deletion overdue."""
        who = viewer()
        stmt = service.list_contracts_stmt(who, status=args.get("status"), today=today())
        if args.get("attestation_overdue"):
            stmt = stmt.where(attestations.overdue_filter(today()))
        page = paginate(
            db(),
            stmt,
            keys=[SortKey(Contract.id)],
            limit=args["limit"],
            cursor=args["cursor"],
            codec=state().cursors,
            scope="contracts",
        )
        return Page([present_contract(db(), c, who) for c in page.items], page.next_cursor)


@blp.route("/contracts/<contract_id>")
class ContractById(MethodView):
    @blp.response(200, ContractSchema)
    @read_only
    def get(self, contract_id: str) -> Any:
        """Get a contract."""
        who = viewer()
        return present_contract(db(), service.get_contract(db(), who, contract_id), who)


@blp.route("/contracts/<contract_id>/document")
class ContractDocument(MethodView):
    @blp.doc(
        responses={
            "200": {
                "description": "The rendered agreement",
                "content": {"text/markdown": {"schema": {"type": "string"}}},
            }
        }
    )
    @read_only
    def get(self, contract_id: str) -> Response:
        """The rendered agreement; its SHA-256 is what each party signs."""
        contract = service.get_contract(db(), viewer(), contract_id)
        response = Response(contract.document, content_type="text/markdown; charset=utf-8")
        response.headers["ETag"] = f'"{contract.document_sha256}"'
        response.headers["X-Document-SHA256"] = contract.document_sha256
        return response


@blp.route("/contracts/<contract_id>/policy")
class ContractPolicy(MethodView):
    @blp.doc(
        responses={
            "200": {
                "description": "ODRL 2.2 Agreement (JSON-LD)",
                "content": {"application/ld+json": {"schema": {"type": "object"}}},
            }
        }
    )
    @read_only
    def get(self, contract_id: str) -> Response:
        """The granted permissions, prohibitions and duties as an ODRL 2.2 policy (JSON-LD)."""
        who = viewer()
        contract = service.get_contract(db(), who, contract_id)
        policy = contract_policy(contract, disclose_developer=developer_disclosed(contract, who))
        response = jsonify(policy)
        response.content_type = "application/ld+json"
        return response


@blp.route("/contracts/<contract_id>/sign")
class ContractSign(MethodView):
    @blp.arguments(SignSchema())
    @blp.response(200, ContractSchema)
    def post(self, body: dict[str, Any], contract_id: str) -> Any:
        """Sign the exact document hash: studio, developer, then the operator countersigns."""
        who = viewer()
        contract = service.sign_contract(
            db(), who, contract_id, document_sha256_hex=body["document_sha256"]
        )
        return present_contract(db(), contract, who)


@blp.route("/contracts/<contract_id>/terminate")
class ContractTerminate(MethodView):
    @blp.arguments(TerminateSchema())
    @blp.response(200, ContractSchema)
    def post(self, body: dict[str, Any], contract_id: str) -> Any:
        """Terminate a contract (operators): no new grants at once; granted URLs run out.

        From the termination on, every download grant of the contract is refused (409
        `invalid_state`), a grant racing with it included: the grant's metering statement
        counts only while the contract is active. A URL granted before it is a presigned URL of
        the object store: the store checks its signature and expiry, not the contract, so it
        keeps downloading until it expires, at most `DOWNLOAD_URL_TTL_SECONDS` (300 s by
        default, 1 to 3,600) after it was granted. The delivery log
        (`GET /contracts/{id}/downloads`) lists each such URL with its `expires_at`. To cut every
        live URL off at once, rotate the object store's credentials (all URLs signed with them
        stop working, upload URLs of every studio included). Termination refunds nothing.
        """
        who = viewer()
        contract = service.terminate_contract(db(), who, contract_id, reason=body["reason"])
        return present_contract(db(), contract, who)


@blp.route("/contracts/<contract_id>/attestations")
class ContractAttestations(MethodView):
    @blp.arguments(AttestationCreateSchema())
    @blp.response(201, AttestationSchema)
    def post(self, body: dict[str, Any], contract_id: str) -> Any:
        """Attest a training run, an evaluation or the deletion of the data (the licensee)."""
        return attestations.create_attestation(db(), viewer(), contract_id, body)

    @blp.arguments(PageArgsSchema(), location="query")
    @blp.response(200, AttestationPageSchema)
    @read_only
    def get(self, args: dict[str, Any], contract_id: str) -> Any:
        """List a contract's attestations (both parties and operators)."""
        stmt = attestations.attestations_stmt(db(), viewer(), contract_id)
        return paginate(
            db(),
            stmt,
            keys=[SortKey(Attestation.id)],
            limit=args["limit"],
            cursor=args["cursor"],
            codec=state().cursors,
            scope="attestations",
        )


@blp.route("/pricing/benchmarks")
class PricingBenchmarks(MethodView):
    @blp.arguments(BenchmarkArgsSchema(), location="query")
    @blp.response(200, BenchmarkSchema)
    @read_only
    def get(self, args: dict[str, Any]) -> Any:
        """Per-hour price quartiles of comparable signed contracts (withheld when too few)."""
        return price_benchmarks(db(), BenchmarkQuery(**args))
