"""What benchmarks stand on: free ports, a gunicorn server, a throwaway PostgreSQL database."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_ADMIN_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def gunicorn(app: str, env: dict[str, str], *, stderr: Path | None = None) -> Iterator[int]:
    """Serve `app` under gunicorn (2 gthread workers x 4 threads, as deployed); yield its port.

    `stderr`: a file for the server's log lines (the access log), instead of the bench's own."""
    port = free_port()
    log = stderr.open("ab") if stderr is not None else None
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--worker-class",
            "gthread",
            "--threads",
            "4",
            "--log-level",
            "warning",
            app,
        ],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if proc.poll() is not None:
                raise RuntimeError(f"gunicorn {app} exited with {proc.returncode}")
            time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(15)
        if log is not None:
            log.close()


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh database on the PostgreSQL server of BENCH_POSTGRES_URL, dropped afterwards.

    Raises sqlalchemy.exc.OperationalError when the server does not answer.
    """
    from sqlalchemy import create_engine, make_url, text

    name = f"clearcut_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield (
                make_url(POSTGRES_ADMIN_URL)
                .set(database=name)
                .render_as_string(hide_password=False)
            )
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def on_postgres(bench: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
    """Run `bench` on a fresh PostgreSQL database; say so instead when none answers."""
    from sqlalchemy.exc import OperationalError

    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(postgres_database())
        except OperationalError as exc:
            return {"skipped": f"PostgreSQL unreachable: {exc.orig}"}
        return bench(url)
