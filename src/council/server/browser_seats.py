"""`/api/browser-seats`: a browser tab joins the council as a seat, over SSE and POST.

    POST /api/browser-seats                      register: {"ctx_size"?} → 201 {id, name, label,
                                                 secret}; the hub picks the name (browser-<id>)
    GET  /api/browser-seats/{id}/tasks           the tab's event stream: `ready`, then `task`
                                                 {task, messages, max_tokens, temperature, seed}
                                                 and `cancel` {task}; the seat is a council
                                                 member exactly while this stream is open
    POST /api/browser-seats/{id}/tasks/{task}    a batch of the answer: {"deltas": [...]}, the
                                                 last with "done": true (and "finish_reason",
                                                 "usage") or "error": "why"; 204, or 404 once
                                                 the task is no longer wanted (stop generating)

Both routes under `{id}` need the registration's secret in `X-Council-Seat-Secret` (compared in
constant time); on the LAN listener the device gate has already required a paired device, and a
tab registered from there is labelled "browser (phone)", from the laptop "browser (this tab)".
Bodies are size-limited before they are parsed. Plain SSE and POST, so no WebSocket is needed
(uvicorn runs with ws="none").
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from council.deliberation.browser_seat import BrowserSeat
from council.deliberation.roster import Roster
from council.deliberation.seats import SeatFailure
from council.server.api import HEARTBEAT, error_response, read_json

SECRET_HEADER = "x-council-seat-secret"  # noqa: S105 - a header name, not a secret
MAX_REGISTRATION = 4096
MAX_BATCH = 256 * 1024
THIS_TAB = "browser (this tab)"
PHONE = "browser (phone)"


def browser_seat_routes(roster: Roster) -> list[Route]:
    seats = roster.browser

    async def register(request: Request) -> Response:
        """Register this tab as a seat; the answer holds the secret its other requests need."""
        body = await read_json(request, limit=MAX_REGISTRATION)
        ctx_size = body.get("ctx_size")
        if ctx_size is not None and (
            not isinstance(ctx_size, int) or isinstance(ctx_size, bool) or ctx_size < 256
        ):
            return error_response(400, "'ctx_size' must be a whole number of at least 256")
        from_device = "device" in request.scope.get("state", {})
        try:
            seat = seats.register(PHONE if from_device else THIS_TAB, ctx_size, set(roster))
        except SeatFailure as exc:
            return error_response(429, str(exc))
        return JSONResponse({"id": seat.id, "name": seat.name, "label": seat.label,
                             "secret": seat.secret}, status_code=201)  # fmt: skip

    async def tasks(request: Request) -> Response:
        """The tab's task stream; closing it takes the seat out of the council."""
        seat = owned(request)
        if isinstance(seat, Response):
            return seat
        if seat.connected or seat.gone:
            return error_response(409, f"{seat.name} has a task stream already: register again")
        seat.connected = True
        return StreamingResponse(
            stream(seat),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )

    async def answer(request: Request) -> Response:
        """A batch of a task's answer, in order; the last says done or error."""
        seat = owned(request)
        if isinstance(seat, Response):
            return seat
        update = await read_json(request, limit=MAX_BATCH)
        deltas = update.get("deltas", [])
        if not isinstance(deltas, list) or not all(isinstance(d, str) for d in deltas):
            return error_response(400, "'deltas' must be a list of strings")
        if not seat.deliver(request.path_params["task"], update):
            return error_response(404, "this task was cancelled or has ended: stop answering it")
        return Response(status_code=204)

    def owned(request: Request) -> BrowserSeat | Response:
        seat = seats.get(request.path_params["id"])
        if seat is None or seat.gone:
            return error_response(404, "no such browser seat: register again")
        if not seat.owned_by(request.headers.get(SECRET_HEADER, "")):
            return error_response(403, "this is not the secret this seat registered with")
        return seat

    async def stream(seat: BrowserSeat) -> AsyncIterator[bytes]:
        try:
            yield sse("ready", {"seat": seat.id, "name": seat.name, "label": seat.label})
            while True:
                try:
                    event = await asyncio.wait_for(seat.next_event(), timeout=HEARTBEAT)
                except TimeoutError:
                    yield b": ping\n\n"
                    continue
                if event is None:
                    return
                yield sse(*event)
        finally:
            seats.remove(seat)  # the tab went away: its seat leaves, its tasks fail

    return [
        Route("/api/browser-seats", register, methods=["POST"]),
        Route("/api/browser-seats/{id}/tasks", tasks, methods=["GET"]),
        Route("/api/browser-seats/{id}/tasks/{task}", answer, methods=["POST"]),
    ]


def sse(kind: str, data: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode()
