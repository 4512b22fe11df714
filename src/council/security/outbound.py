"""Where a remote seat may connect: public addresses, private ones only when the owner says so,
and never this hub's own listeners.

A remote seat makes the hub POST to an address and read what comes back, so unchecked it is a
tool for probing the laptop's network, and the laptop itself: a seat pointing at the hub's own
listener turns one question into rounds nested without end. Loopback, link-local, private and
other non-global addresses are refused unless the seat has `allow_private = true` (another hub
on the LAN, a server on this laptop); the hub's own listeners are refused always.

The check is made when the connection is made, on the address DNS gave, so a name that resolves
to a public address when the seat is added and to a private one later (DNS rebinding) is refused
too. httpcore takes the network backend that opens connections; `GuardedBackend` wraps its own
and connects to the checked address (TLS still verifies the certificate against the URL's
name). The URL is also checked when a seat is added, for an answer before the first round.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable, Collection, Iterable
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx
import psutil

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
OwnPorts = Callable[[], Collection[int]]
LOCAL_NAMES = ("localhost", "localhost.", "ip6-localhost")


class OutboundRefused(httpcore.ConnectError):
    """A connection a remote seat may not make; the message says why and what to do."""


def _local_addresses() -> set[IPAddress]:
    found: set[IPAddress] = set()
    for entries in psutil.net_if_addrs().values():
        for entry in entries:
            if entry.family in (socket.AF_INET, socket.AF_INET6):
                try:
                    found.add(ipaddress.ip_address(entry.address.split("%")[0]))
                except ValueError:
                    continue
    return found


def _plain(ip: IPAddress) -> IPAddress:
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    return mapped or ip


class Outbound:
    """The policy: `refusal` says why a connection may not be made, or None."""

    def __init__(self, own_ports: OwnPorts) -> None:
        self.own_ports = own_ports

    def refusal(self, ip: IPAddress, port: int, *, allow_private: bool) -> str | None:
        ip = _plain(ip)
        if port in self.own_ports() and (
            ip.is_loopback or ip.is_unspecified or ip in _local_addresses()
        ):
            return f"{ip}:{port} is this hub's own listener: a seat cannot be the hub itself"
        if not allow_private and not ip.is_global:
            return (
                f"{ip} is a loopback, link-local or private address: remote seats reach public "
                "addresses only, unless the seat sets allow_private = true"
            )
        return None

    def check_url(self, url: str, *, allow_private: bool) -> str | None:
        """What can be told from the URL alone (an address, or a name for this machine)."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if host in LOCAL_NAMES or host.endswith(".localhost"):
            ips: Iterable[IPAddress] = (ipaddress.ip_address("127.0.0.1"),)
        else:
            try:
                ips = (ipaddress.ip_address(host),)
            except ValueError:
                return None  # a name: checked on the address it resolves to, at connect time
        for ip in ips:
            if (reason := self.refusal(ip, port, allow_private=allow_private)) is not None:
                return reason
        return None


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's own backend, connecting only to addresses `Outbound` allows."""

    def __init__(self, policy: Outbound, *, allow_private: bool) -> None:
        self._policy = policy
        self._allow_private = allow_private
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):  # the connect timeout covers the lookup too
                infos = await asyncio.get_running_loop().getaddrinfo(
                    host, port, type=socket.SOCK_STREAM
                )
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"no address for {host} within {timeout} s") from None
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
        addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
        for ip in addresses:
            reason = self._policy.refusal(ip, port, allow_private=self._allow_private)
            if reason is not None:
                raise OutboundRefused(reason)
        last: Exception | None = None
        for ip in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(ip), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        raise last or httpcore.ConnectError(f"no address for {host}")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a pool whose connections `GuardedBackend` opens. httpx does not
    take a network backend, so the pool it built is replaced by one that does (same TLS)."""

    def __init__(self, policy: Outbound, *, allow_private: bool) -> None:
        context = httpx.create_ssl_context(trust_env=False)
        super().__init__(verify=context, trust_env=False)  # no proxy: it would hide the address
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            network_backend=GuardedBackend(policy, allow_private=allow_private),
        )


def guarded_client(policy: Outbound, *, allow_private: bool) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=GuardedTransport(policy, allow_private=allow_private),
        timeout=httpx.Timeout(30.0, read=None),
        trust_env=False,
    )
