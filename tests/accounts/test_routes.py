"""Organizations, users, keys and /me over HTTP, with the problem documents of API.md."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from tests.disclosure import by_appearance, normalized, scenario
from tests.helpers import problem
from tests.world import World


class TestAuthentication:
    def test_no_key_is_401_unauthenticated(self, client: Any) -> None:
        response = client.get("/api/v1/me")
        problem(response, 401, "unauthenticated")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")

    def test_unknown_key_is_401(self, client: Any, world: World) -> None:
        key = world["studio_a"].key
        forged = key[:-4] + ("aaaa" if not key.endswith("aaaa") else "bbbb")
        problem(
            client.get("/api/v1/me", headers={"Authorization": f"Bearer {forged}"}),
            401,
            "unauthenticated",
        )
        problem(
            client.get("/api/v1/me", headers={"Authorization": "Bearer nonsense"}),
            401,
            "unauthenticated",
        )
        problem(
            client.get("/api/v1/me", headers={"Authorization": f"Basic {key}"}),
            401,
            "unauthenticated",
        )

    def test_me_names_user_and_organization(self, client: Any, world: World) -> None:
        actor = world["studio_a"]
        body = client.get("/api/v1/me", headers=actor.headers).get_json()
        assert body["user"]["id"] == actor.user_id
        assert body["user"]["role"] == "owner"
        assert body["organization"] == {
            "id": actor.org_id,
            "name": "Studio A",
            "kind": "studio",
            "created_at": body["organization"]["created_at"],
        }
        assert body["organization"]["created_at"].endswith("Z")

    def test_revoked_key_is_refused_at_once(self, client: Any, world: World) -> None:
        actor = world["developer_x"]
        created = client.post("/api/v1/api-keys", headers=actor.headers)
        assert created.status_code == 201
        new = created.get_json()
        assert new["api_key"].startswith("cc_")
        headers = {"Authorization": f"Bearer {new['api_key']}"}
        assert client.get("/api/v1/me", headers=headers).status_code == 200
        assert client.delete(f"/api/v1/api-keys/{new['id']}", headers=headers).status_code == 204
        problem(client.get("/api/v1/me", headers=headers), 401, "unauthenticated")
        # The other keys of the same user still work.
        assert client.get("/api/v1/me", headers=actor.headers).status_code == 200

    def test_keys_are_stored_hashed(self, client: Any, world: World, session: Any) -> None:
        from marketplace.accounts.models import ApiKey

        raw = client.post("/api/v1/api-keys", headers=world["studio_a"].headers).get_json()
        stored = session.get(ApiKey, raw["id"])
        assert raw["api_key"] not in (stored.key_hash, stored.prefix)
        assert raw["api_key"].split("_", 2)[2] not in stored.key_hash

    def test_key_listing_never_shows_secrets(self, client: Any, world: World) -> None:
        actor = world["studio_a"]
        body = client.get("/api/v1/api-keys", headers=actor.headers).get_json()
        assert {k["user_id"] for k in body["items"]} == {actor.user_id, actor.member_id}
        assert all("api_key" not in k and "key_hash" not in k for k in body["items"])

    def test_member_cannot_revoke_the_owners_key(self, client: Any, world: World) -> None:
        actor = world["studio_a"]
        keys = client.get("/api/v1/api-keys", headers=actor.headers).get_json()["items"]
        owner_key = next(k for k in keys if k["user_id"] == actor.user_id)
        problem(
            client.delete(f"/api/v1/api-keys/{owner_key['id']}", headers=actor.member_headers),
            404,
            "not_found",
        )


class TestOrganizations:
    def test_studio_cannot_create_organizations(self, client: Any, world: World) -> None:
        response = client.post(
            "/api/v1/organizations",
            json={"name": "X", "kind": "studio"},
            headers=world["studio_a"].headers,
        )
        problem(response, 403, "forbidden")

    def test_operator_creates_and_audits(self, client: Any, world: World) -> None:
        op = world["operator"]
        response = client.post(
            "/api/v1/organizations", json={"name": "Orbit", "kind": "studio"}, headers=op.headers
        )
        assert response.status_code == 201
        org = response.get_json()
        assert org["id"].startswith("org_") and org["kind"] == "studio"
        events = client.get(f"/api/v1/audit-events?object_id={org['id']}", headers=op.headers)
        actions = [e["action"] for e in events.get_json()["items"]]
        assert actions == ["organization.created"]

    def test_others_see_only_their_own(self, client: Any, world: World) -> None:
        a = world["studio_a"]
        listed = client.get("/api/v1/organizations", headers=a.headers).get_json()
        assert [o["id"] for o in listed["items"]] == [a.org_id]
        problem(
            client.get(f"/api/v1/organizations/{world['studio_b'].org_id}", headers=a.headers),
            404,
            "not_found",
        )
        everyone = client.get("/api/v1/organizations", headers=world["operator"].headers)
        assert len(everyone.get_json()["items"]) == 5

    def test_pagination_walks_every_item_once(self, client: Any, world: World) -> None:
        op = world["operator"].headers
        for i in range(7):
            client.post(
                "/api/v1/organizations", json={"name": f"S{i}", "kind": "studio"}, headers=op
            )
        seen, cursor = [], None
        while True:
            url = "/api/v1/organizations?limit=3" + (f"&cursor={cursor}" if cursor else "")
            page = client.get(url, headers=op).get_json()
            assert len(page["items"]) <= 3
            seen += [o["id"] for o in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == 12 and len(set(seen)) == 12 and seen == sorted(seen)

    def test_bad_cursor_and_limit_are_400(self, client: Any, world: World) -> None:
        op = world["operator"].headers
        problem(client.get("/api/v1/organizations?cursor=forged", headers=op), 400, "bad_request")
        body = problem(client.get("/api/v1/organizations?limit=0", headers=op), 400, "bad_request")
        assert "limit" in body["errors"]
        problem(client.get("/api/v1/organizations?limit=201", headers=op), 400, "bad_request")


class TestUsers:
    def test_owner_adds_a_member_whose_key_works(self, client: Any, world: World) -> None:
        a = world["studio_a"]
        response = client.post(
            f"/api/v1/organizations/{a.org_id}/users",
            json={"email": "New@Studio-A.test", "role": "member"},
            headers=a.headers,
        )
        assert response.status_code == 201
        body = response.get_json()
        assert body["user"]["email"] == "new@studio-a.test"
        assert body["user"]["organization_id"] == a.org_id
        me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['api_key']}"})
        assert me.get_json()["user"]["id"] == body["user"]["id"]

    def test_member_may_not_add_users(self, client: Any, world: World) -> None:
        a = world["studio_a"]
        problem(
            client.post(
                f"/api/v1/organizations/{a.org_id}/users",
                json={"email": "x@a.test"},
                headers=a.member_headers,
            ),
            403,
            "forbidden",
        )

    def test_studio_cannot_add_users_to_another_organization(
        self, client: Any, world: World
    ) -> None:
        response = client.post(
            f"/api/v1/organizations/{world['studio_b'].org_id}/users",
            json={"email": "x@b.test"},
            headers=world["studio_a"].headers,
        )
        problem(response, 404, "not_found")

    def test_operator_adds_users_anywhere(self, client: Any, world: World) -> None:
        response = client.post(
            f"/api/v1/organizations/{world['developer_y'].org_id}/users",
            json={"email": "x@y.test", "role": "owner"},
            headers=world["operator"].headers,
        )
        assert response.status_code == 201

    def test_an_email_already_in_the_organization_is_409(self, client: Any, world: World) -> None:
        a = world["studio_a"]
        body = problem(
            client.post(
                f"/api/v1/organizations/{a.org_id}/users",
                json={"email": "Member@Studio-A.test"},
                headers=a.headers,
            ),
            409,
            "conflict",
        )
        assert "email" in body["errors"]

    def test_an_email_of_another_organization_answers_as_a_fresh_one(
        self, client: Any, connection: Connection, world: World
    ) -> None:
        """Adding a user tells an owner nothing about other organizations' addresses."""
        a = world["studio_a"]
        answers = {}
        for email in ("fresh@example.test", "owner@studio-b.test", "Owner@Studio-B.TEST"):
            with scenario(connection):
                response = client.post(
                    f"/api/v1/organizations/{a.org_id}/users",
                    json={"email": email, "role": "member"},
                    headers=a.headers,
                )
                body = response.get_json()
                assert response.status_code == 201, body
                assert body["user"]["email"] == email.lower()
                key = body.pop("api_key")
                me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {key}"})
                assert me.get_json()["organization"]["id"] == a.org_id
                body["user"]["email"] = "<email>"
                answers[email] = normalized(response) | {"body": by_appearance(body)}
        reference = answers.pop("fresh@example.test")
        for email, answer in answers.items():
            assert answer == reference, email
        # The address's first user is untouched: its key still answers for studio B.
        me = client.get("/api/v1/me", headers=world["studio_b"].headers).get_json()
        assert me["user"]["email"] == "owner@studio-b.test"
