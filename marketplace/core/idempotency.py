"""Idempotency-Key records: the first response to a (user, key) is stored and replayed."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from marketplace.core.db import Base, created_at_column, id_column
from marketplace.core.errors import BadRequest, IdempotencyConflict

MAX_KEY_LENGTH = 255


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("user_id", "key"),)

    id: Mapped[str] = id_column("idem")
    user_id: Mapped[str] = mapped_column(String(40), nullable=False)
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH), nullable=False)
    method: Mapped[str] = mapped_column(String(10), nullable=False)
    path: Mapped[str] = mapped_column(String(500), nullable=False)
    request_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    status_code: Mapped[int] = mapped_column(Integer, nullable=False)
    content_type: Mapped[str] = mapped_column(String(100), nullable=False)
    location: Mapped[str | None] = mapped_column(String(500))
    body: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = created_at_column()


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    content_type: str
    location: str | None
    body: str


def request_fingerprint(method: str, path: str, query: str, body: bytes) -> str:
    """Hash what makes two requests "the same request"."""
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query.encode()):
        digest.update(part)
        digest.update(b"\0")
    digest.update(body)
    return digest.hexdigest()


def validate_key(key: str) -> str:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise BadRequest(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters")
    return key


def find_replay(
    session: Session, *, user_id: str, key: str, fingerprint: str
) -> StoredResponse | None:
    """Return the stored response for this key, None if unseen; 409 if used for another request."""
    record = session.scalars(
        select(IdempotencyRecord).where(
            IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key
        )
    ).one_or_none()
    if record is None:
        return None
    if record.request_hash != fingerprint:
        raise IdempotencyConflict("this Idempotency-Key was already used with a different request")
    return StoredResponse(record.status_code, record.content_type, record.location, record.body)


def store_response(
    session: Session,
    *,
    user_id: str,
    key: str,
    method: str,
    path: str,
    fingerprint: str,
    response: Any,
) -> None:
    """Add the response to the request's transaction, so it is stored iff the change commits."""
    session.add(
        IdempotencyRecord(
            user_id=user_id,
            key=key,
            method=method,
            path=path[:500],
            request_hash=fingerprint,
            status_code=response.status_code,
            content_type=response.content_type or "application/json",
            location=response.headers.get("Location"),
            body=response.get_data(as_text=True),
        )
    )
