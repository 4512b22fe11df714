"""The LAN listener's door: who a request is from, and whether that device may start it now.

`DeviceGate` (pure ASGI, so streams pass through unbuffered) authenticates every request by the
device token, except the few routes a phone needs before it has one (`PUBLIC`). Requests that
make the engines work or change something (every `/v1` request, every `POST`, `PUT`, `PATCH`
and `DELETE` to `/api`) are *counted*: each device may
have `max_streams` of them open at once and start `requests_per_minute` of them in any 60 s,
else it gets `429` with `Retry-After`.

Revoking a device ends its open requests within a second wherever the revocation came from: the
UI calls `DeviceSessions.revoke` directly; `council devices revoke` (another process, same
database) is noticed by `watch_revocations`, which polls only while the device has something
open. An ended stream gets a last SSE `error` event, so an SDK raises instead of hanging.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.cookies import SimpleCookie

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from council.errors import StoreError, TooManyRequests, Unauthorized
from council.security import pairing
from council.server.http import send_error, sse_error_frame
from council.settings import DeviceLimits
from council.store import devices
from council.store.access import Store

log = logging.getLogger("council")

COOKIE = "council_device"
PUBLIC = frozenset(
    {
        "/pair",
        "/pair/exchange",
        "/pair/pair.js",
        "/ca",
        "/ca.pem",
        "/ca.mobileconfig",
        "/health",
        "/static/app.css",
        "/static/icon.svg",
    }
)
WINDOW = 60.0
CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
REVOKED = "this device's pairing was revoked: pair it again to use the hub"
UNPAIRED = "this device is not paired with the hub: scan a pairing QR code (council pair)"


_ANSWER_POST = re.compile(r"/api/browser-seats/[^/]+/tasks/[^/]+")


def counted(scope: Scope) -> bool:
    """Against the device's request limits: `/v1`, and every change to `/api` (each may write
    to the stick), but a browser seat's answer posts (`answer_post`) and its task stream."""
    if answer_post(scope) or long_lived(scope):
        return False
    path: str = scope["path"]
    changes = scope["method"] in CHANGES
    return path.startswith("/v1/") or (changes and path.startswith("/api/"))


def answer_post(scope: Scope) -> bool:
    """One batch of a browser seat's answer: work the hub asked for, in many small posts,
    counted against a budget of their own."""
    return scope["method"] == "POST" and _ANSWER_POST.fullmatch(scope["path"]) is not None


def long_lived(scope: Scope) -> bool:
    """Uncounted, but open for as long as a tab stays: a browser seat's task stream (one per
    seat, and a device registers few). Revoking the device must end it like any counted
    stream."""
    path: str = scope["path"]
    return scope["method"] == "GET" and path.startswith("/api/browser-seats/")


@dataclass(eq=False, slots=True)
class OpenRequest:
    device_id: str
    task: asyncio.Task[object] | None
    counted: bool = True
    revoked: bool = False


class DeviceSessions:
    """Each device's open counted requests and recent starts, against its limits."""

    def __init__(
        self, limits: Callable[[], DeviceLimits], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = limits
        self.clock = clock
        self._open: dict[str, set[OpenRequest]] = {}
        self._starts: dict[str, deque[float]] = {}
        self._posts: dict[str, deque[float]] = {}

    def refusal(self, device_id: str) -> tuple[str, float] | None:
        """Why a new request from this device must wait, and for how many seconds; or None."""
        limits, now = self.limits(), self.clock()
        starts = self._starts.get(device_id)
        if starts is not None:
            while starts and starts[0] <= now - WINDOW:
                starts.popleft()
            if len(starts) >= limits.requests_per_minute:
                wait = starts[0] + WINDOW - now
                return f"{limits.requests_per_minute} requests a minute", wait
        open_now = sum(entry.counted for entry in self._open.get(device_id, ()))
        if open_now >= limits.max_streams:
            return f"{limits.max_streams} open at once", 1.0
        return None

    def post_refusal(self, device_id: str) -> tuple[str, float] | None:
        """Like `refusal`, for one more browser-seat answer post, which it counts."""
        limit, now = self.limits().answer_posts_per_minute, self.clock()
        posts = self._posts.setdefault(device_id, deque())
        while posts and posts[0] <= now - WINDOW:
            posts.popleft()
        if len(posts) >= limit:
            return f"{limit} answer posts a minute", posts[0] + WINDOW - now
        posts.append(now)
        return None

    def open(self, device_id: str, *, counted: bool = True) -> OpenRequest:
        try:
            task = asyncio.current_task()  # what revoking cancels: the request's own task
        except RuntimeError:  # no event loop, so nothing that could be cancelled
            task = None
        entry = OpenRequest(device_id, task, counted)
        self._open.setdefault(device_id, set()).add(entry)
        if counted:
            self._starts.setdefault(device_id, deque()).append(self.clock())
        return entry

    def close(self, entry: OpenRequest) -> None:
        entries = self._open.get(entry.device_id)
        if entries is not None:
            entries.discard(entry)
            if not entries:
                del self._open[entry.device_id]

    def revoke(self, device_id: str) -> int:
        """End every open request of the device; how many there were."""
        entries = self._open.get(device_id, set())
        for entry in entries:
            if not entry.revoked:
                entry.revoked = True
                if entry.task is not None:
                    entry.task.cancel()
        if entries:
            log.info("revoked device %s: ended %d open request(s)", device_id, len(entries))
        return len(entries)

    def counts(self) -> dict[str, int]:
        return {device: len(entries) for device, entries in self._open.items()}

    async def watch_revocations(self, db: Store, interval: float = 0.25) -> None:
        """Notice revocations made by another process (the CLI) while streams are open."""
        while True:
            await asyncio.sleep(interval)
            if not self._open:
                continue
            try:
                revoked = await db.read(devices.revoked_among, list(self._open))
            except StoreError as exc:  # a busy stick: try again on the next tick
                log.warning("could not check for revoked devices: %s", exc)
                continue
            for device_id in revoked:
                self.revoke(device_id)


class DeviceGate:
    def __init__(self, app: ASGIApp, db: Store, sessions: DeviceSessions) -> None:
        self.app = app
        self.db = db
        self.sessions = sessions

    async def _authenticate(self, token: str, address: str) -> devices.Device | None:
        """The token's live device (read off the loop); its sighting is written in the
        background, so a stick that stalls or refuses writes never keeps a phone out."""
        digest = pairing.token_digest(token)
        if digest is None:
            return None
        device = await self.db.read(devices.live_device_by_token_hash, digest)
        if device is not None and devices.sighting_due(device):
            self.db.submit(devices.record_sighting, device, address)
        return device

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in {"http", "websocket"} or scope["path"] in PUBLIC:
            await self.app(scope, receive, send)
            return
        token = bearer_token(scope)
        address = (scope.get("client") or ("", 0))[0]
        device = await self._authenticate(token, address) if token else None
        if device is None:
            await send_error(scope, send, Unauthorized(UNPAIRED))
            return
        scope.setdefault("state", {})["device"] = device
        if scope["type"] == "http" and long_lived(scope):
            await self._serve(scope, receive, send, self.sessions.open(device.id, counted=False))
            return
        post = scope["type"] == "http" and answer_post(scope)
        if not post and (scope["type"] != "http" or not counted(scope)):
            await self.app(scope, receive, send)
            return
        refusal = (
            self.sessions.post_refusal(device.id) if post else self.sessions.refusal(device.id)
        )
        if refusal is not None:
            reason, wait = refusal
            message = f"this device is at its limit of {reason}: wait and try again"
            await send_error(scope, send, TooManyRequests(message, retry_after=wait))
            return
        await self._serve(scope, receive, send, self.sessions.open(device.id, counted=not post))

    async def _serve(self, scope: Scope, receive: Receive, send: Send, entry: OpenRequest) -> None:
        response = _Progress()

        async def tracked(message: Message) -> None:
            response.saw(message)
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except asyncio.CancelledError:
            if not entry.revoked or entry.task is None:
                raise
            entry.task.uncancel()  # this cancellation was ours: end the response cleanly
            await _end_revoked(scope, send, response)
        finally:
            self.sessions.close(entry)


class _Progress:
    __slots__ = ("ended", "event_stream", "started")

    def __init__(self) -> None:
        self.started = self.ended = self.event_stream = False

    def saw(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            for name, value in message.get("headers", []):
                if name.lower() == b"content-type" and value.startswith(b"text/event-stream"):
                    self.event_stream = True
        elif message["type"] == "http.response.body" and not message.get("more_body", False):
            self.ended = True


async def _end_revoked(scope: Scope, send: Send, response: _Progress) -> None:
    if not response.started:
        await send_error(scope, send, Unauthorized(REVOKED))
        return
    if response.ended:
        return
    last = sse_error_frame(Unauthorized(REVOKED)) if response.event_stream else b""
    await send({"type": "http.response.body", "body": last, "more_body": False})


def bearer_token(scope: Scope) -> str | None:
    """The device token from `Authorization: Bearer`, else from the pairing cookie."""
    return authorization_bearer(scope) or cookie_value(scope, COOKIE)


def authorization_bearer(scope: Scope) -> str | None:
    headers = dict(scope.get("headers") or [])
    authorization = headers.get(b"authorization", b"").decode("latin-1")
    if authorization[:7].lower() == "bearer ":
        return authorization[7:].strip() or None
    return None


def cookie_value(scope: Scope, name: str) -> str | None:
    headers = dict(scope.get("headers") or [])
    cookie = SimpleCookie()
    try:
        cookie.load(headers.get(b"cookie", b"").decode("latin-1"))
    except Exception:  # a malformed cookie header is simply no credential
        return None
    morsel = cookie.get(name)
    return morsel.value if morsel else None
