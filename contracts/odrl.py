"""The contract as an ODRL 2.2 Agreement in JSON-LD: permissions, prohibitions, duties."""

from __future__ import annotations

from typing import Any

from contracts.documents import PROHIBITIONS
from contracts.models import Contract

ODRL_CONTEXT = "http://www.w3.org/ns/odrl.jsonld"
CLEARCUT_VOCAB = "https://clearcut.example/odrl/"
PROFILE = "https://clearcut.example/odrl/profile"


def _urn(kind: str, value: str) -> str:
    return f"urn:clearcut:{kind}:{value}"


def contract_policy(contract: Contract, *, disclose_developer: bool) -> dict[str, Any]:
    """Build the ODRL Agreement for `contract` (JSON-LD, compact form)."""
    target = {
        "@type": "AssetCollection",
        "uid": _urn("contract-assets", contract.id),
        "source": [_urn("title", t) for t in sorted(contract.title_ids)],
    }
    assignee = (
        _urn("org", contract.developer_id)
        if disclose_developer
        # `assignee` is an IRI (@id) in ODRL's context: the anonymous licensee's reference too.
        else _urn("licensee", contract.terms["licensee"].get("reference", "undisclosed"))
    )
    constraints: list[dict[str, Any]] = [
        {
            "leftOperand": "dateTime",
            "operator": "gteq",
            "rightOperand": {"@value": contract.starts_on.isoformat(), "@type": "xsd:date"},
        },
        {
            "leftOperand": "dateTime",
            "operator": "lteq",
            "rightOperand": {"@value": contract.ends_on.isoformat(), "@type": "xsd:date"},
        },
    ]
    if "WW" not in contract.territories:
        constraints.append(
            {
                "leftOperand": "spatial",
                "operator": "isAnyOf",
                "rightOperand": sorted(contract.territories),
            }
        )
    compensate = {
        "action": "compensate",
        "constraint": [
            {
                "leftOperand": "payAmount",
                "operator": "eq",
                "rightOperand": {
                    "@value": f"{contract.amount_cents / 100:.2f}",
                    "@type": "xsd:decimal",
                },
                "unit": f"urn:iso:std:iso:4217:{contract.currency.upper()}",
            }
        ],
    }
    delete = {
        "action": "delete",
        "constraint": [
            {
                "leftOperand": "dateTime",
                "operator": "lteq",
                "rightOperand": {"@value": contract.ends_on.isoformat(), "@type": "xsd:date"},
            }
        ],
    }
    return {
        "@context": [ODRL_CONTEXT, {"clearcut": CLEARCUT_VOCAB}],
        "@type": "Agreement",
        "uid": _urn("contract", contract.id),
        "profile": PROFILE,
        "assigner": _urn("org", contract.studio_id),
        "assignee": assignee,
        "permission": [
            {
                "target": target,
                "assigner": _urn("org", contract.studio_id),
                "assignee": assignee,
                "action": [f"clearcut:{use}" for use in sorted(contract.uses)],
                "constraint": constraints,
                "duty": [compensate, delete],
            }
        ],
        "prohibition": [
            {
                "target": target,
                "assigner": _urn("org", contract.studio_id),
                "assignee": assignee,
                "action": [f"clearcut:{code}" for code, _ in PROHIBITIONS],
            }
        ],
        "obligation": [
            {
                **delete,
                "assigner": _urn("org", contract.studio_id),
                "assignee": assignee,
                "target": target,
            }
        ],
    }
