"""`make run`: the embedded stack in one process tree, stopped together on Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from config import Settings
from config.settings import INSTANCE_DIR


def _raise_exit(signum: int, frame: Any) -> NoReturn:
    raise SystemExit(128 + signum)


def run_dev(settings: Settings, *, host: str, port: int) -> None:
    """Start SeaweedFS and localstripe (unless configured elsewhere), migrate, seed, serve."""
    from werkzeug.serving import make_server

    from marketplace import migrations
    from marketplace.app import create_app
    from marketplace.audit.keys import write_new_key
    from marketplace.dev.servers import LocalStripe, SeaweedFS, configure_webhook, free_port

    signal.signal(signal.SIGTERM, _raise_exit)
    # Ctrl-C stops everything even when started in the background, where SIGINT is inherited
    # as ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
    # Bind the API's port first: taken, it fails now rather than after the servers start; held,
    # the kernel cannot hand it to one of theirs (they take free ports as they start). Requests
    # wait in the socket's backlog until the app below is ready.
    app_when_ready = _AppWhenReady()
    server = make_server(host, port, app_when_ready, threaded=True)
    with contextlib.ExitStack() as stack:
        stack.callback(server.server_close)
        overrides: dict[str, Any] = {}
        if settings.s3_endpoint_url is None:
            click.echo("starting SeaweedFS (S3) ...", err=True)
            weed = SeaweedFS(
                INSTANCE_DIR / "seaweedfs",
                s3_port=free_port(),
                access_key=settings.aws_access_key_id or "",
                secret_key=settings.aws_secret_access_key or "",
            )
            weed.start()
            # weed takes ~17 s to exit on SIGTERM; its data survives a kill, so don't wait.
            stack.callback(weed.stop, timeout=2)
            weed.wait_ready()
            overrides["s3_endpoint_url"] = weed.endpoint_url
        if settings.stripe_api_base is None:
            click.echo("starting localstripe ...", err=True)
            stripe = stack.enter_context(LocalStripe(state_dir=INSTANCE_DIR / "localstripe"))
            stripe.wait_ready()
            overrides["stripe_api_base"] = stripe.api_base
            # localstripe delivers payment events to our webhook, signed as Stripe signs them.
            configure_webhook(
                stripe.api_base,
                "clearcut-dev",
                f"http://127.0.0.1:{port}/api/v1/webhooks/stripe",
                settings.stripe_webhook_secret,
            )
        settings = settings.with_overrides(**overrides)

        if settings.database_url.startswith("sqlite:///"):
            Path(settings.database_url.removeprefix("sqlite:///")).parent.mkdir(
                parents=True, exist_ok=True
            )
        migrations.upgrade(settings.database_url)
        if settings.audit_signing_key_file:
            # The audit log's signing key, kept beside the database but never in it.
            write_new_key(settings.audit_signing_key_file)
        app = create_app(settings)
        accounts = _seed(app)
        click.echo("starting a worker (background jobs and schedules) ...", err=True)
        stack.enter_context(_worker_process(settings))
        app_when_ready.app = app
        _print_banner(settings, host, port, accounts)
        server.serve_forever()


@contextlib.contextmanager
def _worker_process(settings: Settings) -> Any:
    """`marketplace worker` as a child process on the same settings, stopped with the API:
    SIGTERM, then SIGKILL if it has not exited (its jobs' leases hand them on)."""
    env = {
        **os.environ,
        "MARKETPLACE_ENV": settings.env,
        "DATABASE_URL": settings.database_url,
        "S3_ENDPOINT_URL": settings.s3_endpoint_url or "",
        "S3_BUCKET": settings.s3_bucket,
        "STRIPE_API_BASE": settings.stripe_api_base or "",
        "QUEUE_URL": settings.queue_url,
        "AUDIT_SIGNING_KEY_FILE": settings.audit_signing_key_file or "",
    }
    process = subprocess.Popen(  # noqa: S603 - our own command, no shell
        [sys.executable, "-m", "marketplace.cli", "worker", "--threads", "2"], env=env
    )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class _AppWhenReady:
    """The WSGI app, set once the local servers run and the database is migrated and seeded."""

    app: Any = None

    def __call__(self, environ: Any, start_response: Any) -> Any:
        return self.app(environ, start_response)


def _seed(app: Any) -> list[Any]:
    from marketplace.dev.demo import seed_demo_accounts, seed_demo_catalog

    runtime = app.extensions["clearcut"].runtime  # the app's own: the same rules and stores
    runtime.storage.ensure_bucket()
    with runtime.unit_of_work() as uow:
        accounts = seed_demo_accounts(uow.session, secret_key=runtime.settings.secret_key)
    click.echo("importing the demo studios' catalogs ...", err=True)
    with runtime.unit_of_work() as uow:
        seed_demo_catalog(uow.session, runtime.storage, accounts)
    return accounts


def _print_banner(settings: Settings, host: str, port: int, accounts: list[Any]) -> None:
    out = sys.stdout
    out.write("\nClearcut is running (embedded stack)\n")
    out.write(
        f"  API        http://{host}:{port}/api/v1   docs: http://{host}:{port}/api/v1/docs\n"
    )
    out.write(f"  database   {settings.database_url}\n")
    out.write(f"  S3         {settings.s3_endpoint_url}  bucket {settings.s3_bucket}\n")
    out.write(f"  Stripe     {settings.stripe_api_base}\n\n")
    out.write("Demo accounts (development keys, stable across restarts):\n")
    for seeded in accounts:
        out.write(
            f"  {seeded.account.kind:<9} {seeded.account.org_name:<24} "
            f"{seeded.organization_id}  {seeded.account.email}\n"
            f"            export {_env_name(seeded.account)}={seeded.api_key}\n"
        )
    if settings.stripe_api_base:
        out.write("Stripe emulator (the walkthrough pays there as Stripe.js would):\n")
        out.write(f"            export LOCALSTRIPE={settings.stripe_api_base}\n")
    out.write("\nA whole deal with curl: scripts/walkthrough.sh (see the README).\n")
    out.write("Press Ctrl-C to stop every server.\n\n")
    out.flush()


def _env_name(account: Any) -> str:
    word = account.org_name.split()[0].upper()
    return f"{account.kind.upper()}_{word}_KEY" if account.kind != "operator" else "OPERATOR_KEY"
