"""The `marketplace` command: serve, dev, db, bootstrap-operator, catalog, audit verify."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from clearcut_client.cli import attest_command, pull_command
from config import ConfigurationError, Settings, load_settings

if TYPE_CHECKING:
    from marketplace.core.runtime import Runtime


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from None


@contextlib.contextmanager
def _runtime(
    settings: Settings | None = None, *, statement_timeout: float | None = None
) -> Iterator[Runtime]:
    """The runtime every command works with, built as the web app's is (marketplace.bootstrap);
    its engine is disposed afterwards: a CLI run leaves no connection behind."""
    from marketplace.bootstrap import build_runtime

    # Unbounded statements: a command runs as long as its work needs (an import of millions of
    # records), unlike an API request (DATABASE_STATEMENT_TIMEOUT_MS).
    runtime = build_runtime(settings or _settings(), statement_timeout=statement_timeout)
    try:
        yield runtime
    finally:
        runtime.dispose()


@click.group()
def main() -> None:
    """Clearcut: license film and TV libraries as AI training data."""


# The client's commands: HTTP only, no database (clearcut_client imports no server code).
main.add_command(pull_command)
main.add_command(attest_command)


@main.group()
def db() -> None:
    """Database schema migrations."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations to DATABASE_URL."""
    from marketplace import migrations

    settings = _settings()
    _ensure_sqlite_dir(settings.database_url)
    migrations.upgrade(settings.database_url, revision)
    click.echo(f"database at {revision}")


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION ('base' empties the database)."""
    from marketplace import migrations

    migrations.downgrade(_settings().database_url, revision)
    click.echo(f"database at {revision}")


@db.command("check")
def db_check() -> None:
    """Fail when the models and the migrations differ."""
    from marketplace import migrations

    migrations.check(_settings().database_url)
    click.echo("no drift between models and migrations")


@main.command("bootstrap-operator")
@click.option("--email", required=True, help="Email of the first operator user.")
@click.option("--org-name", default="Clearcut Operations", show_default=True)
def bootstrap_operator(email: str, org_name: str) -> None:
    """Create the first operator organization and user; print the new API key last."""
    from marketplace.accounts.service import bootstrap_operator as bootstrap
    from marketplace.core.errors import DomainError

    with _runtime() as runtime:
        try:
            with runtime.unit_of_work() as uow:
                user, raw = bootstrap(uow.session, email=email, org_name=org_name)
        except DomainError as exc:
            raise click.ClickException(exc.detail) from None
    click.echo(f"operator {user.email} ({user.id}) in organization {user.organization_id}")
    click.echo("API key (shown once):", err=True)
    click.echo(raw)


@main.group()
def catalog() -> None:
    """Studio catalogs: bulk import, synthetic catalogs, the search index."""


class _ImportProgress:
    """One progress bar per phase of an import (bytes checked, then records written)."""

    def __init__(self) -> None:
        self._phase: str | None = None
        self._bar: Any = None

    def __call__(self, phase: str, advance: int, total: int) -> None:
        if phase != self._phase:
            self.close()
            label = "checking" if phase == "check" else "writing "
            self._bar = click.progressbar(length=max(total, 1), label=label, file=sys.stderr)
            self._bar.__enter__()
            self._phase = phase
        self._bar.update(advance)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None


@catalog.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--studio", "studio_id", required=True, help="The studio's organization id.")
def catalog_import(file: Path, studio_id: str) -> None:
    """Import a CSV or JSON Lines FILE into a studio's catalog: all or nothing.

    Exits 1 with every bad row, having written nothing, if any row is bad.
    """
    from catalog.imports.service import import_catalog
    from marketplace.core.errors import DomainError

    progress = _ImportProgress()
    with _runtime() as runtime, file.open("rb") as stream:
        uow = runtime.unit_of_work()
        try:
            # No principal: whoever runs the CLI on the server is trusted; the audit event
            # records the import without a user.
            job = import_catalog(
                uow.session,
                None,
                stream,
                studio_id=studio_id,
                filename=file.name,
                progress=progress,
            )
            if job.status == "succeeded":
                uow.commit()
            else:
                uow.rollback()  # nothing is kept of a failed run, not even its report
        except DomainError as exc:
            raise click.ClickException(exc.detail) from None
        finally:
            progress.close()
            uow.close()
        if job.status != "succeeded":
            _print_import_errors(job)
            sys.exit(1)
    click.echo(f"import {job.id} succeeded: {job.rows_total} records")
    for kind, counts in job.summary["results"].items():
        click.echo(
            f"  {kind:<8} {counts['created']} created, {counts['updated']} updated, "
            f"{counts['unchanged']} unchanged"
        )


def _print_import_errors(job: Any) -> None:
    total = job.summary["errors_total"]
    click.echo(
        f"import failed: {job.rows_total - job.rows_ok} of {job.rows_total} records are bad "
        f"({total} errors); nothing was written",
        err=True,
    )
    for error in job.errors:
        where = f"row {error['row']}" + (f", {error['field']}" if error["field"] else "")
        click.echo(f"  {where}: {error['message']}", err=True)
    if total > len(job.errors):
        click.echo(f"  ... and {total - len(job.errors)} more", err=True)


@catalog.command("reindex")
def catalog_reindex() -> None:
    """Rebuild the titles' full-text index (SQLite, after a VACUUM); on PostgreSQL, merge
    the GIN indexes' pending entries."""
    from catalog.search.index import reindex_titles, settle_title_index

    with _runtime() as runtime, runtime.unit_of_work() as uow:
        count = reindex_titles(uow.session)
        merged = settle_title_index(uow.session)
    if count is not None:
        click.echo(f"full-text index rebuilt for {count} titles")
    else:
        click.echo(
            "PostgreSQL computes each title's vector itself: nothing to rebuild;"
            f" {merged} pending index pages merged"
        )


@catalog.command("generate")
@click.option("--titles", type=click.IntRange(min=0), default=100, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="File to write (default: standard output).",
)
def catalog_generate(titles: int, seed: int, output: Path | None) -> None:
    """Write a synthetic catalog in the import format (JSON Lines), the same for a seed."""
    from catalog.imports.generate import generate_catalog, write_jsonl

    if output is None:
        write_jsonl(generate_catalog(titles, seed), sys.stdout)
        return
    with output.open("w", encoding="utf-8") as out:
        count = write_jsonl(generate_catalog(titles, seed), out)
    click.echo(f"wrote {count} records ({titles} titles) to {output}", err=True)


@catalog.command("verify-assets")
@click.option(
    "--asset",
    "asset_ids",
    multiple=True,
    metavar="ID",
    help="Check this asset (repeatable), even if checked before. Default: every ready asset "
    "whose SHA-256 has not been checked.",
)
@click.option("--limit", type=click.IntRange(min=1), help="Check at most this many assets.")
def catalog_verify_assets(asset_ids: tuple[str, ...], limit: int | None) -> None:
    """Read assets back from the store and check their whole SHA-256.

    For assets uploaded in parts, whose whole-object SHA-256 the store does not keep. An asset
    whose stored bytes are not the declared ones goes back to pending (out of delivery) until
    its studio uploads it again. Exits 1 if any did.
    """
    from catalog.checksums import assets_awaiting_verification, verify_asset
    from marketplace.core.storage import StorageUnavailable

    failed = 0
    with _runtime() as runtime:
        if asset_ids:
            ids = list(dict.fromkeys(asset_ids))[:limit]
        else:
            with runtime.unit_of_work(read_only=True) as uow:
                ids = assets_awaiting_verification(uow.session, limit=limit)
        for asset_id in ids:
            progress = _ReadProgress(asset_id)
            try:
                verdict = verify_asset(
                    runtime.unit_of_work, runtime.storage, asset_id, progress=progress
                )
            except StorageUnavailable as exc:
                raise click.ClickException(str(exc)) from None
            finally:
                progress.close()
            failed += verdict.failed
            click.echo(f"{asset_id} {_VERDICT_WORDS[verdict.outcome]}")
    click.echo(f"{len(ids)} assets checked, {failed} not as declared")
    if failed:
        sys.exit(1)


class _ReadProgress:
    """A progress bar over the bytes of one asset being read back."""

    def __init__(self, label: str) -> None:
        self._label = label
        self._bar: Any = None

    def __call__(self, advance: int, total: int) -> None:
        if self._bar is None:
            self._bar = click.progressbar(length=max(total, 1), label=self._label, file=sys.stderr)
            self._bar.__enter__()
        self._bar.update(advance)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None


_VERDICT_WORDS = {
    "verified": "verified: the stored bytes have the declared SHA-256",
    "mismatch": "NOT AS DECLARED: the stored bytes have another SHA-256 or size; "
    "back to pending until uploaded again",
    "missing": "MISSING from the store; back to pending until uploaded again",
    "changed": "changed while being read (re-imported, uploaded or deleted); left for next time",
    "not_ready": "skipped: not a ready asset",
}


@main.group()
def audit() -> None:
    """The audit log."""


@audit.command("verify")
@click.option(
    "--public-key",
    "public_key",
    type=click.Path(exists=True, dir_okay=False),
    help="Check signatures with this public key (PEM) instead of AUDIT_SIGNING_KEY_FILE; "
    "without the private key, a rewrite is named by batch, not by event.",
)
@click.option(
    "--heads",
    type=click.File("r"),
    help="Published heads kept earlier (JSON: a list, or a page of GET /audit/heads): each "
    "must still be in the log unchanged.",
)
def audit_verify(public_key: str | None, heads: Any) -> None:
    """Check every sealed event against the signed batch heads; exit 1 naming the first event
    edited, deleted, inserted or reordered."""
    import json

    from marketplace.audit.keys import AUDIT_KEYS, SigningKeyError, load_keys
    from marketplace.audit.sealing import verify_log

    published: list[dict[str, Any]] = []
    if heads is not None:
        document = json.load(heads)
        published = document["items"] if isinstance(document, dict) else document
    with _runtime() as runtime:
        try:
            keys = load_keys(public_key) if public_key else runtime.get(AUDIT_KEYS)
        except SigningKeyError as exc:
            raise click.ClickException(str(exc)) from None
        if keys is None:
            raise click.ClickException(
                "no audit key: set AUDIT_SIGNING_KEY_FILE or pass --public-key"
            )
        with runtime.unit_of_work(read_only=True) as uow:
            report = verify_log(uow.session, keys, published=published)
    if report.unsealed:
        click.echo(
            f"{report.unsealed} events not sealed yet (oldest {report.oldest_unsealed_id}, "
            f"at {report.oldest_unsealed_at}): not checked"
        )
    if not report.macs_checked:
        click.echo("public key only: a rewritten event is named by its batch", err=True)
    if report.ok:
        click.echo(
            f"audit log intact: {report.checked} sealed events verified "
            f"in {report.batches} signed batches"
        )
        return
    where = []
    if report.broken_seq is not None:
        where.append(f"event seq {report.broken_seq}")
    if report.broken_event_id:
        where.append(f"({report.broken_event_id})")
    if report.broken_batch is not None:
        where.append(f"in batch {report.broken_batch}")
    click.echo(f"audit log BROKEN at {' '.join(where)}: {report.reason}", err=True)
    click.echo(f"{report.checked} events verified before it", err=True)
    sys.exit(1)


@main.command("worker")
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=lambda: int(os.environ.get("WORKER_THREADS", "2")),
    show_default="2",
    help="Jobs run at once by this process.",
)
def worker(threads: int) -> None:
    """Run background jobs and schedules from QUEUE_URL until stopped (SIGINT: finish the jobs
    running; SIGTERM: stop now, another worker takes them over when their leases run out)."""
    from marketplace.core.logs import configure_logging
    from marketplace.worker.run import run_worker

    settings = _settings()
    configure_logging(settings.log_level, json_lines=settings.log_json)
    with _runtime(settings, statement_timeout=None) as runtime:
        run_worker(runtime, threads=threads)


@main.command("serve")
@click.option("--host", default="0.0.0.0", show_default=True)  # noqa: S104 - a server binds
@click.option(
    "--port", type=int, default=lambda: int(os.environ.get("PORT", "8000")), show_default="8000"
)
@click.option("--workers", type=int, default=lambda: int(os.environ.get("WEB_CONCURRENCY", "2")))
def serve(host: str, port: int, workers: int) -> None:
    """Serve the API with gunicorn (production WSGI server)."""
    _settings()  # fail fast on bad configuration, before forking workers
    from gunicorn.app.wsgiapp import run

    sys.argv = [
        "gunicorn",
        "--bind",
        f"{host}:{port}",
        "--workers",
        str(workers),
        "--access-logfile",
        "-",
        "--forwarded-allow-ips",
        os.environ.get("FORWARDED_ALLOW_IPS", ""),
        "wsgi:app",
    ]
    run()


@main.command("dev")
@click.option(
    "--port", type=int, default=lambda: int(os.environ.get("PORT", "8000")), show_default="8000"
)
@click.option("--host", default="127.0.0.1", show_default=True)
def dev(port: int, host: str) -> None:
    """Run the embedded stack: SQLite, a local SeaweedFS and localstripe, demo data, the API."""
    from marketplace.dev.run import run_dev

    run_dev(_settings(), host=host, port=port)


def _ensure_sqlite_dir(url: str) -> None:
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


if __name__ == "__main__":
    main()
