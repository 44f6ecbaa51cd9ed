"""Searching the catalog: `query` builds and runs a page of titles for a viewer, `index` keeps
the full-text indexes (FTS5 on SQLite, tsvector on PostgreSQL), `routes` serves `GET /titles`."""
