"""The localhost listener's door: only the owner passes (security/owner.py says how they prove
it). The login page and what it loads are open; a page a browser navigates to without a
session goes to `/login`; anything else gets a JSON 401 (OpenAI's shape on `/v1`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from council.errors import Forbidden, Unauthorized
from council.security.owner import OwnerAccess
from council.server import bodies
from council.server.api import read_json
from council.server.gate import authorization_bearer, cookie_value
from council.server.http import send_error

OPEN = frozenset(
    {
        ("GET", "/login"),
        ("GET", "/login/login.js"),
        ("POST", "/login"),
        ("GET", "/static/app.css"),
        ("GET", "/static/icon.svg"),
    }
)
PAGES = ("/", "/seat/")  # where a browser lands: sent to log in instead of a JSON 401
NOT_OWNER = (
    "log in as this laptop's owner: open the login link `council up` printed (or run "
    "`council login`); scripts and OpenAI clients send the token in the data folder's "
    "owner.token as their API key"
)
BAD_LINK = "this login link is used up or expired: run `council login` for a new one"


class OwnerGate:
    """Pure ASGI, in front of everything on the localhost listener."""

    def __init__(self, app: ASGIApp, access: OwnerAccess, cookie: str) -> None:
        self.app = app
        self.access = access
        self.cookie = cookie

    def is_owner(self, scope: Scope) -> bool:
        token = authorization_bearer(scope)
        if token is not None:
            return self.access.holds_token(token)
        session = cookie_value(scope, self.cookie)
        return session is not None and self.access.has_session(session)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in {"http", "websocket"}:
            await self.app(scope, receive, send)
            return
        method, path = scope.get("method", "GET"), scope["path"]
        if (method if method != "HEAD" else "GET", path) in OPEN or self.is_owner(scope):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "http" and method in {"GET", "HEAD"} and path in PAGES:
            await RedirectResponse("/login", status_code=303)(scope, receive, send)
            return
        await send_error(scope, send, Unauthorized(NOT_OWNER))


def login_routes(access: OwnerAccess, cookie: str, web: Path) -> list[Route]:
    async def page(request: Request) -> Response:
        """The login page: it reads the code from the link's fragment and logs in with it."""
        return FileResponse(web / "login.html", headers={"cache-control": "no-store"})

    async def script(request: Request) -> Response:
        return FileResponse(web / "login.js", media_type="text/javascript")

    @bodies.accepts(bodies.LOGIN)
    async def log_in(request: Request) -> Response:
        """Exchange a login link's one-time code for this browser's owner session."""
        session = access.log_in((await read_json(request, limit=1024))["code"])
        if session is None:
            raise Forbidden(BAD_LINK)
        response = Response(status_code=204, headers={"cache-control": "no-store"})
        response.set_cookie(cookie, session, httponly=True, samesite="strict", path="/")
        return response

    return [
        Route("/login", page, methods=["GET"]),
        Route("/login", log_in, methods=["POST"]),
        Route("/login/login.js", script, methods=["GET"]),
    ]


def login_link_route(access: OwnerAccess, base_url: Callable[[], str]) -> Route:
    async def login_link(request: Request) -> Response:
        """A one-time link that logs a browser in as the owner (`council login`)."""
        return JSONResponse(
            {"url": f"{base_url()}/login#code={access.login_code()}"},
            status_code=201,
            headers={"cache-control": "no-store"},
        )

    return Route("/api/login-links", login_link, methods=["POST"])
