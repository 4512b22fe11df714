"""`/api`: conversations, council rounds streamed over SSE, seats and the council's defaults.

Every error is raised as a `CouncilError` and rendered by `server/http.py` as a JSON body
`{"error": {"status", "message"}}` with the status its class declares. Request bodies are read
with a size limit before they are parsed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from council.deliberation.events import Event
from council.deliberation.registry import SeatKind, SeatRegistry
from council.deliberation.service import CouncilService, RunHandle
from council.errors import BadRequest, NotFound, PayloadTooLarge
from council.models.catalog import scan
from council.models.digests import ModelFiles
from council.server import bodies
from council.server.roles import device_id
from council.settings import RoundDefaults, ranges
from council.store import conversations as store
from council.store import db as database
from council.store import export
from council.store.access import Store
from council.tasks import settled

MAX_BODY = 1024 * 1024
HEARTBEAT = 15.0  # seconds of silence before an SSE comment keeps proxies and clients awake


@dataclass(frozen=True, slots=True)
class ApiContext:
    db: Store
    council: CouncilService
    seats: SeatRegistry
    defaults: Callable[[], RoundDefaults]
    save_defaults: Callable[[RoundDefaults], None]
    model_files: ModelFiles | None = None  # the hashed catalog files behind /models/…


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    """The request body, refused as soon as it is known to be over `limit`."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the request body is larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"the request body is larger than {limit} bytes")
    return bytes(body)


async def read_json(request: Request, limit: int = MAX_BODY) -> dict[str, Any]:
    """The body as a JSON object, checked against the schema its endpoint declares."""
    value = parse_object(await read_body(request, limit))
    bodies.check_body(request.scope.get("endpoint"), value)
    return value


def parse_object(body: bytes) -> dict[str, Any]:
    """A JSON object that the rest of the hub can take as it is: nested at most
    `bodies.MAX_DEPTH` deep (the parser's own limit is Python's recursion limit, and a
    `RecursionError` is no answer), and every string valid Unicode (JSON's escapes can spell a
    lone surrogate, which no UTF-8 file or SQLite text can hold)."""
    try:
        value = json.loads(body or b"{}")
    except RecursionError:
        raise BadRequest("the request body is nested too deeply") from None
    except ValueError:
        raise BadRequest("the request body is not valid JSON") from None
    if not isinstance(value, dict):
        raise BadRequest("the request body must be a JSON object")
    _check_shape(value)
    return value


def _check_shape(value: dict[str, Any]) -> None:
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if depth > bodies.MAX_DEPTH:
            raise BadRequest(f"the request body is nested over {bodies.MAX_DEPTH} levels deep")
        if isinstance(item, dict):
            pending += [(key, depth) for key in item]
            pending += [(child, depth + 1) for child in item.values()]
        elif isinstance(item, list):
            pending += [(child, depth + 1) for child in item]
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise BadRequest("the request body holds text that is not valid Unicode") from None


class Api:
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx
        self.db = ctx.db

    async def list_conversations(self, request: Request) -> Response:
        """List conversations, newest first; `?search=` matches titles, questions, answers."""
        search = request.query_params.get("search") or None
        found = await self.db.read(store.list_conversations, search, device_id=device_id(request))
        return JSONResponse({"conversations": found})

    @bodies.accepts(bodies.TITLE)
    async def create_conversation(self, request: Request) -> Response:
        """Create an empty conversation."""
        body = await read_json(request)
        title = str(body.get("title") or "")
        conversation_id = await self.db.write(store.create_conversation, title, device_id(request))
        conversation = await self.db.read(store.get_conversation, conversation_id)
        return JSONResponse(conversation, status_code=201)

    async def _visible(self, request: Request) -> str:
        """The path's conversation id, once it is known to be the caller's to see (a device
        sees only those it started; every other id is 404 to it)."""
        conversation_id: str = request.path_params["id"]
        await self.db.read(store.require_conversation, conversation_id, device_id(request))
        return conversation_id

    async def get_conversation(self, request: Request) -> Response:
        """A conversation with every message and every seat's output."""
        conversation_id = await self._visible(request)
        return JSONResponse(await self.db.read(store.get_conversation, conversation_id))

    @bodies.accepts(bodies.RENAME)
    async def rename_conversation(self, request: Request) -> Response:
        """Rename a conversation: `{"title": "..."}`."""
        conversation_id = await self._visible(request)
        title = str((await read_json(request)).get("title") or "").strip()
        if not title:
            raise BadRequest("the title is empty")
        await self.db.write(store.rename_conversation, conversation_id, title)
        return JSONResponse(await self.db.read(store.get_conversation, conversation_id))

    async def delete_conversation(self, request: Request) -> Response:
        """Delete a conversation and everything in it."""
        await self.db.write(store.delete_conversation, await self._visible(request))
        return Response(status_code=204)

    async def export_conversation(self, request: Request) -> Response:
        """Download a conversation: `?format=md` (default) or `?format=json`."""
        conversation = await self.db.read(store.get_conversation, await self._visible(request))
        fmt = request.query_params.get("format", "md")
        name = f"council-{conversation['id']}"
        if fmt == "json":
            return JSONResponse(
                export.to_json_document(conversation),
                headers={"content-disposition": f'attachment; filename="{name}.json"'},
            )
        if fmt == "md":
            return Response(
                export.to_markdown(conversation),
                media_type="text/markdown; charset=utf-8",
                headers={"content-disposition": f'attachment; filename="{name}.md"'},
            )
        raise BadRequest(f"unknown export format {fmt!r}: use md or json")

    @bodies.accepts(bodies.IMPORT)
    async def import_conversation(self, request: Request) -> Response:
        """Store a JSON export as a new conversation."""
        document = await read_json(request, limit=64 * MAX_BODY)
        try:
            conversation_id = await self.db.write(
                store.import_conversation, export.from_json_document(document)
            )
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        conversation = await self.db.read(store.get_conversation, conversation_id)
        return JSONResponse(conversation, status_code=201)

    @bodies.accepts(bodies.QUESTION)
    async def ask(self, request: Request) -> Response:
        """Run a council round on a question in this conversation; the response is its SSE
        event stream."""
        conversation_id = await self._visible(request)  # 404 before it starts
        return await self._round(request, conversation_id)

    @bodies.accepts(bodies.QUESTION)
    async def ask_new(self, request: Request) -> Response:
        """Run a council round on a question in a new conversation, made only once the question
        and its options are accepted (`x-council-conversation` names it; so does every event)."""
        return await self._round(request, None)

    async def _round(self, request: Request, conversation_id: str | None) -> Response:
        body = await read_json(request)
        question = body.get("question")
        if not isinstance(question, str):
            raise BadRequest("'question' must be a string")
        options = self.ctx.council.options(body, device_id=device_id(request))
        handle = await self.ctx.council.start(
            conversation_id, question, options, device_id=device_id(request)
        )
        return StreamingResponse(
            _sse(handle, request),
            media_type="text/event-stream",
            headers={
                "cache-control": "no-store",
                "x-accel-buffering": "no",
                "x-council-message": handle.message_id,
                "x-council-conversation": handle.conversation_id,
            },
        )

    async def stop(self, request: Request) -> Response:
        """Stop a running round; what was produced so far is kept as cancelled."""
        handle = self.ctx.council.running.get(request.path_params["id"])
        if handle is None or not await self.db.read(
            store.is_visible, handle.conversation_id, device_id(request)
        ):
            raise NotFound(f"no running round {request.path_params['id']!r}")
        handle.stop()
        return JSONResponse({"stopping": handle.message_id}, status_code=202)

    async def list_seats(self, request: Request) -> Response:
        """Every seat: kind, model, size, quantization, context, state, last answer's tokens/s
        (never a token); `disabled`: the local seats config.toml keeps switched off (the
        owner's view only)."""
        disabled = self.ctx.seats.disabled() if device_id(request) is None else []
        return JSONResponse({"seats": await self._seats(request), "disabled": disabled})

    async def _seats(self, request: Request) -> list[dict[str, Any]]:
        """The seats the caller's rounds may use: a device does not see another's tabs."""
        speeds = await self.db.read(store.last_speeds)
        visible = set(self.ctx.council.roster(device_id(request))[0])
        return [
            {**seat, "tokens_per_second": speeds.get(seat["name"])}
            for seat in self.ctx.seats.view()
            if seat["name"] in visible
        ]

    async def get_seat(self, request: Request) -> Response:
        """One seat, and for a local one `events`: what its engine did lately (spawned,
        healthy, crashed, failed, stopped), oldest first."""
        for seat in await self._seats(request):
            if seat["name"] == request.path_params["name"]:
                if seat["kind"] == SeatKind.LOCAL:
                    seat["events"] = await self.db.read(database.engine_events, seat["name"])
                return JSONResponse(seat)
        raise NotFound(f"no seat {request.path_params['name']!r}")

    @bodies.accepts(bodies.NEW_SEAT)
    async def add_seat(self, request: Request) -> Response:
        """Add a seat: a model from the stick (`{"kind": "local", "model", "name", "ctx_size"}`,
        its engine starts at once) or a remote one (`{"name", "url", "model", "token",
        "ctx_size"}`)."""
        body = await read_json(request)
        seats = self.ctx.seats
        if body.get("kind") == "local":
            added = seats.add_local(body, await asyncio.to_thread(scan, seats.folder.models))
        else:
            added = seats.add_remote(body)
        return JSONResponse(added, status_code=201)

    @bodies.accepts(bodies.SEAT_CHANGE)
    async def update_seat(self, request: Request) -> Response:
        """Change a remote seat's URL, model, token, context size or `enabled`; switch a local
        seat on or off (`{"enabled": false}`: its engine stops, config.toml keeps it)."""
        name = request.path_params["name"]
        body = await read_json(request)
        seats = self.ctx.seats
        if not seats.is_local(name):
            return JSONResponse(seats.update_remote(name, body))
        changed = sorted(set(body) - {"enabled", "name", "kind", "has_token"})
        if changed or body.get("name", name) != name:
            raise BadRequest(
                f"{name} is a local seat: only 'enabled' changes here; its model and options "
                "live in config.toml"
            )
        if "enabled" not in body:
            raise BadRequest("'enabled' is required")
        return JSONResponse(await seats.set_local_enabled(name, bool(body["enabled"])))

    async def restart_seat(self, request: Request) -> Response:
        """Start a local seat's engine afresh (seats that share the engine restart with it);
        202: the engine is starting, `/api/seats/{name}` says when it is healthy."""
        restarted = await self.ctx.seats.restart(request.path_params["name"])
        return JSONResponse(restarted, status_code=202)

    async def remove_seat(self, request: Request) -> Response:
        """Remove a seat (a local seat's engine is stopped; its model file stays)."""
        name = request.path_params["name"]
        if self.ctx.seats.is_local(name):
            await self.ctx.seats.remove_local(name)
        else:
            self.ctx.seats.remove_remote(name)
        return Response(status_code=204)

    async def list_models(self, request: Request) -> Response:
        """The GGUF models on the stick, which seats use them, and where a browser downloads
        them: `url` (`/models/<digest>/<name>`, null until the file is hashed) and `urls` (every
        shard's URL, in order, for a split set; null until all are hashed). A split set's `url`
        is its first shard's, under whose digest every shard is served too (what wllama loads)."""
        used: dict[str, list[str]] = {}
        for seat in self.ctx.seats.fleet.planned:
            used.setdefault(seat.config.model, []).append(seat.config.name)
        models = []
        unhashed = False
        # Reading every file's header: off the loop, which a slow stick must never hold up.
        for model in await asyncio.to_thread(scan, self.ctx.seats.folder.models):
            urls = self._urls(model.shards or (model.path,)) if model.valid else None
            unhashed |= model.valid and urls is None
            models.append(
                {
                    **model.to_dict(),
                    "seats": used.get(model.path, []),
                    "url": urls[0] if urls else None,
                    "urls": urls,
                }
            )
        if unhashed and self.ctx.model_files is not None:
            self.ctx.model_files.refresh_soon()  # a file dropped in since the hub started
        return JSONResponse({"models": models})

    def _urls(self, paths: tuple[str, ...]) -> list[str] | None:
        files = self.ctx.model_files
        urls = [files.url_of(path) for path in paths] if files is not None else [None]
        return None if None in urls else [url for url in urls if url is not None]

    async def get_defaults(self, request: Request) -> Response:
        """The council's defaults: mode, seats, chair, sampling, timeouts, and `ranges`: the
        interval each number must lie in (`{"max_tokens": {"min": 1, "max": 32768}, ...}`)."""
        return JSONResponse(_defaults_body(self.ctx.defaults()))

    @bodies.accepts(bodies.DEFAULTS)
    async def put_defaults(self, request: Request) -> Response:
        """Change the defaults (any subset of the fields); they are saved in config.toml.
        `ranges` is read-only: a body that sends back what GET answered is accepted."""
        body = await read_json(request)
        body.pop("ranges", None)
        current = _defaults_dict(self.ctx.defaults())
        unknown = sorted(set(body) - set(current))
        if unknown:
            raise BadRequest(f"unknown setting {unknown[0]!r}")
        merged = {**current, **body}
        options = self.ctx.council.options(merged)  # validates names, ranges and the mode
        updated = RoundDefaults(
            mode=options.mode.value,
            chair=str(merged["chair"] or ""),
            seats=tuple(merged["seats"] or ()),
            max_tokens=options.sampling.max_tokens,
            temperature=options.sampling.temperature,
            stage_timeout=options.stage_timeout,
            exclude_self=options.exclude_self,
            layers=options.layers,
            extractor=options.extractor,
            review_ties=options.review_ties,
        )
        self.ctx.save_defaults(updated)
        return JSONResponse(_defaults_body(updated))

    def routes(self) -> list[Route]:
        return [
            Route("/api/conversations", self.list_conversations, methods=["GET"]),
            Route("/api/conversations", self.create_conversation, methods=["POST"]),
            Route("/api/conversations/import", self.import_conversation, methods=["POST"]),
            Route("/api/conversations/{id}", self.get_conversation, methods=["GET"]),
            Route("/api/conversations/{id}", self.rename_conversation, methods=["PATCH"]),
            Route("/api/conversations/{id}", self.delete_conversation, methods=["DELETE"]),
            Route("/api/conversations/{id}/export", self.export_conversation, methods=["GET"]),
            Route("/api/conversations/{id}/messages", self.ask, methods=["POST"]),
            Route("/api/messages", self.ask_new, methods=["POST"]),
            Route("/api/messages/{id}/stop", self.stop, methods=["POST"]),
            Route("/api/seats", self.list_seats, methods=["GET"]),
            Route("/api/seats", self.add_seat, methods=["POST"]),
            Route("/api/seats/{name}", self.get_seat, methods=["GET"]),
            Route("/api/seats/{name}", self.update_seat, methods=["PATCH"]),
            Route("/api/seats/{name}", self.remove_seat, methods=["DELETE"]),
            Route("/api/seats/{name}/restart", self.restart_seat, methods=["POST"]),
            Route("/api/models", self.list_models, methods=["GET"]),
            Route("/api/council/defaults", self.get_defaults, methods=["GET"]),
            Route("/api/council/defaults", self.put_defaults, methods=["PUT"]),
        ]


async def _sse(handle: RunHandle, request: Request) -> AsyncIterator[bytes]:
    """The round's events as SSE; a client that goes away stops the round (and its engines).

    Silence gets a comment every `HEARTBEAT` seconds. The wait for the next event is one task
    that outlives each heartbeat: a timeout must never cancel it, because cancelling a pending
    `anext()` throws into the round's event generator and stops the round. Only leaving (the
    client went away, or the response is closed) ends it, and then the pending read is awaited
    before the generator is closed, so it is never closed while it runs.

    Leaving stops the round before anything is awaited: Starlette's own disconnect listener
    cancels the response with an anyio scope, which cancels again at every await, so the
    clean-up below may be cut short (and the round would otherwise run on, engines generating,
    until the garbage collector closed the abandoned event generator).
    """
    watcher = asyncio.create_task(_stop_on_disconnect(handle, request))
    events = handle.events()
    pending: asyncio.Task[Event | None] | None = None
    ended = False

    async def next_event() -> Event | None:  # None: the round has ended
        return await anext(events, None)

    try:
        while True:
            if pending is None:
                pending = asyncio.create_task(next_event())
            done, _ = await asyncio.wait({pending}, timeout=HEARTBEAT)
            if not done:
                yield b": ping\n\n"
                continue
            event, pending = pending.result(), None
            if event is None:
                ended = True
                return
            yield event.sse()
    finally:
        watcher.cancel()
        if not ended:
            handle.stop()
        if pending is not None:
            pending.cancel()  # the generator's own clean-up stops the round
            await settled(pending)
        await events.aclose()


async def _stop_on_disconnect(handle: RunHandle, request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            handle.stop()
            return


def _defaults_dict(defaults: RoundDefaults) -> dict[str, Any]:
    return {**asdict(defaults), "seats": list(defaults.seats)}


def _defaults_body(defaults: RoundDefaults) -> dict[str, Any]:
    allowed = {name: {"min": r.low, "max": r.high} for name, r in ranges(RoundDefaults).items()}
    return {**_defaults_dict(defaults), "ranges": allowed}
