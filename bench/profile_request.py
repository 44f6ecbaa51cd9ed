"""Where an authenticated GET spends its time, in process, beside the bare Flask route.

`python -m bench.profile_request [sqlite|postgresql] [--cprofile]`: builds the real app (as
wsgi.py does, from the environment's settings with the bench's overrides) on a fresh database,
calls the WSGI app directly (no HTTP, no load generator) and prints:
- CPU microseconds per request (the best of five runs) for the bare route and for
  GET /api/v1/me, as deployed (access log at INFO into a null stream, rate limiter in memory);
- per step, the CPU microseconds spent inside each lifecycle function (inclusive: authenticate is
  inside _begin), timed by wrapping them;
- with --cprofile, the top functions by cumulative and by own time.
"""

from __future__ import annotations

import contextlib
import cProfile
import functools
import io
import logging
import os
import pstats
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from werkzeug.test import EnvironBuilder

SECRET = "bench-secret-key-0123456789abcdefghijkl"
REQUESTS = int(os.environ.get("BENCH_PROFILE_REQUESTS", "3000"))


def _call(app: Any, environ: dict[str, Any]) -> int:
    status: list[str] = []

    def start_response(s: str, headers: Any, exc_info: Any = None) -> None:
        status.append(s)

    body = app(dict(environ), start_response)
    try:
        for _ in body:
            pass
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()
    return int(status[0].split()[0])


def _per_request_us(app: Any, environ: dict[str, Any], n: int) -> float:
    for _ in range(200):
        _call(app, environ)
    best = float("inf")
    for _ in range(5):  # CPU time, the best of five: the machine is shared
        started = time.process_time()
        for _ in range(n):
            if _call(app, environ) != 200:
                raise SystemExit("a request failed")
        best = min(best, (time.process_time() - started) / n * 1e6)
    return best


@contextlib.contextmanager
def _timed(
    targets: list[tuple[Any, str, str]], hooks: list[list[Any]]
) -> Iterator[dict[str, list[float]]]:
    """Wrap each (owner, attribute) with a timer; yield the label -> durations map."""
    spent: dict[str, list[float]] = defaultdict(list)
    saved = []
    for owner, attr, label in targets:
        original = getattr(owner, attr)

        def wrapper(*a: Any, __f: Callable[..., Any] = original, __l: str = label, **k: Any) -> Any:
            started = time.thread_time()
            try:
                return __f(*a, **k)
            finally:
                spent[__l].append(time.thread_time() - started)

        functools.update_wrapper(wrapper, original)
        saved.append((owner, attr, original, wrapper))
        setattr(owner, attr, wrapper)
        _swap_hooks(hooks, original, wrapper)
    try:
        yield spent
    finally:
        for owner, attr, original, wrapper in reversed(saved):
            setattr(owner, attr, original)
            _swap_hooks(hooks, wrapper, original)


def _swap_hooks(hooks: list[list[Any]], old: Any, new: Any) -> None:
    # Flask holds its hooks by reference: replacing the module's name is not enough.
    for functions in hooks:
        functions[:] = [new if f is old else f for f in functions]


def _database(kind: str, stack: contextlib.ExitStack) -> str:
    if kind == "postgresql":
        from bench.servers import postgres_database

        return stack.enter_context(postgres_database())
    tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="clearcut-profile-"))
    return f"sqlite:///{Path(tmp) / 'profile.db'}"


def main() -> None:
    kind = next((a for a in sys.argv[1:] if not a.startswith("-")), "sqlite")
    with contextlib.ExitStack() as stack:
        url = _database(kind, stack)
        from marketplace import migrations
        from marketplace.core.db import make_engine, make_session_factory
        from marketplace.dev.demo import seed_demo_accounts

        migrations.upgrade(url)
        engine = make_engine(url)
        with make_session_factory(engine)() as session, session.begin():
            key = seed_demo_accounts(session, secret_key=SECRET)[1].api_key
        engine.dispose()
        os.environ.update(
            {
                "DATABASE_URL": url,
                "SECRET_KEY": SECRET,
                "S3_ENDPOINT_URL": "http://127.0.0.1:9",
                "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
                # The limiter counts every request, as deployed, but never refuses one here.
                "RATE_LIMIT_PER_MINUTE": os.environ.get("RATE_LIMIT_PER_MINUTE", "1000000000"),
            }
        )
        from bench.bare_app import app as bare
        from marketplace.app import create_app

        app = create_app()
        # The access log is written, as deployed, but to nowhere: the figure is ours, not the
        # terminal's.
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(stack.enter_context(open(os.devnull, "w")))  # noqa: SIM115
        bare_env = EnvironBuilder(path="/bare").get_environ()
        me_env = EnvironBuilder(
            path="/api/v1/me", headers={"Authorization": f"Bearer {key}"}
        ).get_environ()
        assert _call(app, me_env) == 200, "GET /me failed"
        bare_us = _per_request_us(bare, bare_env, REQUESTS)
        me_us = _per_request_us(app, me_env, REQUESTS)
        print(f"{kind}: bare {bare_us:.0f} us, GET /me {me_us:.0f} us, ratio {bare_us / me_us:.3f}")
        _steps(app, me_env)
        if "--cprofile" in sys.argv:
            profile = cProfile.Profile()
            profile.enable()
            for _ in range(REQUESTS):
                _call(app, me_env)
            profile.disable()
            out = io.StringIO()
            stats = pstats.Stats(profile, stream=out).strip_dirs()
            stats.sort_stats("cumulative").print_stats(45)
            stats.sort_stats("tottime").print_stats(30)
            print(out.getvalue())


def _steps(app: Any, environ: dict[str, Any]) -> None:
    from marketplace.accounts import schemas as account_schemas
    from marketplace.accounts import service as account_service
    from marketplace.core import metrics, runtime, web

    app_state = app.extensions["clearcut"]
    targets: list[tuple[Any, str, str]] = [
        (web, "_begin", "before_request (_begin)"),
        (app_state, "authenticate", "  authenticate (key lookup, hash, last_used)"),
        (runtime.Runtime, "unit_of_work", "  unit_of_work (session created)"),
        (web, "_rate_limit", "  rate limit"),
        (account_service, "get_user", "view: get_user"),
        (account_schemas.MeSchema, "dump", "  MeSchema.dump"),
        (web, "_finish", "after_request (_finish)"),
        (runtime.UnitOfWork, "commit", "  commit"),
        (runtime.UnitOfWork, "close", "  session close (connection returned)"),
        (web, "_observe", "  _observe (metrics + access log)"),
        (metrics, "observe_request", "    prometheus"),
        (web.log, "info", "    access log line"),
        (web, "_teardown", "teardown"),
    ]
    targets = [t for t in targets if hasattr(t[0], t[1])]
    n = max(500, REQUESTS // 3)
    hooks = [
        app.before_request_funcs[None],
        app.after_request_funcs[None],
        app.teardown_request_funcs[None],
    ]
    with _timed(targets, hooks) as spent:
        started = time.thread_time()
        for _ in range(n):
            _call(app, environ)
        total = (time.thread_time() - started) / n * 1e6
    print(f"per step, inclusive, us per request (timers on; total {total:.0f} us):")
    for _, _, label in targets:
        values = spent.get(label, [])
        print(f"  {label:<48} {sum(values) / n * 1e6:8.1f}  ({len(values) / n:.1f} calls)")


if __name__ == "__main__":
    main()
