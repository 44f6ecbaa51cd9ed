"""`make bench`: every benchmark, one JSON document, each figure beside a same-run baseline.

Sections (BENCH_ONLY=auth,import,search,readback,audit picks some; all by default):
- `auth_route`: GET /api/v1/me (key lookup + one query) beside a bare Flask route, both under
  gunicorn, on SQLite and on PostgreSQL, from BENCH_AUTH_CLIENTS clients (default 16), as
  deployed: the rate limiter counts every request (its limit set out of reach) and the JSON
  access log is written (to a file). `python -m bench.profile_request` breaks one request down.
- `import`: the bulk import of a synthetic catalog beside a bare COPY / executemany of the same
  rows (bench/import_bench.py).
- `search`: full text + 2 filters, first page and page 200, beside the raw SQL query and the bare
  route (bench/search_bench.py).
- `audit`: audited writes without the shared lock beside the old lock and a bare INSERT; the
  sealer keeping up with 1,000 events/s; `audit verify` beside hashing the same events
  (bench/audit_bench.py; PostgreSQL).
- `readback`: reading an asset back from the store and hashing it, as `marketplace catalog
  verify-assets` does, beside plain boto3 and hashing in memory (bench/readback_bench.py).

BENCH_TITLES sets the catalog size for import and search (default 100,000 titles, about
1,000,000 assets); BENCH_SECONDS the seconds per timed figure; BENCH_CLIENTS the load clients.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.http_load import run_load
from bench.servers import free_port, gunicorn, on_postgres

__all__ = ["free_port", "gunicorn", "main"]

DURATION = float(os.environ.get("BENCH_SECONDS", "5"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "4"))
# Issue 13's goal for GET /me is set under 16 concurrent clients.
AUTH_CLIENTS = int(os.environ.get("BENCH_AUTH_CLIENTS", "16"))
TITLES = int(os.environ.get("BENCH_TITLES", "100000"))
# BENCH_AUTH_DATABASES=sqlite (or postgresql) runs the auth section on one database only.
AUTH_DATABASES = frozenset(
    os.environ.get("BENCH_AUTH_DATABASES", "sqlite,postgresql").replace(" ", "").split(",")
)
SECTIONS = ("auth", "import", "search", "readback", "audit")


def bench_auth_route(url: str, logs: Path) -> dict[str, Any]:
    """GET /api/v1/me (key lookup + one query) against a bare Flask route, both under gunicorn."""
    from marketplace import migrations
    from marketplace.core.db import make_engine, make_session_factory
    from marketplace.dev.demo import seed_demo_accounts

    migrations.upgrade(url)
    secret = "bench-secret-key-0123456789abcdefghijkl"
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session, session.begin():
            key = seed_demo_accounts(session, secret_key=secret)[1].api_key
    finally:
        engine.dispose()
    env = {
        "DATABASE_URL": url,
        "SECRET_KEY": secret,
        "LOG_LEVEL": "INFO",
        "S3_ENDPOINT_URL": "http://127.0.0.1:9",
        # Counted as deployed, never refused: the figure is the lifecycle's, not a 429's.
        "RATE_LIMIT_PER_MINUTE": "1000000000",
    }
    clients = AUTH_CLIENTS
    with gunicorn("bench.bare_app:app", env) as port:
        run_load(port, "/bare", clients=clients, duration=1)  # warm-up
        bare = run_load(port, "/bare", clients=clients, duration=DURATION)
    with gunicorn("wsgi:app", env, stderr=logs) as port:
        headers = {"Authorization": f"Bearer {key}"}
        run_load(port, "/api/v1/me", headers=headers, clients=clients, duration=1)
        me = run_load(port, "/api/v1/me", headers=headers, clients=clients, duration=DURATION)
    return {
        "clients": clients,
        "baseline_bare_flask_route": bare.as_dict(),
        "get_me": me.as_dict(),
        "ratio_rps_me_to_bare": round(me.rps / bare.rps, 3) if bare.rps else None,
    }


def auth_section(workdir: Path) -> dict[str, Any]:

    logs = workdir / "access.log"
    section: dict[str, Any] = {
        "server": "gunicorn, 2 gthread workers x 4 threads",
        "goal_ratio_rps_me_to_bare": 0.45,
    }
    if "sqlite" in AUTH_DATABASES:
        section["sqlite"] = bench_auth_route(f"sqlite:///{workdir / 'auth-bench.db'}", logs)
    if "postgresql" in AUTH_DATABASES:
        section["postgresql"] = on_postgres(lambda url: bench_auth_route(url, logs))
    return section


def main() -> None:
    wanted = [s for s in os.environ.get("BENCH_ONLY", ",".join(SECTIONS)).split(",") if s]
    unknown = sorted(set(wanted) - set(SECTIONS))
    if unknown:
        raise SystemExit(f"BENCH_ONLY: unknown section(s) {unknown}; known: {list(SECTIONS)}")
    results: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        },
        "settings": {
            "seconds_per_figure": DURATION,
            "client_processes": CLIENTS,
            "auth_client_processes": AUTH_CLIENTS,
            "catalog_titles": TITLES,
        },
    }
    with tempfile.TemporaryDirectory(prefix="clearcut-bench-") as tmp:
        for name in wanted:
            started = time.perf_counter()
            print(f"bench: {name} ...", file=sys.stderr, flush=True)
            workdir = Path(tmp) / name
            workdir.mkdir()
            if name == "auth":
                results["auth_route"] = auth_section(workdir)
            elif name == "import":
                from bench import import_bench

                results["import"] = import_bench.run(workdir, titles=TITLES)
            elif name == "search":
                from bench import search_bench

                results["search"] = search_bench.run(workdir, titles=TITLES)
            elif name == "audit":
                from bench import audit_bench

                results["audit"] = audit_bench.run()
            else:
                from bench import readback_bench

                results["readback"] = readback_bench.run(workdir)
            print(
                f"bench: {name} done in {time.perf_counter() - started:.0f} s",
                file=sys.stderr,
                flush=True,
            )
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    json.dump(results, sys.stdout, indent=2)
    sys.stdout.write("\n")
    if "search" in results:
        from bench import search_bench

        failures = search_bench.sweep_failures(results["search"])
        if failures:
            print("bench: search sweep over its goal: " + "; ".join(failures), file=sys.stderr)
            raise SystemExit(1)


if __name__ == "__main__":
    main()
