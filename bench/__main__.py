"""Run every benchmark and print one JSON document (figures beside same-run baselines)."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.http_load import run_load

ROOT = Path(__file__).resolve().parent.parent
DURATION = float(os.environ.get("BENCH_SECONDS", "5"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "4"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def gunicorn(app: str, env: dict[str, str]) -> Iterator[int]:
    port = free_port()
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
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(15)


def bench_auth_route(workdir: Path) -> dict[str, Any]:
    """GET /api/v1/me (key lookup + one query) against a bare Flask route, both under gunicorn."""
    from marketplace import migrations
    from marketplace.core.db import make_engine, make_session_factory
    from marketplace.demo import seed_demo_accounts

    url = f"sqlite:///{workdir / 'bench.db'}"
    migrations.upgrade(url)
    secret = "bench-secret-key-0123456789abcdefghijkl"
    factory = make_session_factory(make_engine(url))
    with factory() as session, session.begin():
        key = seed_demo_accounts(session, secret_key=secret)[1].api_key
    env = {
        "DATABASE_URL": url,
        "SECRET_KEY": secret,
        "LOG_LEVEL": "WARNING",
        "S3_ENDPOINT_URL": "http://127.0.0.1:9",
    }
    with gunicorn("bench.bare_app:app", env) as port:
        run_load(port, "/bare", clients=CLIENTS, duration=1)  # warm-up
        bare = run_load(port, "/bare", clients=CLIENTS, duration=DURATION)
    with gunicorn("wsgi:app", env) as port:
        headers = {"Authorization": f"Bearer {key}"}
        run_load(port, "/api/v1/me", headers=headers, clients=CLIENTS, duration=1)
        me = run_load(port, "/api/v1/me", headers=headers, clients=CLIENTS, duration=DURATION)
    return {
        "baseline_bare_flask_route": bare.as_dict(),
        "get_me": me.as_dict(),
        "ratio_rps_me_to_bare": round(me.rps / bare.rps, 3) if bare.rps else None,
        "server": "gunicorn, 2 gthread workers x 4 threads, SQLite",
    }


def main() -> None:
    results: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "settings": {"seconds_per_figure": DURATION, "client_processes": CLIENTS},
    }
    with tempfile.TemporaryDirectory() as tmp:
        results["auth_route"] = bench_auth_route(Path(tmp))
    json.dump(results, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
