"""A small multi-tenant world for route and authorization tests."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from marketplace.accounts import keys
from marketplace.accounts.models import ApiKey, Organization, User

ACTOR_NAMES = ("operator", "studio_a", "studio_b", "developer_x", "developer_y")
TENANTS = ACTOR_NAMES


@dataclass
class Actor:
    """Plain ids and keys (no ORM objects), so tests may roll back around it freely."""

    name: str
    kind: str
    org_id: str
    user_id: str
    key: str
    member_id: str
    member_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    @property
    def member_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.member_key}"}


@dataclass
class World:
    actors: dict[str, Actor] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Actor:
        return self.actors[name]


def make_user(session: Session, org_id: str, *, role: str, email: str) -> tuple[User, str]:
    user = User(organization_id=org_id, email=email, role=role)
    session.add(user)
    session.flush()
    raw, prefix, digest = keys.generate_key()
    session.add(ApiKey(user_id=user.id, prefix=prefix, key_hash=digest))
    session.flush()
    return user, raw


def build_world(session: Session) -> World:
    world = World()
    kinds = {
        "operator": "operator",
        "studio_a": "studio",
        "studio_b": "studio",
        "developer_x": "developer",
        "developer_y": "developer",
    }
    for name, kind in kinds.items():
        org = Organization(name=name.replace("_", " ").title(), kind=kind)
        session.add(org)
        session.flush()
        owner, owner_key = make_user(
            session, org.id, role="owner", email=f"owner@{name.replace('_', '-')}.test"
        )
        member, member_key = make_user(
            session, org.id, role="member", email=f"member@{name.replace('_', '-')}.test"
        )
        world.actors[name] = Actor(name, kind, org.id, owner.id, owner_key, member.id, member_key)
    return world
