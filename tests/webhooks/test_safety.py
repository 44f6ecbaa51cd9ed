"""Where webhooks may go: https and public addresses only in production, judged on the address
resolved (and then connected to), never on the name. No test sends traffic off loopback: the
resolver is a fake, and a refused target is refused before any connection."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from marketplace.webhooks.safety import UnsafeTarget, check_url, parse_url, resolve_checked
from marketplace.webhooks.sender import post_webhook


def resolving_to(*addresses: str):  # type: ignore[no-untyped-def]
    def resolve(host: str, port: int) -> Sequence[str]:
        return addresses

    return resolve


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.9",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",  # carrier-grade NAT
        "0.0.0.0",  # noqa: S104 - an address refused, not bound
        "::1",
        "fe80::1",
        "fd00::1",
        "::ffff:10.0.0.1",  # IPv4-mapped private
        "224.0.0.1",
    ],
)
def test_production_refuses_a_name_resolving_inside(address: str) -> None:
    target = check_url("https://hooks.example.com/x", production=True)
    with pytest.raises(UnsafeTarget):
        resolve_checked(target, production=True, resolver=resolving_to(address))


def test_one_inside_answer_refuses_the_whole_name() -> None:
    target = check_url("https://hooks.example.com/x", production=True)
    with pytest.raises(UnsafeTarget):
        resolve_checked(target, production=True, resolver=resolving_to("93.184.215.14", "10.0.0.1"))


def test_production_connects_to_the_public_address_it_checked() -> None:
    target = check_url("https://hooks.example.com/x?a=1", production=True)
    assert resolve_checked(target, production=True, resolver=resolving_to("93.184.215.14")) == (
        "93.184.215.14"
    )
    assert (target.host, target.port, target.path) == ("hooks.example.com", 443, "/x?a=1")


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/x",
        "http://127.0.0.1:8080/x",
        "https://127.0.0.1/x",
        "https://10.0.0.1/x",
        "https://[::1]/x",
        "https://169.254.169.254/latest/meta-data",
    ],
)
def test_production_refuses_http_and_inside_literals(url: str) -> None:
    with pytest.raises(UnsafeTarget):
        check_url(url, production=True)


def test_outside_production_http_is_for_loopback_only() -> None:
    check_url("http://127.0.0.1:8080/x", production=False)
    check_url("http://localhost:8080/x", production=False)
    with pytest.raises(UnsafeTarget):
        check_url("http://hooks.example.com/x", production=False)
    # A name that is not loopback cannot be made plain http by resolving to loopback either.
    target = parse_url("http://localhost:8080/x")
    with pytest.raises(UnsafeTarget):
        resolve_checked(target, production=False, resolver=resolving_to("10.0.0.1"))


def test_a_refused_target_is_an_outcome_without_a_connection() -> None:
    outcome = post_webhook(
        "https://hooks.example.com/x",
        b"{}",
        {},
        production=True,
        resolver=resolving_to("127.0.0.1"),
    )
    assert outcome.status is None and not outcome.ok
    assert outcome.error is not None and outcome.error.startswith("refused")
