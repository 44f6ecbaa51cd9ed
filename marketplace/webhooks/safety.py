"""Where webhooks may be sent: https only and public addresses only in production, checked on
the address actually connected to (after DNS resolution), never following a redirect."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[str]]

LOOPBACK_NAMES = frozenset({"localhost"})


class UnsafeTarget(ValueError):
    """An endpoint URL or address webhooks must not be sent to."""


@dataclass(frozen=True, slots=True)
class Target:
    """A URL taken apart: what to connect to, and what to call the host (Host header, SNI)."""

    scheme: str
    host: str
    port: int
    path: str


def parse_url(url: str) -> Target:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UnsafeTarget("the URL must be https (or http to loopback outside production)")
    if not parts.hostname:
        raise UnsafeTarget("the URL names no host")
    if parts.username or parts.password:
        raise UnsafeTarget("the URL must not carry credentials")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UnsafeTarget("the URL's port is not valid") from None
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(parts.scheme, parts.hostname.lower(), port, path)


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def is_public(address: IPAddress) -> bool:
    """Globally routable: not private, loopback, link-local (cloud metadata), shared, reserved,
    multicast or unspecified; an IPv4-mapped IPv6 address is judged as its IPv4 one."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def _is_loopback_host(host: str) -> bool:
    literal = _literal(host)
    return host in LOOPBACK_NAMES or (literal is not None and literal.is_loopback)


def check_url(url: str, *, production: bool) -> Target:
    """Refuse, at creation and again at delivery, what no resolution can make safe: in
    production anything but https, and a literal address that is not public; elsewhere plain
    http except to loopback (a receiver on the developer's machine, a test's)."""
    target = parse_url(url)
    if production:
        if target.scheme != "https":
            raise UnsafeTarget("the URL must be https")
        literal = _literal(target.host)
        if literal is not None and not is_public(literal):
            raise UnsafeTarget("the URL must not name a private, loopback or link-local address")
    elif target.scheme == "http" and not _is_loopback_host(target.host):
        raise UnsafeTarget("plain http is allowed to loopback only; use https")
    return target


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


def resolve_checked(
    target: Target, *, production: bool, resolver: Resolver = system_resolver
) -> str:
    """The address to connect to: the host resolved once, every address it resolves to
    checked (in production, one non-public answer refuses the whole name: a name that points
    anywhere inside is not a receiver), and the first returned. The caller connects to exactly
    this address, so a second resolution cannot swap it (DNS rebinding)."""
    try:
        addresses = [
            ipaddress.ip_address(a.split("%", 1)[0]) for a in resolver(target.host, target.port)
        ]
    except (OSError, UnicodeError) as exc:
        raise UnsafeTarget(f"{target.host} does not resolve: {exc.__class__.__name__}") from None
    if not addresses:
        raise UnsafeTarget(f"{target.host} does not resolve")
    if production and (bad := [a for a in addresses if not is_public(a)]):
        raise UnsafeTarget(f"{target.host} resolves to a non-public address ({bad[0]})")
    if not production and target.scheme == "http" and not all(a.is_loopback for a in addresses):
        raise UnsafeTarget("plain http is allowed to loopback only")
    return str(addresses[0])
