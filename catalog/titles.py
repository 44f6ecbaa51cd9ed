"""Titles: creation, edits, deletion, and the film | series → season → episode hierarchy.

Decisions where API.md is silent:
- `kind` and `parent_id` are fixed at creation: moving a subtree would have to re-root every
  descendant and move derived runtimes between trees; delete and recreate instead.
- A title with children cannot be deleted (409): delete the episodes and seasons first, so that
  no request ever removes more than the one title it names.
- Nor can a title that a registered guard protects (409): the contracts layer refuses the
  deletion of a title licensed, itself or through its series or season, under a contract in
  force (a guard the caller passes from the runtime's CatalogRules; the catalog knows nothing
  of contracts).
- A top-level title (film, series) has `root_id` NULL; seasons and episodes carry the id of
  their series, so a title's ancestors are always within {parent_id, root_id}.
- Genres are trimmed, lower-cased and de-duplicated (order kept), so filters match one spelling.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import delete, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from catalog.access import acting_studio, get_managed_title
from catalog.codes import normalize_language
from catalog.eidr import validate_eidr
from catalog.models import (
    CHILD_KINDS,
    TITLE_KINDS,
    VISIBILITIES,
    Asset,
    Credit,
    RightsGrant,
    RightsTerm,
    Title,
    TitleCoverage,
    TitleGenre,
)
from catalog.rights import refresh_title_coverage
from marketplace.accounts.principal import Principal
from marketplace.audit.service import record_event
from marketplace.core.errors import Conflict, ValidationFailed
from marketplace.core.ids import new_id

MAX_GENRES = 20
MAX_GENRE_LENGTH = 50
# The first films (1870s) to well past any plausible release schedule.
MIN_YEAR, MAX_YEAR = 1870, 2100
# Fields PATCH may change (kind and parent_id are fixed at creation, see the module docstring).
EDITABLE_FIELDS = (
    "external_id",
    "eidr_id",
    "name",
    "original_language",
    "genres",
    "release_year",
    "synopsis",
    "visibility",
)


def normalize_genres(genres: Iterable[str]) -> list[str]:
    """Return genres trimmed, lower-cased and de-duplicated in order; ValidationFailed if bad."""
    result: list[str] = []
    for genre in genres:
        value = " ".join(str(genre).split()).lower()
        if not value or len(value) > MAX_GENRE_LENGTH:
            raise ValidationFailed(
                "invalid genre",
                errors={"genres": [f"Each genre is 1 to {MAX_GENRE_LENGTH} characters."]},
            )
        if value not in result:
            result.append(value)
    if len(result) > MAX_GENRES:
        raise ValidationFailed(
            "too many genres", errors={"genres": [f"At most {MAX_GENRES} genres."]}
        )
    return result


def set_genres(session: Session, title: Title, genres: list[str]) -> None:
    """Set `title.genres` and its `title_genres` rows (the filterable copy) together."""
    title.genres = list(genres)
    session.execute(delete(TitleGenre).where(TitleGenre.title_id == title.id))
    session.add_all(TitleGenre(title_id=title.id, genre=g) for g in genres)


def normalize_title_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """Validate and normalize the codes and lists among `fields`; raise ValidationFailed."""
    out = dict(fields)
    errors: dict[str, list[str]] = {}
    if out.get("eidr_id") is not None:
        try:
            out["eidr_id"] = validate_eidr(out["eidr_id"])
        except ValueError as exc:
            errors["eidr_id"] = [str(exc)]
    if out.get("original_language") is not None:
        try:
            out["original_language"] = normalize_language(out["original_language"])
        except ValueError as exc:
            errors["original_language"] = [str(exc)]
    if "visibility" in out and out["visibility"] not in VISIBILITIES:
        errors["visibility"] = [f"Must be one of: {', '.join(VISIBILITIES)}."]
    if "kind" in out and out["kind"] not in TITLE_KINDS:
        errors["kind"] = [f"Must be one of: {', '.join(TITLE_KINDS)}."]
    for name in ("external_id", "name"):
        if name in out and (out[name] is None or not str(out[name]).strip()):
            errors[name] = ["Must not be blank."]
        elif name in out:
            out[name] = str(out[name]).strip()
    year = out.get("release_year")
    if year is not None and not MIN_YEAR <= year <= MAX_YEAR:
        errors["release_year"] = [f"Must be between {MIN_YEAR} and {MAX_YEAR}."]
    if errors:
        raise ValidationFailed("invalid title", errors=errors)
    if "genres" in out:
        out["genres"] = normalize_genres(out["genres"] or [])
    return out


def place_in_hierarchy(
    session: Session, studio_id: str, kind: str, parent_id: str | None
) -> str | None:
    """Check that `kind` may sit under `parent_id` in this studio; return the root id to store."""
    allowed_parents = [p for p, children in CHILD_KINDS.items() if kind in children]
    if not allowed_parents:
        if parent_id is not None:
            raise ValidationFailed(
                f"a {kind} has no parent", errors={"parent_id": [f"A {kind} has no parent."]}
            )
        return None
    wanted = " or ".join(allowed_parents)
    if parent_id is None:
        raise ValidationFailed(
            f"a {kind} needs a parent {wanted}",
            errors={"parent_id": [f"A {kind} needs a {wanted}."]},
        )
    parent = session.scalars(
        select(Title).where(Title.id == parent_id, Title.studio_id == studio_id)
    ).one_or_none()
    # The same answer for another studio's title as for no title at all: nothing leaks.
    if parent is None:
        raise ValidationFailed(
            f"no title {parent_id} in this studio's catalog",
            errors={"parent_id": ["No such title in this studio's catalog."]},
        )
    if parent.kind not in allowed_parents:
        raise ValidationFailed(
            f"a {kind} cannot be a child of a {parent.kind}",
            errors={"parent_id": [f"The parent of a {kind} is a {wanted}."]},
        )
    return parent.root_id or parent.id


def _check_external_id_free(
    session: Session, studio_id: str, external_id: str, *, other_than: str | None = None
) -> None:
    stmt = select(Title.id).where(Title.studio_id == studio_id, Title.external_id == external_id)
    if other_than is not None:
        stmt = stmt.where(Title.id != other_than)
    if session.scalar(stmt) is not None:
        raise Conflict(
            f"external_id {external_id!r} is already used in this studio's catalog",
            errors={"external_id": ["Already used by another title of this studio."]},
        )


def _flush_unique(session: Session, external_id: str) -> None:
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent request took the external id first
        raise Conflict(
            f"external_id {external_id!r} is already used in this studio's catalog",
            errors={"external_id": ["Already used by another title of this studio."]},
        ) from exc


def create_title(
    session: Session,
    principal: Principal,
    *,
    external_id: str,
    kind: str,
    name: str,
    studio_id: str | None = None,
    parent_id: str | None = None,
    eidr_id: str | None = None,
    original_language: str | None = None,
    genres: Iterable[str] = (),
    release_year: int | None = None,
    synopsis: str | None = None,
    visibility: str = "private",
) -> Title:
    """Create a title in the caller's catalog (an operator names the studio)."""
    studio = acting_studio(session, principal, studio_id)
    fields = normalize_title_fields(
        {
            "external_id": external_id,
            "kind": kind,
            "name": name,
            "eidr_id": eidr_id,
            "original_language": original_language,
            "genres": list(genres),
            "release_year": release_year,
            "visibility": visibility,
        }
    )
    root_id = place_in_hierarchy(session, studio, fields["kind"], parent_id)
    _check_external_id_free(session, studio, fields["external_id"])
    title = Title(
        id=new_id("ttl"),
        studio_id=studio,
        external_id=fields["external_id"],
        eidr_id=fields["eidr_id"],
        kind=fields["kind"],
        parent_id=parent_id,
        root_id=root_id,
        name=fields["name"],
        original_language=fields["original_language"],
        release_year=release_year,
        synopsis=synopsis,
        visibility=fields["visibility"],
        own_seconds=0.0,
        content_seconds=0.0,
    )
    session.add(title)
    set_genres(session, title, fields["genres"])
    _flush_unique(session, title.external_id)
    if parent_id is not None:
        # Its series' and season's grants cover it from the start.
        refresh_title_coverage(session, title_ids=[title.id])
    record_event(
        session,
        principal,
        "title.created",
        object_id=title.id,
        organization_id=studio,
        data={"kind": title.kind, "external_id": title.external_id, "parent_id": parent_id},
    )
    return title


def update_title(
    session: Session, principal: Principal, title_id: str, changes: dict[str, Any]
) -> Title:
    """Change a title's descriptive fields and visibility (not its kind or parent)."""
    unknown = sorted(set(changes) - set(EDITABLE_FIELDS))
    if unknown:
        raise ValidationFailed(
            "these fields cannot be changed", errors={f: ["Cannot be changed."] for f in unknown}
        )
    title = get_managed_title(session, principal, title_id)
    fields = normalize_title_fields(changes)
    if "external_id" in fields:
        _check_external_id_free(
            session, title.studio_id, fields["external_id"], other_than=title.id
        )
    changed: dict[str, Any] = {}
    for name, value in fields.items():
        current = title.genres if name == "genres" else getattr(title, name)
        if current == value:
            continue
        changed[name] = value
        if name == "genres":
            set_genres(session, title, value)
        else:
            setattr(title, name, value)
    if not changed:
        return title
    _flush_unique(session, title.external_id)
    record_event(
        session,
        principal,
        "title.updated",
        object_id=title.id,
        organization_id=title.studio_id,
        data={"fields": sorted(changed), "visibility": title.visibility},
    )
    return title


#: Returns why `title` may not be deleted now ("it is …", for a sentence), or None.
TitleDeletionGuard = Callable[[Session, Title], str | None]


def delete_title(
    session: Session,
    principal: Principal,
    title_id: str,
    *,
    guards: Sequence[TitleDeletionGuard],
) -> None:
    """Delete a title without children, with its assets, grants, credits and genres, unless
    one of `guards` (CatalogRules) refuses (409 with its reason)."""
    from catalog.media import refresh_title_media

    title = get_managed_title(session, principal, title_id, lock=True)
    if session.scalar(select(exists().where(Title.parent_id == title.id))):
        raise Conflict(
            f"title {title_id} has children; delete its seasons and episodes first",
            errors={"title_id": ["Has children."]},
        )
    for guard in guards:
        reason = guard(session, title)
        if reason is not None:
            raise Conflict(
                f"title {title_id} cannot be deleted: {reason}",
                errors={"title_id": [reason[0].upper() + reason[1:] + "."]},
            )
    studio_id, parent_id = title.studio_id, title.parent_id
    # Explicit deletes rather than relying on ON DELETE CASCADE alone: the same on every
    # database, and the storage objects of the assets are left in place (the store may
    # keep them for audit; a lifecycle rule expires them).
    grant_ids = select(RightsGrant.id).where(RightsGrant.title_id == title.id)
    session.execute(delete(RightsTerm).where(RightsTerm.grant_id.in_(grant_ids)))
    for model in (RightsGrant, Asset, Credit, TitleGenre, TitleCoverage):
        session.execute(delete(model).where(model.title_id == title.id))
    session.delete(title)
    session.flush()
    if parent_id is not None:
        refresh_title_media(session, parent_id)
    record_event(
        session,
        principal,
        "title.deleted",
        object_id=title_id,
        organization_id=studio_id,
        data={"kind": title.kind, "external_id": title.external_id},
    )
