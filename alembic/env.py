"""Alembic environment: every domain's models, the URL from config, batch mode for SQLite."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Connection

from config import load_settings
from marketplace.core.db import UTCDateTime, make_engine
from marketplace.models import metadata

config = context.config

# Objects the database has but the models do not describe on purpose (full-text indexes).
UNMODELLED = ("_fts",)
# PostgreSQL's generated tsvector column (alembic/versions/*_0005_search.py): the ORM never
# reads or writes it, so the models leave it out.
UNMODELLED_COLUMNS = frozenset({("titles", "search_vector")})


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    if type_ == "table" and name and any(marker in name for marker in UNMODELLED):
        return False
    if type_ == "column" and (parent_names.get("table_name"), name) in UNMODELLED_COLUMNS:
        return False
    return not (type_ == "index" and name and name.startswith("ix_fts_"))


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    # Migrations never import the app: render our TypeDecorators as their plain types.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_with(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,
        compare_type=True,
        include_name=include_name,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_with(connection)
        return
    url = config.get_main_option("sqlalchemy.url") or load_settings().database_url
    engine = make_engine(url)
    with engine.connect() as connection:
        run_with(connection)
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run against a database")
run_online()
