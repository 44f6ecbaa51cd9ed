"""audit: events appended without a shared lock, sealed later into signed Merkle batches

`audit_events.seq`, `prev_hash` and `hash` become nullable: an event is written with its
content and parties, and gets its place in the log when the sealing job orders it into a batch
(`batch_id`, and `mac`, an HMAC of its hash under a key derived from the signing key).
`audit_batches` holds each batch's Merkle root, the link to the previous batch's head and the
head's Ed25519 signature. `ix_audit_events_unsealed` (partial, `seq IS NULL`) is what the sealer
reads.

The existing events lose their old chain (which anyone able to write the database could
recompute) and wait unsealed: the first sealing run orders them by id, as they were appended,
into signed batches. A downgrade chains every event again the old way, in seq then id order.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-08 10:00:00.000000
"""

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS_HASH = "0" * 64


def upgrade() -> None:
    op.create_table(
        "audit_batches",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("first_seq", sa.Integer(), nullable=False),
        sa.Column("tree_size", sa.Integer(), nullable=False),
        sa.Column("merkle_root", sa.String(length=64), nullable=False),
        sa.Column("prev_head", sa.String(length=64), nullable=False),
        sa.Column("sealed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("head_hash", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_batches")),
        sa.UniqueConstraint("head_hash", name=op.f("uq_audit_batches_head_hash")),
    )
    with op.batch_alter_table("audit_events") as batch:
        batch.alter_column("seq", existing_type=sa.Integer(), nullable=True)
        batch.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=True)
        batch.alter_column("hash", existing_type=sa.String(length=64), nullable=True)
        batch.add_column(sa.Column("batch_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("mac", sa.String(length=64), nullable=True))
        batch.create_foreign_key(
            op.f("fk_audit_events_batch_id_audit_batches"), "audit_batches", ["batch_id"], ["id"]
        )
        batch.create_index(op.f("ix_audit_events_batch_id"), ["batch_id"], unique=False)
    op.execute("UPDATE audit_events SET seq = NULL, prev_hash = NULL, hash = NULL")
    op.execute(f"UPDATE audit_chain_head SET seq = 0, hash = '{GENESIS_HASH}'")
    op.create_index(
        "ix_audit_events_unsealed",
        "audit_events",
        ["id"],
        unique=False,
        postgresql_where=sa.text("seq IS NULL"),
        sqlite_where=sa.text("seq IS NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_audit_events_unsealed",
        table_name="audit_events",
        postgresql_where=sa.text("seq IS NULL"),
        sqlite_where=sa.text("seq IS NULL"),
    )
    _chain_the_old_way()
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_index(op.f("ix_audit_events_batch_id"))
        batch.drop_constraint(op.f("fk_audit_events_batch_id_audit_batches"), type_="foreignkey")
        batch.drop_column("mac")
        batch.drop_column("batch_id")
        batch.alter_column("hash", existing_type=sa.String(length=64), nullable=False)
        batch.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch.alter_column("seq", existing_type=sa.Integer(), nullable=False)
    op.drop_table("audit_batches")


def _chain_the_old_way() -> None:
    """Every event in seq then id order, hashed into one chain as revision 0021's code did."""
    bind = op.get_bind()
    parties: dict[str, list[str]] = {}
    for event_id, org in bind.execute(
        sa.text("SELECT event_id, organization_id FROM audit_event_parties")
    ):
        parties.setdefault(event_id, []).append(org)
    rows = bind.execute(
        sa.text(
            "SELECT id, at, actor_user_id, actor_organization_id, organization_id, action, "
            "object_id, data, salt FROM audit_events "
            "ORDER BY CASE WHEN seq IS NULL THEN 1 ELSE 0 END, seq, id"
        )
    ).all()
    bind.execute(sa.text("UPDATE audit_events SET seq = NULL"))
    prev, seq = GENESIS_HASH, 0
    for row in rows:
        seq += 1
        at = row.at if isinstance(row.at, datetime) else datetime.fromisoformat(str(row.at))
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        data = row.data if isinstance(row.data, dict) else json.loads(row.data)
        document = {
            "action": row.action,
            "actor_organization_id": row.actor_organization_id,
            "actor_user_id": row.actor_user_id,
            "at": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "data": data,
            "id": row.id,
            "object_id": row.object_id,
            "organization_id": row.organization_id,
            "parties": sorted(set(parties.get(row.id, []))),
            "prev_hash": prev,
            "salt": row.salt,
            "seq": seq,
        }
        digest = hashlib.sha256(
            json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        ).hexdigest()
        bind.execute(
            sa.text(
                "UPDATE audit_events SET seq = :seq, prev_hash = :prev, hash = :hash WHERE id = :id"
            ),
            {"seq": seq, "prev": prev, "hash": digest, "id": row.id},
        )
        prev = digest
    bind.execute(
        sa.text("UPDATE audit_chain_head SET seq = :seq, hash = :hash"), {"seq": seq, "hash": prev}
    )
