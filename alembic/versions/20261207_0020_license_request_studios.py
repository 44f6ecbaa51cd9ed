"""license_request_studios: a request that names titles reaches the studios owning them only

One row per (request, studio owning a title the request names), written when the request is
made; `visible_requests` shows a studio the open requests linked to it and, when a request has
no link and names no title (a brief by criteria alone), every studio. Before this revision every
open request reached every studio, the developer, its titles and budget included.

The upgrade links existing requests to the studios that own their titles now. A request whose
titles have all been deleted gets no link and, naming titles, reaches no studio (operators and
studios that already offered on it still see it).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_requests = sa.table(
    "license_requests", sa.column("id", sa.String), sa.column("title_ids", sa.JSON)
)
_titles = sa.table("titles", sa.column("id", sa.String), sa.column("studio_id", sa.String))


def upgrade() -> None:
    links = op.create_table(
        "license_request_studios",
        sa.Column("request_id", sa.String(length=40), nullable=False),
        sa.Column("studio_id", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["license_requests.id"],
            name=op.f("fk_license_request_studios_request_id_license_requests"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["studio_id"],
            ["organizations.id"],
            name=op.f("fk_license_request_studios_studio_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("request_id", "studio_id", name=op.f("pk_license_request_studios")),
    )
    op.create_index(
        "ix_license_request_studios_studio_id_request_id",
        "license_request_studios",
        ["studio_id", "request_id"],
        unique=False,
    )
    bind = op.get_bind()
    for request_id, title_ids in bind.execute(sa.select(_requests.c.id, _requests.c.title_ids)):
        if not title_ids:
            continue
        studios = bind.execute(
            sa.select(_titles.c.studio_id).where(_titles.c.id.in_(title_ids)).distinct()
        ).scalars()
        rows = [{"request_id": request_id, "studio_id": s} for s in sorted(studios)]
        if rows:
            op.bulk_insert(links, rows)


def downgrade() -> None:
    op.drop_index(
        "ix_license_request_studios_studio_id_request_id", table_name="license_request_studios"
    )
    op.drop_table("license_request_studios")
