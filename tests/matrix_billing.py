"""Authorization matrix entries: contract payments, the Stripe webhook, the payout ledger.

Contracts join a studio (the owner tenant) and developer X, as in tests/matrix_brokering.py.
Only the licensee pays; both parties and operators read a contract's payments; the ledger is
for studios (their own entries) and operators; the webhook needs no key but a signature.
"""

from __future__ import annotations

from datetime import timedelta

from marketplace.core.db import utcnow
from tests.matrix import ANON, Ctx, Expect, Route, public
from tests.matrix_brokering import STUDIOS, _contract, party_rule


def payable_contract_of(ctx: Ctx, owner: str) -> dict[str, str]:
    """A signed, unpaid contract in force today (whatever day the suite runs)."""
    contract = _contract(ctx, owner, signed=True)
    today = utcnow().date()
    contract.starts_on, contract.ends_on = today, today + timedelta(days=365)
    ctx.session.flush()
    return {"contract_id": contract.id}


def ledger_rule(status: int) -> Expect:
    """Studios and operators read the ledger (each its own part); developers are refused."""

    def expect(actor: str, owner: str | None) -> int:
        if actor == ANON:
            return 401
        return 403 if actor.startswith("developer") else status

    return expect


ROUTES: list[Route] = [
    Route(
        "POST",
        "/api/v1/contracts/{contract_id}/payments",
        party_rule(studio=403, developer=201, operator=403),
        target=payable_contract_of,
        owner_tenants=STUDIOS,
    ),
    Route(
        "GET",
        "/api/v1/contracts/{contract_id}/payments",
        party_rule(studio=200, developer=200, operator=200),
        target=payable_contract_of,
        owner_tenants=STUDIOS,
    ),
    # No key needed, and none helps: without a valid Stripe-Signature every caller gets 400.
    Route("POST", "/api/v1/webhooks/stripe", public(400), body=lambda ctx, owner: {}),
    Route("GET", "/api/v1/payouts", ledger_rule(200)),
]
