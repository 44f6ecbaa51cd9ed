"""Canonical terms, the human-readable agreement rendered from them, and its SHA-256."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import date
from typing import Any

# The standard prohibitions every licence carries (the studios' chief fears).
PROHIBITIONS = (
    (
        "reproduce_verbatim",
        "Reproducing scenes, shots, dialogue or soundtrack of the Licensed "
        "Titles verbatim, or near-verbatim, in model outputs.",
    ),
    (
        "replicate_likeness",
        "Generating replicas of any performer's name, image, likeness or voice "
        "from the Licensed Titles, beyond what that performer's recorded consent permits.",
    ),
    (
        "derive_sequel",
        "Creating sequels, prequels, spin-offs or other derivative works of the "
        "Licensed Titles' stories or characters.",
    ),
    ("sublicense", "Sublicensing, selling or sharing the Licensed Material with any third party."),
)
USE_LABELS = {
    "train": "training of AI models",
    "fine_tune": "fine-tuning of AI models",
    "evaluate": "evaluation and benchmarking of AI models",
    "generate_reference": "use as reference material for generation",
}


@dataclass(frozen=True)
class Party:
    organization_id: str
    name: str


@dataclass(frozen=True)
class TitleLine:
    id: str
    name: str
    kind: str
    release_year: int | None
    content_hours: float


def canonical_terms(
    *,
    offer_id: str,
    studio: Party,
    developer: Party,
    licensee_reference: str | None,
    titles: list[TitleLine],
    uses: list[str],
    territories: list[str],
    start: date,
    end: date,
    exclusive: bool,
    pricing: dict[str, Any],
    amount_cents: int,
    currency: str,
    quota_bytes: int,
    quota_downloads: int,
) -> dict[str, Any]:
    """The terms as data: everything the agreement says, nothing else.

    With a `licensee_reference` (an anonymous deal) the licensee is named by it alone.
    """
    return {
        "offer_id": offer_id,
        "licensor": {"organization_id": studio.organization_id, "name": studio.name},
        "licensee": (
            {"reference": licensee_reference}
            if licensee_reference
            else {"organization_id": developer.organization_id, "name": developer.name}
        ),
        "titles": [
            {
                "id": t.id,
                "name": t.name,
                "kind": t.kind,
                "release_year": t.release_year,
                "content_hours": t.content_hours,
            }
            for t in sorted(titles, key=lambda t: t.id)
        ],
        "uses": sorted(uses),
        "territories": sorted(territories),
        "term": {"start": start.isoformat(), "end": end.isoformat()},
        "exclusive": exclusive,
        "price": {"amount_cents": amount_cents, "currency": currency, "pricing": pricing},
        "quota": {"bytes": quota_bytes, "downloads": quota_downloads},
        "prohibitions": [code for code, _ in PROHIBITIONS],
        "duties": ["compensate", "delete_at_end_of_term", "attest_deletion"],
    }


def new_licensee_reference() -> str:
    """A reference for the licensee of an anonymous deal: Clearcut, as agent, holds who it is.

    Random, not derived from the developer's id: a hash of the id could be recomputed for each
    candidate developer, and the document's hash along with it, to unmask the licensee.
    """
    return f"LICENSEE-{secrets.token_hex(6).upper()}"


def render_document(terms: dict[str, Any]) -> str:
    """The agreement as plain text (Markdown), rendered only from the canonical terms."""
    licensor, licensee = terms["licensor"], terms["licensee"]
    licensee_line = (
        f"{licensee['name']} (organization {licensee['organization_id']})"
        if "name" in licensee
        else f"the licensee known to Clearcut as {licensee['reference']}, whose identity "
        "Clearcut holds as agent and discloses to the Licensor on execution"
    )
    price = terms["price"]
    pricing = price["pricing"]
    lines = [
        "# AI Training Data Licence Agreement",
        "",
        f"Offer reference: {terms['offer_id']}",
        "",
        "## 1. Parties",
        "",
        f"Licensor: {licensor['name']} (organization {licensor['organization_id']}).",
        f"Licensee: {licensee_line}.",
        "Clearcut acts as the marketplace operator and countersigns this agreement.",
        "",
        "## 2. Licensed Titles",
        "",
    ]
    for t in terms["titles"]:
        year = f", {t['release_year']}" if t["release_year"] else ""
        lines.append(f"- {t['name']} ({t['kind']}{year}; {t['content_hours']} hours) [{t['id']}]")
    lines += [
        "",
        "## 3. Grant",
        "",
        "The Licensor grants the Licensee "
        + ("an exclusive" if terms["exclusive"] else "a non-exclusive")
        + " licence to use the Licensed Material solely for: "
        + "; ".join(USE_LABELS.get(u, u) for u in terms["uses"])
        + ".",
        f"Territories: {', '.join(terms['territories'])} (WW means worldwide).",
        f"Term: from {terms['term']['start']} to {terms['term']['end']}, both days included.",
        "",
        "## 4. Price and delivery",
        "",
        f"Price: {_money(price['amount_cents'], price['currency'])} "
        f"({pricing['model']} pricing at {_money(pricing['amount_cents'], price['currency'])}"
        f"{' per hour' if pricing['model'] == 'per_hour' else ''}"
        f"{' per GB' if pricing['model'] == 'per_gb' else ''}).",
        f"Delivery quota: {terms['quota']['downloads']} downloads and "
        f"{terms['quota']['bytes']} bytes, through time-limited links, every delivery logged.",
        "",
        "## 5. Prohibitions",
        "",
    ]
    lines += [f"- {text}" for _, text in PROHIBITIONS]
    lines += [
        "",
        "## 6. Duties",
        "",
        "- Pay the price above before any delivery.",
        "- Delete every copy of the Licensed Material, and any dataset derived from it, at the end "
        "of the Term or on termination, and attest the deletion through Clearcut within 30 days.",
        "",
        "## 7. Execution",
        "",
        "Each party signs the SHA-256 of this exact text; it takes effect when the Licensor, the "
        "Licensee and Clearcut have signed, and the Licensee has paid.",
        "",
    ]
    return "\n".join(lines)


def _money(cents: int, currency: str) -> str:
    return f"{cents // 100}.{cents % 100:02d} {currency.upper()}"


def document_sha256(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()
