"""The hub's web app: the page, its static files, `/api` and `/v1`, behind two pure-ASGI layers.

The page is static HTML plus ES modules (no inline script), so a strict Content-Security-Policy
holds; `SecurityHeaders` adds it to every response, and `LocalGuard` (guard.py) refuses foreign
Host headers and cross-origin writes. Neither buffers a response, so SSE streams pass through.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from council.security.owner import OwnerAccess
from council.server.api import Api, ApiContext
from council.server.browser_seats import browser_seat_routes
from council.server.gate import DeviceGate
from council.server.guard import LocalGuard
from council.server.http import EXCEPTION_HANDLERS
from council.server.lan import LanContext, lan_routes
from council.server.metrics import Metrics, MetricsMiddleware
from council.server.model_files import model_file_routes
from council.server.openai_api import OpenAIApi
from council.server.openapi import openapi_schema
from council.server.owner_gate import OwnerGate, login_link_route, login_routes
from council.server.roles import for_guests
from council.server.seat import SEAT_CSP, seat_routes
from council.settings import Environment

if TYPE_CHECKING:
    from council.server.devices_api import DevicesApi
    from council.server.evals_api import EvalsApi
    from council.server.peers_api import PeersApi
    from council.server.pulls_api import PullsApi
    from council.server.status_api import StatusApi

WEB = Path(__file__).resolve().parent.parent / "web"
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]
# The browser seat compiles WebAssembly and starts blob workers (seat.py says why); nothing else.
SEAT_SECURITY_HEADERS = [(b"content-security-policy", SEAT_CSP), *SECURITY_HEADERS[1:]]


@dataclass(frozen=True, slots=True)
class OwnerDoor:
    """What the localhost app needs to let in only the owner."""

    access: OwnerAccess
    cookie: str  # the session cookie's name (per port)
    base_url: Callable[[], str]  # where login links point

    def routes(self) -> list[Route]:
        return [
            *login_routes(self.access, self.cookie, WEB),
            login_link_route(self.access, self.base_url),
        ]


class HealthSource(Protocol):
    def health(self) -> dict[str, object]: ...


class SecurityHeaders:
    """Pure ASGI (no BaseHTTPMiddleware) so streaming responses pass through untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        seat = scope["path"].startswith("/seat/")
        headers = SEAT_SECURITY_HEADERS if seat else SECURITY_HEADERS

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(
    source: HealthSource,
    api: ApiContext | None = None,
    openai: OpenAIApi | None = None,
    *,
    allowed_hosts: Sequence[str] | None = None,
    lan: LanContext | None = None,
    metrics: Metrics | None = None,
    devices: DevicesApi | None = None,
    pulls: PullsApi | None = None,
    evals: EvalsApi | None = None,
    status: StatusApi | None = None,
    peers: PeersApi | None = None,
    isolated: bool | None = None,
    owner: OwnerDoor | None = None,
) -> Starlette:
    """The hub's app; with `lan`, the LAN listener's variant: device tokens required except on
    the pairing, CA and health routes, and the owner's routes (seats, defaults, devices,
    metrics...) refused to devices (roles.py). `/seat/` is cross-origin isolated unless
    `isolated` is False (None: as COUNCIL_SEAT_ISOLATION says). With `owner`, the localhost
    app lets in only the laptop's owner (owner_gate.py)."""

    async def index(request: Request) -> Response:
        return FileResponse(WEB / "index.html", headers={"cache-control": "no-cache"})

    async def service_worker(request: Request) -> Response:
        # Served from the root so that it may control the whole page, not only /static/.
        return FileResponse(
            WEB / "sw.js", media_type="text/javascript", headers={"cache-control": "no-cache"}
        )

    async def health(request: Request) -> Response:
        """The hub's status word and every seat's state; `owner` is false for a paired device."""
        payload = {**source.health(), "owner": lan is None}
        guest_hint = payload.pop("guest_hint", None)
        if lan is not None and payload.get("demo_hint"):
            # A phone is told what to do, not where the laptop keeps its files.
            payload["demo_hint"] = guest_hint
        return JSONResponse(payload, headers={"cache-control": "no-store"})

    async def openapi(request: Request) -> Response:
        return JSONResponse(openapi_schema(app.routes))

    async def prometheus(request: Request) -> Response:
        """Prometheus metrics (the localhost listener only)."""
        assert metrics is not None  # noqa: S101 - the route exists only with metrics
        text, content_type = await asyncio.to_thread(metrics.render)
        return Response(text, headers={"content-type": content_type, "cache-control": "no-store"})

    routes = [
        # /v1 first: the router tries routes in order, and these are the busiest.
        *(openai.routes() if openai is not None else []),
        *(lan_routes(lan, str(WEB)) if lan is not None else []),
        Route("/", index),
        Route("/sw.js", service_worker),
        Route("/api/health", health),
        Route("/api/openapi.json", openapi),
        *seat_routes(isolated=Environment.read().seat_isolation if isolated is None else isolated),
        *([Route("/metrics", prometheus)] if metrics is not None else []),
        *(model_file_routes(api.model_files, metrics) if api and api.model_files else []),
        *(Api(api).routes() if api is not None else []),
        *(browser_seat_routes(api.seats, api.model_files) if api is not None else []),
        *(devices.routes() if devices is not None else []),
        *(pulls.routes() if pulls is not None else []),
        *(evals.routes() if evals is not None else []),
        *(status.routes() if status is not None else []),
        *(peers.routes() if peers is not None else []),
        *(owner.routes() if owner is not None else []),
        Mount("/static", StaticFiles(directory=WEB), name="static"),
    ]
    app = Starlette(
        # A paired device is a guest: whatever is not in roles.GUEST answers it 403.
        routes=for_guests(routes) if lan is not None else routes,
        middleware=[
            *(
                [Middleware(MetricsMiddleware, metrics=metrics, listener="lan" if lan else "local")]
                if metrics is not None
                else []
            ),
            Middleware(SecurityHeaders),
            *(
                [Middleware(LocalGuard, allowed_hosts=allowed_hosts)]
                if allowed_hosts is not None
                else []
            ),
            *([Middleware(DeviceGate, db=lan.db, sessions=lan.sessions)] if lan else []),
            *(
                [Middleware(OwnerGate, access=owner.access, cookie=owner.cookie)]
                if owner is not None
                else []
            ),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
    )
    return app
