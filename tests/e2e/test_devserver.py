"""`marketplace dev` takes its own port before the servers it starts take theirs."""

from __future__ import annotations

import signal
import socket
from pathlib import Path
from typing import Any

import pytest

from marketplace.dev import run as devserver
from marketplace.dev import servers as devstack


def test_a_taken_port_stops_dev_before_any_server_starts(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[str] = []
    monkeypatch.setattr(devstack.SeaweedFS, "start", lambda self: started.append("seaweedfs"))
    monkeypatch.setattr(devstack.LocalStripe, "start", lambda self: started.append("stripe"))
    monkeypatch.setattr(devserver.signal, "signal", lambda *args: signal.SIG_DFL)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit) as exited:  # werkzeug names the port and exits 1
            devserver.run_dev(settings, host="127.0.0.1", port=port)
    assert exited.value.code == 1
    assert started == []


def test_the_port_is_held_while_the_servers_start(
    settings: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The kernel hands out free ports: the API's, bound before the servers start, is not one.
    seen: dict[str, bool] = {}

    def start(self: Any) -> None:
        seen["api port taken"] = not _bindable(port)
        raise SystemExit(0)  # enough: stop before anything real starts

    monkeypatch.setattr(devstack.SeaweedFS, "start", start)
    monkeypatch.setattr(devserver.signal, "signal", lambda *args: signal.SIG_DFL)
    monkeypatch.setattr(devserver, "INSTANCE_DIR", tmp_path)
    port = devstack.free_port()
    with pytest.raises(SystemExit):
        devserver.run_dev(
            settings.with_overrides(s3_endpoint_url=None), host="127.0.0.1", port=port
        )
    assert seen == {"api port taken": True}
    assert _bindable(port)  # and given back when dev stops


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
