"""`/api/browser-seats`: a browser tab joins the council as a seat, over SSE and POST.

    POST /api/browser-seats                      register: {"ctx_size"?, "model"?} → 201 {id,
                                                 name, label, secret}; the hub picks the name
                                                 (browser-<id>)
    PATCH /api/browser-seats/{id}                {"model"}: the tab now answers with this model
    GET  /api/browser-seats/{id}/tasks           the tab's event stream: `ready`, then `task`
                                                 {task, messages, max_tokens, temperature, seed}
                                                 and `cancel` {task}; the seat is a council
                                                 member exactly while this stream is open
    POST /api/browser-seats/{id}/tasks/{task}    a batch of the answer: {"deltas": [...]}, the
                                                 last with "done": true (and "finish_reason",
                                                 "usage") or "error": "why"; 204, or 404 once
                                                 the task is no longer wanted (stop generating)

`model` is the `/models/<digest>/<name>` path the tab loaded its model from: the hub finds that
file among its hashed catalog files (never a path from the request) and counts the seat's
tokens with it (llama-tokenize), so a round fits prompts to the tab's context by token count.

Every route under `{id}` needs the registration's secret in `X-Council-Seat-Secret` (compared in
constant time); on the LAN listener the device gate has already required a paired device, and a
tab registered from there is labelled "browser (phone)", from the laptop "browser (this tab)".
Bodies are size-limited before they are parsed. Plain SSE and POST, so no WebSocket is needed
(uvicorn runs with ws="none").
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from council.deliberation.browser_seat import BrowserSeat
from council.deliberation.registry import SeatRegistry
from council.deliberation.seats import SeatFailure
from council.engine.binary import EngineBinary
from council.engine.tokenizer import Tokenizer
from council.errors import BadRequest, Conflict, Forbidden, NotFound, TooManyRequests
from council.models.digests import ModelFiles
from council.server import bodies
from council.server.api import HEARTBEAT, read_json
from council.server.roles import device_id

SECRET_HEADER = "x-council-seat-secret"  # noqa: S105 - a header name, not a secret
MAX_REGISTRATION = 4096
MAX_BATCH = 256 * 1024
THIS_TAB = "browser (this tab)"
PHONE = "browser (phone)"
_MODEL_PATH = re.compile(r"/models/(?P<digest>[0-9a-f]{16})/(?P<name>[^/]+)")


def browser_seat_routes(registry: SeatRegistry, files: ModelFiles | None = None) -> list[Route]:
    seats = registry.browser

    @bodies.accepts(bodies.BROWSER_SEAT)
    async def register(request: Request) -> Response:
        """Register this tab as a seat; the answer holds the secret its other requests need."""
        body = await read_json(request, limit=MAX_REGISTRATION)
        ctx_size = body.get("ctx_size")
        if ctx_size is not None and (
            not isinstance(ctx_size, int) or isinstance(ctx_size, bool) or ctx_size < 256
        ):
            raise BadRequest("'ctx_size' must be a whole number of at least 256")
        model = tab_model(body, files, registry.fleet.binary)
        device = device_id(request)
        try:
            label = THIS_TAB if device is None else PHONE
            seat = seats.register(label, ctx_size, set(registry), device)
        except SeatFailure as exc:
            raise TooManyRequests(str(exc)) from None
        if model is not None:
            seat.model, seat.tokenizer = model
        return JSONResponse(
            {"id": seat.id, "name": seat.name, "label": seat.label, "secret": seat.secret},
            status_code=201,
        )

    async def tasks(request: Request) -> Response:
        """The tab's task stream; closing it takes the seat out of the council."""
        seat = owned(request)
        if seat.connected or seat.gone:
            raise Conflict(f"{seat.name} has a task stream already: register again")
        seat.connected = True
        return StreamingResponse(
            task_stream(registry, seat),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )

    @bodies.accepts(bodies.BROWSER_MODEL)
    async def change_model(request: Request) -> Response:
        """The tab swapped models (the larger one took over): count with the new one."""
        seat = owned(request)
        body = await read_json(request, limit=MAX_REGISTRATION)
        if body.get("model") is None:
            raise BadRequest("'model' is required")
        model = tab_model(body, files, registry.fleet.binary)
        if model is not None:
            seat.model, seat.tokenizer = model
        return Response(status_code=204)

    @bodies.accepts(bodies.TASK_ANSWER)
    async def answer(request: Request) -> Response:
        """A batch of a task's answer, in order; the last says done or error."""
        seat = owned(request)
        update = await read_json(request, limit=MAX_BATCH)
        deltas = update.get("deltas", [])
        if not isinstance(deltas, list) or not all(isinstance(d, str) for d in deltas):
            raise BadRequest("'deltas' must be a list of strings")
        if not seat.deliver(request.path_params["task"], update):
            raise NotFound("this task was cancelled or has ended: stop answering it")
        return Response(status_code=204)

    def owned(request: Request) -> BrowserSeat:
        seat = seats.get(request.path_params["id"])
        if seat is None or seat.gone:
            raise NotFound("no such browser seat: register again")
        if not seat.owned_by(request.headers.get(SECRET_HEADER, "")):
            raise Forbidden("this is not the secret this seat registered with")
        return seat

    return [
        Route("/api/browser-seats", register, methods=["POST"]),
        Route("/api/browser-seats/{id}", change_model, methods=["PATCH"]),
        Route("/api/browser-seats/{id}/tasks", tasks, methods=["GET"]),
        Route("/api/browser-seats/{id}/tasks/{task}", answer, methods=["POST"]),
    ]


async def task_stream(registry: SeatRegistry, seat: BrowserSeat) -> AsyncIterator[bytes]:
    """`ready`, then the seat's tasks and cancels as they come; the seat leaves when it ends."""
    try:
        registry.join(seat)
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
        registry.leave(seat)  # the tab went away: its seat leaves, its tasks fail


def tab_model(
    body: dict[str, Any], files: ModelFiles | None, binary: EngineBinary
) -> tuple[str, Tokenizer | None] | None:
    """The catalog path of the model `body["model"]` names, and its tokenizer (None for an
    engine built without llama-tokenize); None when no model is named."""
    model = body.get("model")
    if model is None:
        return None
    match = _MODEL_PATH.fullmatch(model) if isinstance(model, str) else None
    found = files.lookup(match["digest"], match["name"]) if match and files else None
    if found is None:
        raise BadRequest("'model' must be the /models/… path of a model this hub serves")
    path, _, digest = found
    return digest.path, Tokenizer.beside(binary, path)


def sse(kind: str, data: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode()
