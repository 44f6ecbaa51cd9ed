"""Bulk import of a studio's catalog (JSON Lines or CSV), all or nothing: `service` runs it
(`parse` reads records, `check` validates the whole file, `stream` and `apply` write it through
`write`'s bulk writers), `routes` serves it over HTTP and `generate` writes synthetic catalogs."""
