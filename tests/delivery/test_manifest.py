"""Signed manifests: what they list, their canonical bytes, and signatures clients can verify."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import update
from sqlalchemy.orm import Session

from config import Settings
from contracts.models import Contract
from marketplace.app import create_app
from marketplace.delivery import manifest
from tests.catalog.factories import make_asset, make_title
from tests.deals import cleared_title, signed_contract
from tests.delivery.builders import make_contract
from tests.helpers import bound_sessions, problem
from tests.world import World


def b64url_decode(text: str) -> bytes:
    assert "=" not in text, "base64url without padding"
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_key(client: Any) -> Ed25519PublicKey:
    response = client.get("/api/v1/manifest-signing-key")  # no Authorization header
    assert response.status_code == 200
    body = response.get_json()
    assert body["algorithm"] == "Ed25519"
    raw = b64url_decode(body["public_key"])
    assert len(raw) == 32
    return Ed25519PublicKey.from_public_bytes(raw)


def signed_bytes(contract_id: str, assets: list[dict[str, Any]]) -> bytes:
    """The canonical bytes, rebuilt here independently of the implementation."""
    return json.dumps(
        {"contract_id": contract_id, "assets": assets},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode("utf-8")


def get_manifest(client: Any, contract_id: str, headers: dict[str, str]) -> dict[str, Any]:
    response = client.get(f"/api/v1/contracts/{contract_id}/manifest", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    return body


class TestSignature:
    def test_manifest_verifies_with_the_published_key(
        self, client: Any, session: Session, world: World
    ) -> None:
        title = cleared_title(session, world["studio_a"].org_id)
        session.commit()
        contract = signed_contract(client, world, [title.id])
        body = get_manifest(client, contract["id"], world["developer_x"].headers)
        assert set(body) == {
            "contract_id",
            "assets",
            "manifest_sha256",
            "signature",
            "version",
            "frozen_at",
        }
        assert body["contract_id"] == contract["id"]
        [entry] = body["assets"]
        assert entry["title_id"] == title.id
        assert entry["kind"] == "video"
        assert entry["byte_size"] == 1_000_000
        assert entry["sha256"] == "a" * 64
        payload = signed_bytes(body["contract_id"], body["assets"])
        assert body["manifest_sha256"] == hashlib.sha256(payload).hexdigest()
        public_key(client).verify(b64url_decode(body["signature"]), payload)
        # Every party sees the very same signed document.
        for who in ("studio_a", "operator"):
            assert get_manifest(client, contract["id"], world[who].headers) == body

    def test_tampering_breaks_verification(
        self, client: Any, session: Session, world: World
    ) -> None:
        title = make_title(session, world["studio_a"].org_id)
        make_asset(session, title, data=b"first")
        make_asset(session, title, data=b"second", kind="subtitle")
        contract = make_contract(session, world, [title.id], status="signed")
        session.commit()
        body = get_manifest(client, contract.id, world["developer_x"].headers)
        key = public_key(client)
        signature = b64url_decode(body["signature"])
        key.verify(signature, signed_bytes(body["contract_id"], body["assets"]))

        bigger = [dict(a) for a in body["assets"]]
        bigger[0]["byte_size"] += 1
        dropped = body["assets"][1:]
        renamed = "ctr_" + "0" * 26
        tampered = [
            (body["contract_id"], bigger),
            (body["contract_id"], dropped),
            (renamed, body["assets"]),
        ]
        for contract_id, assets in tampered:
            with pytest.raises(InvalidSignature):
                key.verify(signature, signed_bytes(contract_id, assets))
        flipped = bytes([signature[0] ^ 1]) + signature[1:]
        with pytest.raises(InvalidSignature):
            key.verify(flipped, signed_bytes(body["contract_id"], body["assets"]))

    def test_key_is_derived_from_the_secret_alike_on_every_host(
        self, settings: Settings, connection: Any, storage: Any
    ) -> None:
        def published(app_settings: Settings) -> str:
            app = create_app(
                app_settings, session_factory=bound_sessions(connection), storage=storage
            )
            key: str = (
                app.test_client().get("/api/v1/manifest-signing-key").get_json()["public_key"]
            )
            return key

        first = published(settings)
        manifest.signing_key.cache_clear()  # a fresh process: nothing remembered
        assert published(settings) == first
        other = published(settings.with_overrides(secret_key="another-secret-" + "x" * 32))
        assert other != first

    def test_openapi_says_how_the_signature_is_encoded(self, client: Any) -> None:
        spec = client.get("/api/v1/openapi.json").get_json()
        signature = spec["components"]["schemas"]["Manifest"]["properties"]["signature"]
        assert "base64url WITHOUT padding" in signature["description"]
        key = spec["paths"]["/api/v1/manifest-signing-key"]["get"]
        assert key["security"] == []  # public: no bearer key

    def test_canonical_bytes_are_sorted_compact_utf8(self) -> None:
        payload = manifest.canonical_bytes(
            "ctr_é", [{"sha256": "ff", "asset_id": "ast_1", "byte_size": 3}]
        )
        assert (
            payload
            == (
                '{"assets":[{"asset_id":"ast_1","byte_size":3,"sha256":"ff"}],"contract_id":"ctr_é"}'
            ).encode()
        )


class TestContents:
    def test_a_licensed_series_covers_its_seasons_and_episodes(
        self, client: Any, session: Session, world: World
    ) -> None:
        studio = world["studio_a"].org_id
        series = make_title(session, studio, kind="series")
        season = make_title(session, studio, kind="season", parent=series)
        episode = make_title(session, studio, kind="episode", parent=season)
        other_series = make_title(session, studio, kind="series")
        other_episode = make_title(session, studio, kind="episode", parent=other_series)
        expected = [
            make_asset(session, series, data=b"key art", kind="image"),
            make_asset(session, season, data=b"season recap"),
            make_asset(session, episode, data=b"episode one"),
            make_asset(session, episode, data=b"episode one subtitles", kind="subtitle"),
        ]
        make_asset(session, episode, data=b"still uploading", status="pending")
        make_asset(session, other_episode, data=b"not licensed")
        contract = make_contract(session, world, [series.id], status="signed")
        session.commit()
        body = get_manifest(client, contract.id, world["developer_x"].headers)
        assert body["assets"] == [
            {
                "asset_id": a.id,
                "title_id": a.title_id,
                "kind": a.kind,
                "byte_size": a.byte_size,
                "sha256": a.sha256,
            }
            for a in sorted(expected, key=lambda a: a.id)
        ]

    def test_a_licensed_season_covers_its_episodes_but_not_its_siblings(
        self, client: Any, session: Session, world: World
    ) -> None:
        studio = world["studio_a"].org_id
        series = make_title(session, studio, kind="series")
        season_1 = make_title(session, studio, kind="season", parent=series)
        season_2 = make_title(session, studio, kind="season", parent=series)
        wanted = make_asset(
            session, make_title(session, studio, kind="episode", parent=season_1), data=b"s1e1"
        )
        make_asset(
            session, make_title(session, studio, kind="episode", parent=season_2), data=b"s2e1"
        )
        make_asset(session, series, data=b"series key art", kind="image")
        contract = make_contract(session, world, [season_1.id], status="signed")
        session.commit()
        body = get_manifest(client, contract.id, world["operator"].headers)
        assert [a["asset_id"] for a in body["assets"]] == [wanted.id]


class TestAccess:
    def test_a_contract_awaiting_signatures_has_no_manifest_yet(
        self, client: Any, session: Session, world: World
    ) -> None:
        title = make_title(session, world["studio_a"].org_id)
        make_asset(session, title, data=b"feature")
        contract = make_contract(session, world, [title.id], status="pending_signatures")
        session.commit()
        for who in ("developer_x", "studio_a", "operator"):
            problem(
                client.get(f"/api/v1/contracts/{contract.id}/manifest", headers=world[who].headers),
                409,
                "invalid_state",
            )
        for who in ("developer_y", "studio_b"):
            problem(
                client.get(f"/api/v1/contracts/{contract.id}/manifest", headers=world[who].headers),
                404,
                "not_found",
            )

    def test_a_terminated_contract_keeps_its_manifest_for_the_record(
        self, client: Any, session: Session, world: World
    ) -> None:
        title = make_title(session, world["studio_a"].org_id)
        asset = make_asset(session, title, data=b"feature")
        contract = make_contract(session, world, [title.id], status="active")
        session.execute(
            update(Contract).where(Contract.id == contract.id).values(status="terminated")
        )
        session.commit()
        body = get_manifest(client, contract.id, world["studio_a"].headers)
        assert [a["asset_id"] for a in body["assets"]] == [asset.id]
