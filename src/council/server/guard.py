"""`LocalGuard`: keep web pages elsewhere from driving the hub through the user's browser.

The hub listens on a loopback address and has no login, so anything that can send it an HTTP
request can use it. Other programs on the machine are trusted (they could read the data folder
anyway); web pages are not. A page the user visits, from the internet or from another machine on
the LAN, has two ways to reach `http://127.0.0.1:<port>` through the browser:

* **DNS rebinding.** The page lives at `http://evil.example:<port>/`, then its DNS record is
  switched to 127.0.0.1. The browser still thinks it talks to `evil.example`, so the same-origin
  policy lets the page's script read every answer the hub gives, and send it anything. The one
  trace the attack cannot hide is the `Host` header, which still says `evil.example:<port>`; so
  every request whose `Host` is not one of the names this listener serves is refused.
* **Cross-site writes.** A page can submit a form or fire `fetch(..., {mode: "no-cors"})` at the
  hub directly. It cannot read the answer, but the request still runs, so a POST could start work
  or change settings. Browsers label such requests with an `Origin` header (and `Sec-Fetch-Site:
  cross-site`), so state-changing requests (anything but GET, HEAD and OPTIONS) that carry a
  foreign or `null` Origin, or say `Sec-Fetch-Site: cross-site`, are refused before they reach
  the app. Requests with no Origin at all come from curl, the CLI or the SDKs, never from a
  browser's cross-origin write, and pass. Reads with a foreign Origin pass too: no CORS headers
  are granted, so the page cannot see the answer.

WebSocket handshakes get the same Host check, and any foreign Origin is refused whatever the
method, because the same-origin policy does not protect WebSockets at all.

The guard is pure ASGI rather than a `BaseHTTPMiddleware`: it looks only at the request's
headers, then either answers by itself or hands the untouched `receive` and `send` to the app, so
streamed answers (server-sent events from the seats) are never buffered.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from council.errors import Forbidden
from council.server.http import send_error

log = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}
# RFC 6455 "policy violation": the close code for a refused WebSocket handshake.
WS_POLICY_VIOLATION = 1008


def local_hosts(host: str, port: int) -> list[str]:
    """The `Host` header values a browser sends to a listener bound to `host`:`port`.

    Loopback addresses also answer to `localhost`; IPv6 addresses are written in brackets.
    """
    bare = host.strip().removeprefix("[").removesuffix("]").lower()
    try:
        address = ipaddress.ip_address(bare)
    except ValueError:
        return [f"{bare}:{port}"]
    if address.version == 6:
        name = f"[{address.compressed}]:{port}"
    else:
        name = f"{address.compressed}:{port}"
    if address in (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")):
        return [name, f"localhost:{port}"]
    return [name]


def _normalise(authority: str, default_port: int) -> str:
    """Lower-case `host:port`, dropping a port the browser would leave out (80 on http)."""
    authority = authority.strip().lower()
    return authority.removesuffix(f":{default_port}")


def _headers(scope: Scope, name: bytes) -> list[str]:
    return [
        value.decode("latin-1") for key, value in scope.get("headers", []) if key.lower() == name
    ]


class LocalGuard:
    """Refuse requests for other hosts, and cross-origin writes, before they reach `app`."""

    def __init__(self, app: ASGIApp, allowed_hosts: Iterable[str]) -> None:
        if isinstance(allowed_hosts, str):
            raise TypeError("allowed_hosts is a list of host:port values, not one string")
        hosts = [host for host in allowed_hosts if host.strip()]
        if not hosts:
            raise ValueError("LocalGuard needs at least one allowed host, or it refuses everything")
        self.app = app
        self.allowed_hosts: tuple[str, ...] = tuple(host.strip().lower() for host in hosts)
        # The accepted `Host` values for each default port a scheme implies.
        self._hosts: dict[int, frozenset[str]] = {
            port: frozenset(_normalise(host, port) for host in self.allowed_hosts)
            for port in set(DEFAULT_PORTS.values())
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in {"http", "websocket"}:
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        log.warning(
            "refused %s %s %r (Host %r, Origin %r): %s",
            kind,
            scope.get("method", "GET"),
            scope.get("path", ""),
            _headers(scope, b"host"),
            _headers(scope, b"origin"),
            refusal,
        )
        if kind == "websocket":
            # Closing before accepting makes the server answer the handshake with 403.
            await send({"type": "websocket.close", "code": WS_POLICY_VIOLATION, "reason": ""})
            return
        await send_error(scope, send, Forbidden(refusal))

    def _refusal(self, scope: Scope) -> str | None:
        """Why the request must be refused, or None to let it through."""
        scheme = str(scope.get("scheme", "ws" if scope["type"] == "websocket" else "http"))
        default_port = DEFAULT_PORTS.get(scheme, 80)
        allowed = self._hosts[default_port]

        hosts = _headers(scope, b"host")
        if len(hosts) != 1 or _normalise(hosts[0], default_port) not in allowed:
            return (
                "the Host header is not one this hub serves (it answers only to "
                f"{', '.join(self.allowed_hosts)}); open the hub by one of those addresses"
            )

        writes = scope["type"] == "websocket" or scope.get("method", "GET") not in SAFE_METHODS
        if not writes:
            return None
        origins = _headers(scope, b"origin")
        web_scheme = "https" if scheme in {"https", "wss"} else "http"
        if len(origins) > 1 or any(
            not self._same_origin(origin, web_scheme, allowed, default_port) for origin in origins
        ):
            return "cross-origin requests may not change anything here"
        if any(site.strip().lower() == "cross-site" for site in _headers(scope, b"sec-fetch-site")):
            return "cross-site requests may not change anything here"
        return None

    @staticmethod
    def _same_origin(origin: str, scheme: str, allowed: frozenset[str], default_port: int) -> bool:
        origin = origin.strip().lower()
        prefix = f"{scheme}://"
        if not origin.startswith(prefix):  # also catches the opaque origin "null"
            return False
        return _normalise(origin.removeprefix(prefix), default_port) in allowed
