"""Catalog objects for tests, inserted as plain rows (the services under test are not used)."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable
from datetime import date

from sqlalchemy.orm import Session

from catalog.media import refresh_title_media
from catalog.models import (
    Asset,
    Consent,
    Credit,
    RightsGrant,
    RightsTerm,
    Talent,
    Title,
    TitleGenre,
)
from catalog.rights import refresh_title_coverage
from marketplace.accounts.principal import Principal
from marketplace.core.ids import new_id
from tests.world import World

_counter = itertools.count(1)

ALL = ("train", "fine_tune", "evaluate", "generate_reference")
FOUR = ("name", "image", "likeness", "voice")


def principal(world: World, name: str, *, member: bool = False) -> Principal:
    """The Principal of a world actor (its owner, or its member)."""
    actor = world[name]
    return Principal(
        user_id=actor.member_id if member else actor.user_id,
        organization_id=actor.org_id,
        kind=actor.kind,
        role="member" if member else "owner",
    )


def make_title(
    session: Session,
    studio_id: str,
    *,
    kind: str = "film",
    parent: Title | None = None,
    visibility: str = "listed",
    name: str | None = None,
    genres: Iterable[str] = ("drama",),
    **fields: object,
) -> Title:
    n = next(_counter)
    values: dict[str, object] = {
        "external_id": f"ext-{n}",
        "original_language": "en",
        "release_year": 2001,
        "synopsis": f"Synopsis of title {n}",
    }
    values.update(fields)
    title = Title(
        id=new_id("ttl"),
        studio_id=studio_id,
        kind=kind,
        parent_id=parent.id if parent else None,
        root_id=(parent.root_id or parent.id) if parent else None,
        name=name or f"Title number {n}",
        genres=list(genres),
        visibility=visibility,
        own_seconds=0.0,
        content_seconds=0.0,
        **values,
    )
    session.add(title)
    session.add_all(TitleGenre(title_id=title.id, genre=g) for g in title.genres)
    session.flush()
    if parent is not None:
        refresh_title_coverage(session, title_ids=[title.id])
    return title


def make_asset(
    session: Session,
    title: Title,
    *,
    status: str = "ready",
    kind: str = "video",
    duration_seconds: float | None = 3600.0,
    height: int | None = 1080,
    data: bytes | None = None,
    byte_size: int | None = None,
) -> Asset:
    """An asset of `data` (made up if None); `byte_size` declares a size with no bytes at all
    (a master past one PUT, never uploaded)."""
    body = data if data is not None else f"asset {next(_counter)}".encode()
    asset_id = new_id("ast")
    asset = Asset(
        id=asset_id,
        title_id=title.id,
        studio_id=title.studio_id,
        kind=kind,
        storage_key=f"studios/{title.studio_id}/titles/{title.id}/{asset_id}",
        byte_size=len(body) if byte_size is None else byte_size,
        sha256=hashlib.sha256(body).hexdigest(),
        duration_seconds=duration_seconds,
        height=height,
        width=None if height is None else height * 16 // 9,
        status=status,
    )
    session.add(asset)
    session.flush()
    if status == "ready":
        refresh_title_media(session, title.id)
    return asset


def make_grant(
    session: Session,
    title: Title,
    *,
    territories: Iterable[str] = ("WW",),
    start: date = date(2020, 1, 1),
    end: date = date(2040, 12, 31),
    uses: Iterable[str] = ALL,
    exclusive_available: bool = False,
) -> RightsGrant:
    grant = RightsGrant(
        title_id=title.id,
        studio_id=title.studio_id,
        territories=sorted(territories),
        start=start,
        end=end,
        permitted_uses=list(uses),
        exclusive_available=exclusive_available,
    )
    session.add(grant)
    session.flush()
    session.add_all(
        RightsTerm(grant_id=grant.id, territory=t, use=u, title_id=title.id)
        for t in grant.territories
        for u in grant.permitted_uses
    )
    session.flush()
    # As catalog.rights.create_grant does: search reads the coverage, not the terms.
    refresh_title_coverage(session, title_ids=[title.id])
    return grant


def make_talent(session: Session, studio_id: str, name: str | None = None) -> Talent:
    talent = Talent(studio_id=studio_id, name=name or f"Performer {next(_counter)}")
    session.add(talent)
    session.flush()
    return talent


def make_credit(session: Session, title: Title, talent: Talent, role: str = "cast") -> Credit:
    credit = Credit(title_id=title.id, talent_id=talent.id, role=role)
    session.add(credit)
    session.flush()
    return credit


def make_consent(
    session: Session,
    talent: Talent,
    *,
    attributes: Iterable[str] = FOUR,
    uses: Iterable[str] = ALL,
    territories: Iterable[str] = ("WW",),
    start: date = date(2020, 1, 1),
    end: date = date(2040, 12, 31),
) -> Consent:
    consent = Consent(
        talent_id=talent.id,
        studio_id=talent.studio_id,
        attributes=list(attributes),
        permitted_uses=list(uses),
        territories=list(territories),
        start=start,
        end=end,
    )
    session.add(consent)
    session.flush()
    return consent


def cleared_film(session: Session, studio_id: str, **title_fields: object) -> Title:
    """A film that clears anything: worldwide grant for every use, a ready video, no cast."""
    title = make_title(session, studio_id, **title_fields)  # type: ignore[arg-type]
    make_grant(session, title)
    make_asset(session, title)
    return title
