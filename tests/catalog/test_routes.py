"""Catalog routes over HTTP: status codes, bodies, problem documents, and anonymity."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy.orm import Session

from catalog.models import Title
from marketplace.core.storage import CHECKSUM_HEADER, sha256_hex_to_base64
from marketplace.core.storage.fake import InMemoryStorage
from tests.catalog.factories import (
    make_asset,
    make_consent,
    make_credit,
    make_grant,
    make_talent,
    make_title,
)
from tests.helpers import problem
from tests.world import World

API = "/api/v1"
EIDR = "10.5240/7791-8534-2C23-9030-8610-5"
DATA = b"\x00\x01moving pictures" * 64


def post(client: Any, path: str, headers: dict[str, str], body: Any = None) -> Any:
    return client.post(API + path, headers=headers, json=body)


def create_title(client: Any, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    body = {"external_id": "t-1", "kind": "film", "name": "Harbor Lights"} | fields
    response = post(client, "/titles", headers, body)
    assert response.status_code == 201, response.get_data(as_text=True)
    created: dict[str, Any] = response.get_json()
    return created


class TestTitles:
    def test_create_get_patch_delete(self, client: Any, world: World) -> None:
        studio = world["studio_a"]
        created = create_title(
            client,
            studio.member_headers,
            eidr_id=EIDR,
            original_language="fr",
            genres=["Drama"],
            release_year=1995,
            synopsis="Boats.",
            visibility="listed",
        )
        assert created == {
            "id": created["id"],
            "studio_id": studio.org_id,
            "external_id": "t-1",
            "eidr_id": EIDR,
            "kind": "film",
            "parent_id": None,
            "name": "Harbor Lights",
            "original_language": "fr",
            "genres": ["drama"],
            "release_year": 1995,
            "synopsis": "Boats.",
            "visibility": "listed",
            "content_hours": 0.0,
            "max_height": None,
            "created_at": created["created_at"],
            "anonymized": False,
        }
        assert created["id"].startswith("ttl_") and created["created_at"].endswith("Z")
        path = f"{API}/titles/{created['id']}"
        assert client.get(path, headers=studio.headers).get_json() == created
        patched = client.patch(path, headers=studio.headers, json={"name": "Harbour Lights"})
        assert patched.status_code == 200
        assert patched.get_json()["name"] == "Harbour Lights"
        assert client.delete(path, headers=studio.headers).status_code == 204
        problem(client.get(path, headers=studio.headers), 404, "not_found")

    def test_validation_problems_name_fields(self, client: Any, world: World) -> None:
        headers = world["studio_a"].headers
        bad_eidr = problem(
            post(
                client,
                "/titles",
                headers,
                {"external_id": "x", "kind": "film", "name": "X", "eidr_id": EIDR[:-1] + "6"},
            ),
            422,
            "validation_error",
        )
        assert list(bad_eidr["errors"]) == ["eidr_id"]
        unknown = problem(
            post(
                client,
                "/titles",
                headers,
                {"external_id": "x", "kind": "film", "name": "X", "rating": "PG"},
            ),
            422,
            "validation_error",
        )
        assert "rating" in unknown["errors"]
        orphan = problem(
            post(client, "/titles", headers, {"external_id": "x", "kind": "episode", "name": "X"}),
            422,
            "validation_error",
        )
        assert list(orphan["errors"]) == ["parent_id"]
        title_id = create_title(client, headers)["id"]
        fixed = problem(
            client.patch(f"{API}/titles/{title_id}", headers=headers, json={"kind": "series"}),
            422,
            "validation_error",
        )
        assert "kind" in fixed["errors"]

    def test_duplicate_external_id_is_409(self, client: Any, world: World) -> None:
        headers = world["studio_a"].headers
        create_title(client, headers)
        body = problem(
            post(client, "/titles", headers, {"external_id": "t-1", "kind": "film", "name": "Y"}),
            409,
            "conflict",
        )
        assert "external_id" in body["errors"]

    def test_operator_acts_for_a_studio(self, client: Any, world: World) -> None:
        headers = world["operator"].headers
        problem(
            post(client, "/titles", headers, {"external_id": "x", "kind": "film", "name": "X"}),
            422,
            "validation_error",
        )
        created = create_title(client, headers, studio_id=world["studio_b"].org_id)
        assert created["studio_id"] == world["studio_b"].org_id

    def test_content_hours_follow_the_hierarchy(self, client: Any, world: World) -> None:
        headers = world["studio_a"].headers
        series = create_title(client, headers, external_id="s", kind="series")
        season = create_title(
            client, headers, external_id="s1", kind="season", parent_id=series["id"]
        )
        episode = create_title(
            client, headers, external_id="s1e1", kind="episode", parent_id=season["id"]
        )
        assert episode["parent_id"] == season["id"]
        problem(client.delete(f"{API}/titles/{series['id']}", headers=headers), 409, "conflict")


class TestAssetUpload:
    def test_register_upload_complete(
        self, client: Any, world: World, storage: InMemoryStorage
    ) -> None:
        headers = world["studio_a"].headers
        series = create_title(client, headers, external_id="s", kind="series")
        episode = create_title(
            client, headers, external_id="e", kind="episode", parent_id=series["id"]
        )
        sha = hashlib.sha256(DATA).hexdigest()
        registered = post(
            client,
            f"/titles/{episode['id']}/assets",
            headers,
            {
                "kind": "video",
                "byte_size": len(DATA),
                "sha256": sha,
                "filename": "ep1.mov",
                "duration_seconds": 1800.0,
                "height": 1080,
            },
        )
        assert registered.status_code == 201
        asset = registered.get_json()
        assert asset["status"] == "pending"
        assert asset["storage_key"].startswith(
            f"studios/{world['studio_a'].org_id}/titles/{episode['id']}/{asset['id']}/"
        )
        upload = asset["upload"]
        assert upload["method"] == "PUT"
        assert upload["headers"] == {CHECKSUM_HEADER: sha256_hex_to_base64(sha)}
        assert upload["expires_at"].endswith("Z")

        early = problem(
            post(client, f"/assets/{asset['id']}/complete", headers), 409, "invalid_state"
        )
        assert "no object has been uploaded" in early["detail"]
        listed = client.get(f"{API}/titles/{episode['id']}/assets", headers=headers).get_json()
        assert [(a["id"], a["status"]) for a in listed["items"]] == [(asset["id"], "pending")]
        assert listed["items"][0]["upload"]["url"]  # a fresh URL for a lost one

        assert storage.simulate_put(upload["url"], DATA, upload["headers"]) == 200
        done = post(client, f"/assets/{asset['id']}/complete", headers)
        assert done.status_code == 200
        assert done.get_json()["status"] == "ready"
        assert done.get_json()["upload"] is None
        assert done.get_json()["ready_at"].endswith("Z")
        for title in (episode, series):
            body = client.get(f"{API}/titles/{title['id']}", headers=headers).get_json()
            assert (body["content_hours"], body["max_height"]) == (0.5, 1080)

    def test_wrong_size_object_is_409_and_stays_pending(
        self, client: Any, world: World, storage: InMemoryStorage
    ) -> None:
        headers = world["studio_a"].headers
        title = create_title(client, headers)
        asset = post(
            client,
            f"/titles/{title['id']}/assets",
            headers,
            {"kind": "video", "byte_size": len(DATA), "sha256": hashlib.sha256(DATA).hexdigest()},
        ).get_json()
        storage.put_bytes(asset["storage_key"], DATA[:10])
        body = problem(
            post(client, f"/assets/{asset['id']}/complete", headers), 409, "invalid_state"
        )
        assert body["errors"] == {"byte_size": ["Stored object is 10 bytes."]}
        listed = client.get(f"{API}/titles/{title['id']}/assets", headers=headers).get_json()
        assert listed["items"][0]["status"] == "pending"

    def test_bad_declarations_are_422(self, client: Any, world: World) -> None:
        headers = world["studio_a"].headers
        title = create_title(client, headers)
        body = problem(
            post(
                client,
                f"/titles/{title['id']}/assets",
                headers,
                {"kind": "video", "byte_size": "12", "sha256": "zz"},
            ),
            422,
            "validation_error",
        )
        assert set(body["errors"]) == {"byte_size", "sha256"}

    def test_pagination_of_assets(self, client: Any, world: World, session: Session) -> None:
        title = make_title(session, world["studio_a"].org_id)
        made = [make_asset(session, title).id for _ in range(3)]
        session.commit()
        path = f"{API}/titles/{title.id}/assets?limit=2"
        first = client.get(path, headers=world["studio_a"].headers).get_json()
        assert len(first["items"]) == 2 and first["next_cursor"]
        second = client.get(
            f"{path}&cursor={first['next_cursor']}", headers=world["studio_a"].headers
        ).get_json()
        assert [a["id"] for a in first["items"] + second["items"]] == sorted(made)
        assert second["next_cursor"] is None


class TestRightsTalentClearance:
    def test_grant_list_delete(self, client: Any, world: World) -> None:
        headers = world["studio_a"].headers
        title = create_title(client, headers)
        created = post(
            client,
            f"/titles/{title['id']}/rights",
            headers,
            {
                "territories": ["us", "fr"],
                "start": "2026-01-01",
                "end": "2026-12-31",
                "permitted_uses": ["train"],
                "exclusive_available": True,
            },
        )
        assert created.status_code == 201
        grant = created.get_json()
        assert (grant["territories"], grant["start"], grant["end"]) == (
            ["FR", "US"],
            "2026-01-01",
            "2026-12-31",
        )
        listed = client.get(f"{API}/titles/{title['id']}/rights", headers=headers).get_json()
        assert [g["id"] for g in listed["items"]] == [grant["id"]]
        reversed_window = problem(
            post(
                client,
                f"/titles/{title['id']}/rights",
                headers,
                {
                    "territories": ["US"],
                    "start": "2026-02-01",
                    "end": "2026-01-01",
                    "permitted_uses": ["train"],
                },
            ),
            422,
            "validation_error",
        )
        assert list(reversed_window["errors"]) == ["end"]
        assert client.delete(f"{API}/rights/{grant['id']}", headers=headers).status_code == 204
        problem(client.delete(f"{API}/rights/{grant['id']}", headers=headers), 404, "not_found")

    def test_talent_credits_consents(self, client: Any, world: World) -> None:
        headers = world["studio_a"].headers
        title = create_title(client, headers)
        talent = post(client, "/talent", headers, {"name": "Ada", "external_ids": {"imdb": "nm1"}})
        assert talent.status_code == 201
        talent_id = talent.get_json()["id"]
        credit = post(
            client,
            f"/titles/{title['id']}/credits",
            headers,
            {"talent_id": talent_id, "role": "cast"},
        )
        assert credit.status_code == 201
        assert credit.get_json()["talent_name"] == "Ada"
        problem(
            post(
                client,
                f"/titles/{title['id']}/credits",
                headers,
                {"talent_id": talent_id, "role": "cast"},
            ),
            409,
            "conflict",
        )
        consent = post(
            client,
            f"/talent/{talent_id}/consents",
            headers,
            {
                "attributes": ["voice"],
                "permitted_uses": ["train"],
                "territories": ["WW"],
                "start": "2026-01-01",
                "end": "2026-12-31",
            },
        )
        assert consent.status_code == 201
        consents = client.get(f"{API}/talent/{talent_id}/consents", headers=headers).get_json()
        assert [c["attributes"] for c in consents["items"]] == [["voice"]]
        talent_list = client.get(f"{API}/talent", headers=headers).get_json()["items"]
        assert [t["id"] for t in talent_list] == [talent_id]
        problem(client.get(f"{API}/talent", headers=world["developer_x"].headers), 403, "forbidden")

    def test_clearance_answers_with_reasons(
        self, client: Any, world: World, session: Session
    ) -> None:
        org = world["studio_a"].org_id
        good = make_title(session, org, visibility="listed")
        make_grant(session, good)
        make_asset(session, good)
        bad = make_title(session, org, visibility="listed")
        make_asset(session, bad, status="pending")
        session.commit()
        response = post(
            client,
            "/clearance",
            world["developer_x"].headers,
            {
                "title_ids": [good.id, bad.id],
                "uses": ["train"],
                "territories": ["US"],
                "start": "2026-01-01",
                "end": "2026-12-31",
            },
        )
        assert response.status_code == 200
        body = response.get_json()
        assert body["cleared"] == [good.id]
        assert [b["title_id"] for b in body["blocked"]] == [bad.id]
        assert [r["code"] for r in body["blocked"][0]["reasons"]] == [
            "no_rights",
            "asset_not_ready",
        ]
        assert all(r["detail"] for r in body["blocked"][0]["reasons"])
        private = make_title(session, org, visibility="private")
        session.commit()
        missing = problem(
            post(
                client,
                "/clearance",
                world["developer_x"].headers,
                {
                    "title_ids": [private.id],
                    "uses": ["train"],
                    "territories": ["US"],
                    "start": "2026-01-01",
                    "end": "2026-12-31",
                },
            ),
            404,
            "not_found",
        )
        assert private.id in missing["detail"]
        bad_use = problem(
            post(
                client,
                "/clearance",
                world["developer_x"].headers,
                {
                    "title_ids": [good.id],
                    "uses": ["broadcast"],
                    "territories": ["US"],
                    "start": "2026-01-01",
                    "end": "2026-12-31",
                },
            ),
            422,
            "validation_error",
        )
        assert "uses.0" in bad_use["errors"]


class TestAnonymity:
    """Nothing a developer can reach about an anonymized title names its studio or people."""

    def test_no_route_leaks_an_anonymized_titles_identity(
        self, client: Any, world: World, session: Session
    ) -> None:
        org = world["studio_a"].org_id
        series = make_title(
            session, org, kind="series", visibility="listed", name="Open Series Name"
        )
        secret = make_title(
            session,
            org,
            kind="episode",
            parent=series,
            visibility="anonymized",
            name="Secret Episode Name",
            external_id="SECRET-EXT-42",
            eidr_id=EIDR,
            synopsis="Secret synopsis words",
        )
        make_grant(session, secret)
        asset = make_asset(session, secret, data=DATA)
        make_asset(session, secret, status="pending")
        star = make_talent(session, org, name="Hidden Star Person")
        make_credit(session, secret, star, "cast")
        make_consent(session, star, attributes=("name",))
        session.commit()

        developer = world["developer_x"].headers
        bodies = [
            client.get(f"{API}/titles/{secret.id}", headers=developer),
            client.get(f"{API}/titles/{secret.id}/assets", headers=developer),
            client.get(f"{API}/titles/{secret.id}/rights", headers=developer),
            client.get(f"{API}/titles/{secret.id}/credits", headers=developer),
            post(
                client,
                "/clearance",
                developer,
                {
                    "title_ids": [secret.id],
                    "uses": ["train"],
                    "territories": ["US"],
                    "start": "2026-01-01",
                    "end": "2026-12-31",
                },
            ),
            post(client, f"/assets/{asset.id}/complete", developer),
            client.patch(f"{API}/titles/{secret.id}", headers=developer, json={"name": "x"}),
        ]
        statuses = [r.status_code for r in bodies]
        assert statuses == [200, 200, 200, 200, 200, 403, 403]
        text = json.dumps([r.get_json() for r in bodies])
        forbidden = [
            org,
            "Studio A",
            "Secret Episode Name",
            "SECRET-EXT-42",
            EIDR,
            "Secret synopsis words",
            "Hidden Star Person",
            star.id,
            series.id,  # the listed parent would name the studio
            "studios/",  # storage keys hold the studio id
        ]
        leaks = [value for value in forbidden if value in text]
        assert leaks == []
        title = bodies[0].get_json()
        assert title["anonymized"] is True and title["parent_id"] is None
        assets = bodies[1].get_json()["items"]
        assert [a["id"] for a in assets] == [asset.id]  # pending ones are the studio's business
        assert assets[0]["storage_key"] is None and assets[0]["upload"] is None
        credit = bodies[3].get_json()["items"][0]
        assert (credit["talent_id"], credit["talent_name"], credit["role"]) == (None, None, "cast")
        reasons = bodies[4].get_json()["blocked"][0]["reasons"]
        assert [r["code"] for r in reasons] == ["talent_consent_missing"]

    def test_same_visibility_parents_are_linked_and_others_hidden(
        self, client: Any, world: World, session: Session
    ) -> None:
        org = world["studio_a"].org_id
        listed_series = make_title(session, org, kind="series", visibility="listed")
        listed_episode = make_title(
            session, org, kind="episode", parent=listed_series, visibility="listed"
        )
        private_series = make_title(session, org, kind="series", visibility="private")
        orphan = make_title(
            session, org, kind="episode", parent=private_series, visibility="listed"
        )
        session.commit()

        def parent_seen(title: Title, actor: str) -> str | None:
            headers = world[actor].headers
            parent: str | None = client.get(f"{API}/titles/{title.id}", headers=headers).get_json()[
                "parent_id"
            ]
            return parent

        assert parent_seen(listed_episode, "developer_x") == listed_series.id
        assert parent_seen(orphan, "developer_x") is None
        assert parent_seen(orphan, "studio_a") == private_series.id
        assert parent_seen(orphan, "operator") == private_series.id

    def test_listed_titles_show_everything(
        self, client: Any, world: World, session: Session
    ) -> None:
        title = make_title(session, world["studio_a"].org_id, visibility="listed", name="Open")
        star = make_talent(session, world["studio_a"].org_id, name="Known Star")
        make_credit(session, title, star, "voice")
        session.commit()
        developer = world["developer_y"].headers
        body = client.get(f"{API}/titles/{title.id}", headers=developer).get_json()
        assert (body["name"], body["studio_id"], body["anonymized"]) == (
            "Open",
            world["studio_a"].org_id,
            False,
        )
        credits = client.get(f"{API}/titles/{title.id}/credits", headers=developer).get_json()
        assert [(c["talent_id"], c["talent_name"]) for c in credits["items"]] == [
            (star.id, "Known Star")
        ]
