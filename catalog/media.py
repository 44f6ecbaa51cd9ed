"""Derived media figures of titles: runtime (`own_seconds`, `content_seconds`) and `max_height`.

A title's own runtime is its longest ready video rendition (renditions of one programme do not
add up); its content is its own runtime plus every child's content, so a series holds the hours
of all its seasons and episodes. `max_height` is the tallest ready video of the title or of any
descendant, so "min_height" filters find a series by its episodes.

These are kept current on every asset change, never recounted per request: a change refreshes
only the changed titles and their ancestors (at most two), each from its own assets and its
direct children's stored figures. The rows on the path are locked first, so two concurrent
completions under one series serialize instead of overwriting each other's sums.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog.models import Asset, Title

# Keeps IN lists well under SQLite's bound-parameter limit.
_CHUNK = 500

T = TypeVar("T")


def _chunks(values: Sequence[T]) -> Iterator[Sequence[T]]:
    for i in range(0, len(values), _CHUNK):
        yield values[i : i + _CHUNK]


def _depth(title: Title) -> int:
    if title.root_id is None:
        return 0
    return 1 if title.parent_id == title.root_id else 2


def refresh_title_media(session: Session, title_id: str) -> None:
    """Recompute a title's runtime and height from its assets, and carry them up its ancestors."""
    refresh_titles_media(session, [title_id])


def refresh_titles_media(session: Session, title_ids: Iterable[str]) -> None:
    """Refresh many titles at once (bulk import): a few queries per level, not per title."""
    wanted = sorted(set(title_ids))
    if not wanted:
        return
    path: set[str] = set(wanted)
    for chunk in _chunks(wanted):
        for parent_id, root_id in session.execute(
            select(Title.parent_id, Title.root_id).where(Title.id.in_(chunk))
        ):
            path.update(i for i in (parent_id, root_id) if i)
    ordered = sorted(path)
    titles: dict[str, Title] = {}
    for chunk in _chunks(ordered):
        # Locked in id order by every caller, so concurrent refreshes cannot deadlock.
        stmt = (
            select(Title)
            .where(Title.id.in_(chunk))
            .order_by(Title.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        titles.update((t.id, t) for t in session.scalars(stmt))
    own: dict[str, tuple[float | None, int | None]] = {}
    for chunk in _chunks(list(titles)):
        for title_id, seconds, height in session.execute(
            select(Asset.title_id, func.max(Asset.duration_seconds), func.max(Asset.height))
            .where(Asset.title_id.in_(chunk), Asset.status == "ready", Asset.kind == "video")
            .group_by(Asset.title_id)
        ):
            own[title_id] = (seconds, height)
    # Deepest first, so each parent sums children that are already up to date.
    for depth in (2, 1, 0):
        level = [t for t in titles.values() if _depth(t) == depth]
        if not level:
            continue
        session.flush()
        children: dict[str, tuple[float, int | None]] = {}
        for chunk in _chunks([t.id for t in level]):
            for parent_id, seconds, height in session.execute(
                select(Title.parent_id, func.sum(Title.content_seconds), func.max(Title.max_height))
                .where(Title.parent_id.in_(chunk))
                .group_by(Title.parent_id)
            ):
                if parent_id is not None:
                    children[parent_id] = (float(seconds or 0.0), height)
        for title in level:
            own_seconds, own_height = own.get(title.id, (None, None))
            child_seconds, child_height = children.get(title.id, (0.0, None))
            heights = [h for h in (own_height, child_height) if h is not None]
            title.own_seconds = float(own_seconds or 0.0)
            title.content_seconds = title.own_seconds + child_seconds
            title.max_height = max(heights) if heights else None
    session.flush()
