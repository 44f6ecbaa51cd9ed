"""A real webhook receiver on loopback: an http.server in a thread that verifies every delivery
with the standardwebhooks library, as a customer's receiver would."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    verified: bool
    answered: int


@dataclass
class Receiver:
    url: str
    secret: str = ""
    #: What it answers a verified delivery (503: "down").
    status: int = 204
    requests: list[Received] = field(default_factory=list)

    @property
    def accepted(self) -> list[dict[str, Any]]:
        """Payloads it verified and acknowledged with a 2xx, in arrival order."""
        return [json.loads(r.body) for r in self.requests if r.verified and 200 <= r.answered < 300]


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    receiver = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                Webhook(receiver.secret).verify(body, headers)
                verified = True
            except WebhookVerificationError:
                verified = False
            answered = receiver.status if verified else 400
            receiver.requests.append(Received(headers, body, verified, answered))
            self.send_response(answered)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
