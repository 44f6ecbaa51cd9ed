"""Keyset pagination with opaque, signed cursors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import InstrumentedAttribute, Session

from marketplace.core.errors import BadRequest

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


@dataclass(frozen=True)
class SortKey:
    """One column of a keyset ordering; the last key of an ordering must be unique."""

    column: InstrumentedAttribute[Any]
    descending: bool = False


class CursorCodec:
    """Signs cursors so clients cannot forge positions (or probe hidden sort values)."""

    def __init__(self, secret_key: str) -> None:
        self._serializer = URLSafeSerializer(secret_key, salt="clearcut.cursor")

    def encode(self, scope: str, values: Sequence[Any]) -> str:
        return self._serializer.dumps([scope, [_to_json(v) for v in values]])

    def decode(self, scope: str, cursor: str) -> list[Any]:
        try:
            payload = self._serializer.loads(cursor)
        except BadSignature:
            raise BadRequest(
                "cursor is not valid", errors={"cursor": ["Not a valid cursor."]}
            ) from None
        if not isinstance(payload, list) or len(payload) != 2 or payload[0] != scope:
            raise BadRequest(
                "cursor is not valid for this list", errors={"cursor": ["Not a valid cursor."]}
            )
        return [_from_json(v) for v in payload[1]]


def _to_json(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"dt": value.isoformat()}
    return value


def _from_json(value: Any) -> Any:
    if isinstance(value, dict) and "dt" in value:
        return datetime.fromisoformat(value["dt"])
    return value


def paginate(
    session: Session,
    stmt: Select[Any],
    *,
    keys: Sequence[SortKey],
    limit: int,
    cursor: str | None,
    codec: CursorCodec,
    scope: str,
) -> Page[Any]:
    """Return one page of `stmt` ordered by `keys`, plus the cursor of the next page."""
    if cursor:
        after = codec.decode(scope, cursor)
        if len(after) != len(keys):
            raise BadRequest(
                "cursor is not valid for this list", errors={"cursor": ["Not a valid cursor."]}
            )
        stmt = stmt.where(_after(keys, after))
    stmt = stmt.order_by(*[k.column.desc() if k.descending else k.column.asc() for k in keys])
    rows = list(session.scalars(stmt.limit(limit + 1)))
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = codec.encode(scope, [getattr(last, k.column.key) for k in keys])
    return Page(rows, next_cursor)


def _after(keys: Sequence[SortKey], values: Sequence[Any]) -> Any:
    # (a, b, c) after (x, y, z)  ==  a > x  OR  (a = x AND b > y)  OR  (a = x AND b = y AND c > z),
    # with < for descending keys. Portable, and each branch can use the index.
    branches = []
    for i, key in enumerate(keys):
        equal = [keys[j].column == values[j] for j in range(i)]
        step = key.column < values[i] if key.descending else key.column > values[i]
        branches.append(and_(*equal, step))
    return or_(*branches)
