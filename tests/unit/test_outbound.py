"""Where a remote seat may connect: checked on the address a connection is really made to."""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from council.security.outbound import Outbound, OutboundRefused, guarded_client
from tests.running import run

NOBODY = Outbound(frozenset)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.20",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",  # noqa: S104 - an address being checked, not bound
        "::1",
        "fe80::1",
        "fd00::1",
        "::ffff:127.0.0.1",
        "::",
    ],
)
def test_loopback_link_local_and_private_addresses_need_the_seats_permission(address: str) -> None:
    ip = ipaddress.ip_address(address)
    reason = NOBODY.refusal(ip, 443, allow_private=False)
    assert reason is not None
    assert "allow_private = true" in reason
    assert NOBODY.refusal(ip, 443, allow_private=True) is None


def test_public_addresses_are_allowed() -> None:
    for address in ("93.184.215.14", "2606:4700::1111"):
        assert NOBODY.refusal(ipaddress.ip_address(address), 443, allow_private=False) is None


def test_the_hubs_own_listeners_are_refused_even_to_a_seat_that_may_go_private() -> None:
    hub = Outbound(lambda: {8710, 8711})
    for address in ("127.0.0.1", "::1", "0.0.0.0"):  # noqa: S104 - an address being checked
        reason = hub.refusal(ipaddress.ip_address(address), 8711, allow_private=True)
        assert reason is not None
        assert "this hub's own listener" in reason
    assert hub.refusal(ipaddress.ip_address("127.0.0.1"), 8000, allow_private=True) is None


def test_a_url_is_checked_when_it_names_an_address_or_this_machine() -> None:
    hub = Outbound(lambda: {8710})
    assert hub.check_url("http://127.0.0.1:9000", allow_private=False) is not None
    assert hub.check_url("http://LOCALHOST:9000", allow_private=False) is not None
    assert hub.check_url("http://api.localhost", allow_private=False) is not None
    assert hub.check_url("http://[::1]:9000", allow_private=True) is None
    assert "own listener" in (hub.check_url("http://localhost:8710", allow_private=True) or "")
    assert hub.check_url("https://api.example.test", allow_private=False) is None  # at connect


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-length", "5")
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def loopback_server() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def get(policy: Outbound, url: str, *, allow_private: bool) -> httpx.Response | httpx.HTTPError:
    async def main() -> httpx.Response | httpx.HTTPError:
        async with guarded_client(policy, allow_private=allow_private) as client:
            try:
                return await client.get(url)
            except httpx.HTTPError as exc:
                return exc

    return run(main())


def test_a_name_is_checked_on_the_address_it_resolves_to_when_connecting() -> None:
    with loopback_server() as port:
        # "localhost" is a name here, resolved by the connection itself, as a rebinding name is.
        refused = get(NOBODY, f"http://localhost:{port}/", allow_private=False)
        allowed = get(NOBODY, f"http://localhost:{port}/", allow_private=True)
        own = get(Outbound(lambda: {port}), f"http://localhost:{port}/", allow_private=True)
    assert isinstance(refused, httpx.ConnectError)
    assert isinstance(refused.__cause__, OutboundRefused)
    assert "private address" in str(refused)
    assert isinstance(allowed, httpx.Response)
    assert allowed.text == "hello"
    assert isinstance(own, httpx.ConnectError)
    assert "own listener" in str(own)
