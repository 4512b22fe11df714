"""Tests speak to a hub's localhost listener as its owner, the way the CLI does.

The hub lets in only the holder of `owner.token` (or a browser logged in with a login link:
security/owner.py). Every test hub registers its localhost port here with its data folder, and
`speak_as_owner` (applied for the whole session by tests/conftest.py) adds that folder's token
to any request to that port which carries no `Authorization` of its own, the way `council ask`
adds it. Requests to the LAN listener, to engines or to anything else are left alone.
`as_stranger()` turns this off, for the tests of the door itself (test_owner_auth.py), and
browser tests get a logged-in session cookie per hub (`session_cookies`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from council.datafolder import DataFolder
from council.security.owner import cookie_name, read_token

_HUBS: dict[int, Path] = {}  # a test hub's localhost port -> its data folder
_STRANGER: list[bool] = []  # non-empty inside as_stranger()


def register(port: int, data: Path) -> None:
    _HUBS[port] = data


def token_for(port: int) -> str | None:
    data = _HUBS.get(port)
    return read_token(DataFolder(data)) if data is not None else None


@contextlib.contextmanager
def as_stranger() -> Iterator[None]:
    """Requests in this block carry no owner token: another account on the laptop."""
    _STRANGER.append(True)
    try:
        yield
    finally:
        _STRANGER.pop()


def _with_owner(request: httpx.Request) -> None:
    if _STRANGER or request.url.host != "127.0.0.1" or "authorization" in request.headers:
        return
    port = request.url.port
    token = token_for(port) if port is not None else None
    if token is not None:
        request.headers["authorization"] = f"Bearer {token}"


@contextlib.contextmanager
def speak_as_owner() -> Iterator[None]:
    sync_send = httpx.HTTPTransport.handle_request
    async_send = httpx.AsyncHTTPTransport.handle_async_request

    def handle_request(self: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
        _with_owner(request)
        return sync_send(self, request)

    async def handle_async_request(
        self: httpx.AsyncHTTPTransport, request: httpx.Request
    ) -> httpx.Response:
        _with_owner(request)
        return await async_send(self, request)

    httpx.HTTPTransport.handle_request = handle_request  # type: ignore[method-assign]
    httpx.AsyncHTTPTransport.handle_async_request = handle_async_request  # type: ignore[method-assign]
    try:
        yield
    finally:
        httpx.HTTPTransport.handle_request = sync_send  # type: ignore[method-assign]
        httpx.AsyncHTTPTransport.handle_async_request = async_send  # type: ignore[method-assign]


def logged_in_session(port: int) -> str | None:
    """A browser session on the hub at `port`, through a login link as a person gets one."""
    base = f"http://127.0.0.1:{port}"
    try:
        link = httpx.post(f"{base}/api/login-links", timeout=10)
    except httpx.HTTPError:
        return None  # that hub has stopped
    if link.status_code != 201:
        return None  # a hub without owner auth, or one that is gone
    code = link.json()["url"].split("#code=", 1)[1]
    answer = httpx.post(f"{base}/login", json={"code": code}, timeout=10)
    return answer.cookies.get(cookie_name(port))


def session_cookie(url: str) -> dict[str, Any] | None:
    """A logged-in session cookie for the test hub `url` is on, as Playwright takes them;
    None for any other address."""
    found = httpx.URL(url)
    if found.host != "127.0.0.1" or found.port not in _HUBS:
        return None
    session = logged_in_session(found.port)
    if session is None:
        return None
    return {
        "name": cookie_name(found.port),
        "value": session,
        "domain": "127.0.0.1",
        "path": "/",
        "httpOnly": True,
        "sameSite": "Strict",
    }
