"""Schemathesis over HTTP, every check, as each role, against the API served by gunicorn on
PostgreSQL with SeaweedFS as its object store: zero failures. Rules the OpenAPI document
cannot state are declared, each with its reason, in tests/schemathesis.toml (never a check
turned off). A fixed seed; a few minutes at most."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from marketplace.dev.servers import SeaweedFS, free_port
from tests.world import World

pytestmark = [
    pytest.mark.servers,
    pytest.mark.skipif(
        not os.environ.get("CLEARCUT_SCHEMATHESIS_HTTP"),
        reason="on demand (CLEARCUT_SCHEMATHESIS_HTTP=1) until its remaining failures are fixed: "
        "see docs/api-notes.md, 'The OpenAPI document'",
    ),
]
CONFIG = Path(__file__).resolve().parent.parent / "schemathesis.toml"
ROLES = ("operator", "studio_a", "developer_x")


@pytest.fixture
def served(dialect: str, database_url: str, seaweedfs: SeaweedFS, tmp_path: Path) -> Iterator[str]:
    if dialect != "postgresql":
        pytest.skip("the HTTP run is PostgreSQL's pass (gunicorn + PostgreSQL + SeaweedFS)")
    port = free_port()
    env = {
        **os.environ,
        "MARKETPLACE_ENV": "test",
        "DATABASE_URL": database_url,
        "SECRET_KEY": "schemathesis-secret-key-0123456789abcdef",
        "S3_ENDPOINT_URL": seaweedfs.endpoint_url,
        "S3_BUCKET": f"clearcut-st-{port}",
        "AWS_ACCESS_KEY_ID": seaweedfs.access_key,
        "AWS_SECRET_ACCESS_KEY": seaweedfs.secret_key,
        "QUEUE_URL": f"sqlite:///{tmp_path / 'queue.db'}",
        "RATE_LIMIT_PER_MINUTE": "0",
        "LOG_LEVEL": "WARNING",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "2",
         "--threads", "4", "wsgi:app"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2):  # noqa: S310
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.3)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()


@pytest.mark.committing
def test_every_operation_as_every_role_passes_every_check(
    served: str, committed_world: World, committing_engine: Any
) -> None:
    failures = []
    for role in ROLES:
        result = subprocess.run(
            [
                sys.executable, "-m", "schemathesis.cli",
                "--config-file", str(CONFIG),
                "run", f"{served}/api/v1/openapi.json",
                "--url", served,
                "--checks", "all",
                "-H", f"Authorization: Bearer {committed_world[role].key}",
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )  # fmt: skip
        report = os.environ.get("CLEARCUT_SCHEMATHESIS_REPORT")
        if report:
            Path(f"{report}.{role}.txt").write_text(result.stdout)
        if result.returncode != 0:
            failures.append(f"--- as {role}\n{result.stdout[-6000:]}")
    assert failures == [], "\n".join(failures)
