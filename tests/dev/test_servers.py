"""The local servers: localstripe serves the Stripe library, instances stay apart, stop is clean."""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import stripe

from marketplace.dev.servers import (
    DevServerError,
    LocalStripe,
    SeaweedFS,
    configure_webhook,
    port_is_listening,
)

pytestmark = pytest.mark.servers

SHARED_PICKLE = Path("/tmp/localstripe.pickle")  # noqa: S108 - localstripe's own default


def _client(server: LocalStripe) -> stripe.StripeClient:
    return stripe.StripeClient("sk_test_x", base_addresses={"api": server.api_base})


def _stat_or_none(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_mtime_ns, stat.st_size


@pytest.fixture
def second_localstripe(tmp_path: Path) -> Iterator[LocalStripe]:
    with LocalStripe(state_dir=tmp_path / "localstripe") as server:
        yield server


def test_localstripe_serves_the_official_stripe_library(localstripe: LocalStripe) -> None:
    client = _client(localstripe)

    # stripe 16's typed params no longer list `payment_method_types`; localstripe needs it.
    created = client.v1.payment_intents.create(
        params={"amount": 4200, "currency": "eur", "payment_method_types": ["card"]}  # type: ignore[typeddict-unknown-key]
    )
    fetched = client.v1.payment_intents.retrieve(created.id)

    assert fetched.id == created.id
    assert (fetched.amount, fetched.currency) == (4200, "eur")
    assert fetched.status == "requires_payment_method"


def test_two_localstripes_keep_separate_stores(
    localstripe: LocalStripe, second_localstripe: LocalStripe
) -> None:
    shared_before = _stat_or_none(SHARED_PICKLE)

    customer = _client(localstripe).v1.customers.create(params={"email": "a@example.com"})

    with pytest.raises(stripe.InvalidRequestError) as raised:
        _client(second_localstripe).v1.customers.retrieve(customer.id)
    assert raised.value.http_status == 404
    assert _client(localstripe).v1.customers.retrieve(customer.id).email == "a@example.com"
    # Each store lives in its instance's own directory; the machine-wide file is untouched.
    assert localstripe.store_path.is_file()
    assert localstripe.store_path != second_localstripe.store_path
    assert _stat_or_none(SHARED_PICKLE) == shared_before


def test_localstripe_delivers_signed_webhooks(second_localstripe: LocalStripe) -> None:
    received: list[tuple[dict[str, object], str]] = []
    arrived = threading.Event()

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((json.loads(body), self.headers.get("Stripe-Signature", "")))
            self.send_response(200)
            self.end_headers()
            arrived.set()

        def log_message(self, format: str, *args: object) -> None:
            pass

    with ThreadingHTTPServer(("127.0.0.1", 0), Hook) as hook_server:
        thread = threading.Thread(target=hook_server.serve_forever, daemon=True)
        thread.start()
        try:
            url = f"http://127.0.0.1:{hook_server.server_address[1]}/hook"
            configure_webhook(second_localstripe.api_base, "test", url, "whsec_test")
            _client(second_localstripe).v1.customers.create(params={"email": "b@example.com"})
            assert arrived.wait(timeout=10), "no webhook delivered"
        finally:
            hook_server.shutdown()
            thread.join()

    event, signature = received[0]
    assert event["type"] == "customer.created"
    assert signature.startswith("t=") and ",v1=" in signature


def test_configure_webhook_reports_a_refusal(second_localstripe: LocalStripe) -> None:
    with pytest.raises(DevServerError, match="refused webhook"):
        configure_webhook(second_localstripe.api_base, "bad", "not-a-url", "whsec_test")


def _weed_sockets() -> dict[Path, int]:
    """weed's Unix sockets under /tmp, by inode: other processes' (a weed killed earlier in the
    suite, another run) are there too, some named after the same port numbers."""
    found = {}
    for path in Path("/tmp").glob("seaweedfs-*.sock"):  # noqa: S108 - weed's fixed location
        try:
            found[path] = path.stat().st_ino
        except FileNotFoundError:
            continue
    return found


def test_stopping_seaweedfs_frees_its_ports(tmp_path: Path) -> None:
    server = SeaweedFS(tmp_path / "weed", access_key="stopkey", secret_key="stop-secret")
    before = _weed_sockets()
    with server:
        pid = server.pid
        ports = server.ports
        assert pid is not None
        assert len(set(ports.values())) == 8
        assert all(port_is_listening(port) for port in ports.values())
        # Throwaway data: skip most of weed's graceful shutdown (the SIGKILL path is the one
        # that ends almost every stop anyway).
        server.stop(timeout=1)

    server.stop()  # idempotent
    assert not server.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    for port in ports.values():
        assert not port_is_listening(port)
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))
    # weed names Unix sockets after its ports, under /tmp; stop() removes what it leaves. Only
    # files this server made count: new since it started (another inode at a path is new too).
    leftovers = [
        path
        for path, inode in _weed_sockets().items()
        if int(path.stem.rsplit("-", 1)[-1]) in ports.values() and before.get(path) != inode
    ]
    assert leftovers == []


def test_seaweedfs_refuses_to_run_without_credentials(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="non-empty"):
        SeaweedFS(tmp_path, access_key="", secret_key="secret")
