"""Posting one signed webhook: to the address that was checked, with a short timeout, reading
at most 64 KiB of the answer and never following a redirect (http.client follows none)."""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass

from marketplace.webhooks.safety import (
    Resolver,
    UnsafeTarget,
    check_url,
    resolve_checked,
    system_resolver,
)

TIMEOUT_SECONDS = 5.0
MAX_RESPONSE_BYTES = 64 * 1024
USER_AGENT = "Clearcut-Webhooks/1"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt got: the status (None if no answer) and how long it took."""

    status: int | None
    duration_ms: int
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Speaks to `host` (the Host header) at the address resolved and checked before."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """TLS to the checked address, with the name's SNI and its certificate verified."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def post_webhook(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    production: bool,
    resolver: Resolver = system_resolver,
    timeout: float = TIMEOUT_SECONDS,
) -> Outcome:
    """One attempt. Refusals (an unsafe URL or address) and network errors are outcomes with
    no status, never exceptions: the caller records them like a 500."""
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        target = check_url(url, production=production)
        address = resolve_checked(target, production=production, resolver=resolver)
    except UnsafeTarget as exc:
        return Outcome(None, elapsed(), f"refused: {exc}")
    kind = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    connection = kind(target.host, target.port, address, timeout)
    try:
        connection.request(
            "POST",
            target.path,
            body=body,
            headers={
                **headers,
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
            },
        )
        response = connection.getresponse()
        response.read(MAX_RESPONSE_BYTES)  # read a little, so the receiver is not cut off mid-write
        return Outcome(response.status, elapsed())
    except (OSError, http.client.HTTPException) as exc:
        kind_name = (
            "timeout" if isinstance(exc, TimeoutError | socket.timeout) else type(exc).__name__
        )
        return Outcome(None, elapsed(), kind_name)
    finally:
        connection.close()
