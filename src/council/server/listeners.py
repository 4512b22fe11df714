"""The hub's listeners: plain HTTP on 127.0.0.1 for the laptop, HTTPS on the LAN for phones.

Both are uvicorn servers on sockets council binds itself, so a port problem is reported before
any engine starts. The LAN listener's TLS context is council's own: when the laptop's addresses
change or the certificate nears expiry, a new certificate is loaded into the same context, and
new connections get it without a restart of the hub or its seats.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import os
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from council.datafolder import DataFolder
from council.errors import CouncilError, PortInUse
from council.settings import Chosen

if TYPE_CHECKING:  # imported when used: start-up stays quick without --lan
    import uvicorn
    from starlette.types import ASGIApp

    from council.security.tls import CertificateAuthority

log = logging.getLogger("council")
RENEW_CHECK = 60.0  # seconds between checks of addresses and expiry
PORT_SEARCH = 20


def bind_listener(host: str, port: Chosen[int], flag: str = "--port") -> socket.socket:
    """Bind a port now, so the check happens before any engine is spawned. A port given for
    this run is taken or refused; otherwise the first free one from config.toml's (or the
    default) is used."""
    if port.explicit:
        try:
            return _bind(host, port.value)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse(
                    f"port {port.value} on {host} is already in use: stop what uses it, "
                    f"or choose another with {flag}"
                ) from None
            raise PortInUse(f"cannot listen on {host}:{port.value}: {exc.strerror}") from None
    for candidate in (*range(port.value, port.value + PORT_SEARCH), 0):
        with contextlib.suppress(OSError):
            return _bind(host, candidate)
    raise PortInUse(f"no free port on {host} near {port.value}")


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not the default 0: accepted sockets inherit it, and asyncio sets TCP_NODELAY
    # only on sockets that say they are TCP. Without it, Nagle's algorithm meets the client's
    # delayed ACK and every response waits about 40 ms between its headers and its body.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        if os.name != "nt":  # on Windows this flag would let two servers share a port
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


@dataclass
class LanListener:
    socket: socket.socket
    context: ssl.SSLContext
    ca: CertificateAuthority | None  # None: the user's own certificate
    host: str
    port: int
    names: tuple[tuple[str, ...], tuple[str, ...]] = field(default=((), ()))

    @property
    def url(self) -> str:
        """The address a phone should use: the host given, else this laptop's first."""
        from council.security.tls import lan_addresses, local_hostname

        shown = self.host
        if _is_ip(shown) and ipaddress.ip_address(shown).is_unspecified:
            shown = next(iter(lan_addresses()), local_hostname())
        if ":" in shown:
            shown = f"[{shown}]"
        return f"https://{shown}:{self.port}"


def open_lan_listener(
    folder: DataFolder,
    host: str,
    port: int,
    cert: Path | None = None,
    key: Path | None = None,
) -> LanListener:
    from council.security.tls import load_or_create_ca

    if (cert is None) != (key is None):
        raise CouncilError("--tls-cert and --tls-key go together")
    sock = bind_listener(host, Chosen(port, "--lan-port"), flag="--lan-port")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        if cert is not None and key is not None:
            context.load_cert_chain(cert, key)
            return LanListener(sock, context, None, host, port)
        ca = load_or_create_ca(folder.tls)
        listener = LanListener(sock, context, ca, host, port)
        refresh_certificate(listener, folder)
    except (OSError, ssl.SSLError, ValueError) as exc:
        sock.close()
        raise CouncilError(f"cannot set up TLS for the LAN listener: {exc}") from None
    return listener


def certificate_names(host: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """What the certificate must cover: `<hostname>.local`, and the addresses phones use."""
    from council.security.tls import lan_addresses, local_hostname

    ips = set(lan_addresses())
    if _is_ip(host) and not ipaddress.ip_address(host).is_unspecified:
        ips.add(host)
    return (local_hostname(),), tuple(sorted(ips))


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def refresh_certificate(listener: LanListener, folder: DataFolder) -> bool:
    """Re-issue when the addresses changed or expiry nears; load it into the live context."""
    from council.security.tls import ensure_server_certificate

    if listener.ca is None:
        return False
    names = certificate_names(listener.host)
    certificate, issued = ensure_server_certificate(folder.tls, listener.ca, *names)
    if issued or names != listener.names:
        listener.context.load_cert_chain(certificate.cert_path, certificate.key_path)
        listener.names = names
    return issued


async def keep_certificate_fresh(listener: LanListener, folder: DataFolder) -> None:
    while True:
        await asyncio.sleep(RENEW_CHECK)
        try:
            if refresh_certificate(listener, folder):
                log.info("issued a new LAN certificate for %s", ", ".join(listener.names[1]))
        except (OSError, ssl.SSLError, ValueError) as exc:
            log.warning("could not renew the LAN certificate: %s", exc)


def uvicorn_server(
    app: ASGIApp, context: ssl.SSLContext | None = None, *, signals: bool = True
) -> uvicorn.Server:
    """A uvicorn server for one of our sockets; with `context`, it speaks only TLS. Without
    `signals`, it leaves SIGINT and SIGTERM alone (uvicorn takes them over on the main thread
    while it serves): whoever runs the hub handles them."""
    import uvicorn

    class LeavesSignals(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    from council.server.sendfile import SendfileProtocol

    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        server_header=False,
        ws="none",
        timeout_graceful_shutdown=3,
        # No proxy stands in front of council: a forwarding header is the client's own claim,
        # and trusting it (uvicorn does from 127.0.0.1 by default) would let any local process
        # pick the address the pairing lockout and the audit log see.
        proxy_headers=False,
    )
    config.http = SendfileProtocol  # httptools, plus pathsend: whole files go out by sendfile
    config.load()
    if context is not None:
        config.ssl = context  # ours, so a renewed certificate reaches new connections
    return uvicorn.Server(config) if signals else LeavesSignals(config)
