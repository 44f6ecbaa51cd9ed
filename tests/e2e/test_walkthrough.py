"""The README's walkthrough, run as a user would: `marketplace dev`, then scripts/walkthrough.sh.

The embedded stack is SQLite with its own SeaweedFS and localstripe, whatever database the
suite runs on, so this runs in the SQLite pass only. It needs curl and jq, as the README says.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from marketplace.dev.servers import free_port

pytestmark = [pytest.mark.servers]

ROOT = Path(__file__).resolve().parents[2]
START_SECONDS = 120
EXPORT = re.compile(r"export ([A-Z_]+)=(\S+)")


@pytest.fixture
def dev_stack(tmp_path: Path) -> Iterator[tuple[int, dict[str, str], list[str]]]:
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "S3_ENDPOINT_URL", "STRIPE_API_BASE", "MARKETPLACE_ENV"}
    }
    env |= {"PORT": str(port), "CLEARCUT_INSTANCE_DIR": str(tmp_path / "instance")}
    marketplace = Path(sys.executable).with_name("marketplace")
    proc = subprocess.Popen(
        [str(marketplace), "dev"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    # A thread reads the output: lines already in the reader's buffer are invisible to select().
    output: queue.Queue[str] = queue.Queue()

    def read(stream: IO[str]) -> None:
        for line in stream:
            output.put(line)

    reader = threading.Thread(target=read, args=(proc.stdout,), daemon=True)
    reader.start()
    lines: list[str] = []
    exports: dict[str, str] = {}
    deadline = time.monotonic() + START_SECONDS
    try:
        while not any("Press Ctrl-C" in line for line in lines):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise AssertionError("marketplace dev did not start:\n" + "".join(lines[-30:]))
            with contextlib.suppress(queue.Empty):
                line = output.get(timeout=1)
                lines.append(line)
                if match := EXPORT.search(line):
                    exports[match[1]] = match[2]
        yield port, exports, lines
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError("Ctrl-C did not stop marketplace dev within 30 s") from None
        finally:
            reader.join(timeout=10)
            proc.stdout.close()


@pytest.mark.skipif(
    bool(os.environ.get("TEST_DATABASE_URL")), reason="the embedded stack is SQLite's pass"
)
@pytest.mark.skipif(
    shutil.which("curl") is None or shutil.which("jq") is None, reason="needs curl and jq"
)
def test_the_readme_walkthrough_makes_a_whole_deal(
    dev_stack: tuple[int, dict[str, str], list[str]],
) -> None:
    port, exports, _ = dev_stack
    assert {"OPERATOR_KEY", "STUDIO_NORTHLIGHT_KEY", "DEVELOPER_LUMEN_KEY", "LOCALSTRIPE"} <= set(
        exports
    )
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "walkthrough.sh")],
        env={**os.environ, **exports, "API": f"http://127.0.0.1:{port}/api/v1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert '"cleared":["ttl_' in output
    assert '"status":"signed"' in output
    assert "contract status: active" in output
    assert "identical to the upload" in output
    assert '"downloads_used":3,"downloads_quota":3' in output
    resumed = re.search(r"downloaded (\d+) bytes \(resumed after (\d+)\)", output)
    assert resumed is not None, output
    size, have = (int(n) for n in resumed.groups())
    # Three whole copies; the resumed rest was counted by the first and not again.
    assert 0 < have < size and f'"bytes_used":{3 * size},' in output
    assert '"status":429,"code":"quota_exceeded"' in output
    assert "contract.activated" in output
