"""The audit routes: events paged by id, one event with its inclusion proof, the published
heads and the public key a studio checks them with."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy.orm import Session

from marketplace.audit.keys import AuditKeys
from marketplace.audit.merkle import verify_inclusion
from marketplace.audit.sealing import canonical_head, seal_pending
from marketplace.audit.service import record_event
from tests.world import World

NOW = datetime(2026, 12, 8, 12, 0, tzinfo=UTC)


def _events(session: Session, world: World, n: int) -> list[str]:
    studio = world["studio_a"].org_id
    ids = [
        record_event(session, None, "probe", object_id=None, organization_id=studio).id
        for _ in range(n)
    ]
    session.commit()
    return ids


def _head_bytes(head: dict[str, Any]) -> bytes:
    return canonical_head(
        batch=head["batch"],
        first_seq=head["first_seq"],
        tree_size=head["tree_size"],
        merkle_root=head["merkle_root"],
        prev_head=head["prev_head"],
        sealed_at=datetime.fromisoformat(head["sealed_at"].replace("Z", "+00:00")),
        key_id=head["key_id"],
    )


class TestAuditRoutes:
    def test_a_studio_checks_an_events_proof_with_the_public_key(
        self, client: Any, session: Session, world: World, audit_keys: AuditKeys
    ) -> None:
        ids = _events(session, world, 5)
        headers = world["studio_a"].headers
        unsealed = client.get(f"/api/v1/audit-events/{ids[0]}", headers=headers).json
        assert unsealed["sealed"] is False and unsealed["seq"] is None
        assert unsealed["proof"] is None

        seal_pending(session, audit_keys, now=NOW)
        session.commit()
        key = client.get("/api/v1/audit/public-key", headers=headers).json
        public = Ed25519PublicKey.from_public_bytes(base64.b64decode(key["public_key"]))
        heads = client.get("/api/v1/audit/heads", headers=world["developer_x"].headers).json
        assert [h["tree_size"] for h in heads["items"]] == [5]
        for event_id in ids:
            body = client.get(f"/api/v1/audit-events/{event_id}", headers=headers).json
            proof = body["proof"]
            assert body["sealed"] is True and proof["head"] == heads["items"][0]
            assert verify_inclusion(
                bytes.fromhex(body["hash"]),
                proof["leaf_index"],
                proof["batch_size"],
                [bytes.fromhex(p) for p in proof["path"]],
                bytes.fromhex(proof["head"]["merkle_root"]),
            )
            public.verify(bytes.fromhex(proof["head"]["signature"]), _head_bytes(proof["head"]))

    def test_lists_page_by_id_sealed_or_not(
        self, client: Any, session: Session, world: World, audit_keys: AuditKeys
    ) -> None:
        ids = _events(session, world, 3)
        seal_pending(session, audit_keys, now=NOW)
        ids += _events(session, world, 2)
        headers = world["studio_a"].headers
        seen: list[dict[str, Any]] = []
        cursor = None
        while True:
            query = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
            page = client.get(f"/api/v1/audit-events{query}", headers=headers).json
            seen += page["items"]
            cursor = page["next_cursor"]
            if not cursor:
                break
        probes = [e for e in seen if e["action"] == "probe"]
        assert [e["id"] for e in probes] == sorted(ids)
        assert sum(e["sealed"] for e in probes) == 3

    def test_another_tenants_event_is_not_found(
        self, client: Any, session: Session, world: World
    ) -> None:
        event_id = _events(session, world, 1)[0]
        other = client.get(f"/api/v1/audit-events/{event_id}", headers=world["studio_b"].headers)
        missing = client.get("/api/v1/audit-events/evt_nope", headers=world["studio_b"].headers)
        assert other.status_code == missing.status_code == 404
        assert other.json["detail"].replace(event_id, "X") == missing.json["detail"].replace(
            "evt_nope", "X"
        )
