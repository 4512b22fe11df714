"""`/v1`: the OpenAI-compatible surface. Every seat is a model, and so is the council.

`model: "council"` (or `"council:moa"`, `"council:vote"`, `"council:synthesize"`) runs a council
round on the last user message (or the prompt, on `/v1/completions`), with the earlier
user/assistant turns as history, stores it like any other conversation, and answers with the
chair's text, streamed as chunks when asked. Any other model name is a seat: the request body goes
to that seat's engine unchanged, with the engine's own per-run key (which never leaves the host),
and the engine's answer comes back byte for byte as it arrives: `Passthrough` is pure ASGI, with
no response object and no buffering in between, so SSE comments and pings pass too. A client
that goes away closes the engine's stream, which frees its slot.

Errors use OpenAI's shape, `{"error": {"message", "type", "param", "code"}}` (rendered by
`server/http.py` from the error's class), so SDKs raise their usual exceptions.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from council.deliberation.events import Event
from council.deliberation.peer_seats import PeerRoute
from council.deliberation.service import CouncilService, RunHandle
from council.engine.process import engine_headers
from council.engine.wire import EngineAnswer, EngineGone, send_request
from council.errors import BadRequest, CouncilError, NoAnswer, NotFound
from council.server import bodies
from council.server.api import parse_object, read_body
from council.server.http import error_response, sse_error_frame
from council.server.metrics import Metrics, device_label
from council.server.roles import device_id
from council.store import conversations as store
from council.types import Endpoint, Mode

COUNCIL_MODEL = "council"
BODY_LIMIT = 16 * 1024 * 1024  # long contexts and embedding batches are larger than /api's 1 MB
PASSED_HEADERS = frozenset(
    {b"content-type", b"content-length", b"content-encoding", b"cache-control"}
)
TAIL = 4096  # the end of an answer, where llama-server reports its token counts
Target = Callable[[str], Endpoint]
PeerRouter = Callable[[str], "PeerRoute | None"]


class OpenAIApi:
    def __init__(
        self,
        council: CouncilService,
        seat_names: Callable[[], list[str]],
        target: Target,
        metrics: Metrics | None = None,
        *,
        peer_names: Callable[[], list[str]] = list,
        peer_route: PeerRouter = lambda name: None,
    ) -> None:
        self.council = council
        self.seat_names = seat_names
        self.target = target
        self.metrics = metrics or Metrics()
        self.peer_names = peer_names  # the seats of paired hubs (peer_seats.py) that answer
        self.peer_route = peer_route

    def routes(self) -> list[Route]:
        return [
            Route("/v1/models", self.models, methods=["GET"]),
            *(
                Route(path, Passthrough(self, path), methods=["POST"])
                for path in ("/v1/chat/completions", "/v1/completions", "/v1/embeddings")
            ),
        ]

    async def models(self, request: Request) -> Response:
        created = int(time.time())
        names = [COUNCIL_MODEL, *(f"{COUNCIL_MODEL}:{m.value}" for m in Mode), *self.seat_names()]
        names += self.peer_names()
        return JSONResponse(
            {
                "object": "list",
                "data": [
                    {"id": name, "object": "model", "created": created, "owned_by": "council"}
                    for name in names
                ],
            }
        )

    async def council_answer(
        self, path: str, body: dict[str, Any], model: str, device_id: str | None = None
    ) -> Response:
        if path == "/v1/embeddings":
            raise BadRequest("the council does not make embeddings: ask a seat (see /v1/models)")
        chat = path == "/v1/chat/completions"
        question, history = _conversation(body.get("messages")) if chat else _prompt(body)
        request: dict[str, Any] = {"mode": model.partition(":")[2] or None}
        if isinstance(body.get("max_tokens"), int):
            request["max_tokens"] = body["max_tokens"]
        if isinstance(body.get("temperature"), int | float):
            request["temperature"] = body["temperature"]
        options = self.council.options(request, device_id=device_id)
        conversation_id = await self.council.db.write(
            store.create_conversation, question, device_id
        )
        await self.council.db.write(store.seed_history, conversation_id, history)
        handle = await self.council.start(conversation_id, question, options)
        shape = _Shape(f"{'chatcmpl' if chat else 'cmpl'}-{secrets.token_hex(12)}", model, chat)
        if body.get("stream"):
            return StreamingResponse(
                _stream_chunks(handle, shape),
                media_type="text/event-stream",
                headers={"cache-control": "no-store"},
            )
        done: dict[str, Any] = {}
        async for event in handle.events():
            if event.type == "done":
                done = event.data
        if done.get("status") != "done":
            raise NoAnswer(f"the council could not answer: {done.get('error')}")
        return JSONResponse(shape.completion(done["answer"], _beside(done)))


@bodies.accepts(bodies.OPENAI)
class Passthrough:
    """One `/v1` POST route, as a pure ASGI app: the council, or a seat's engine, answers."""

    def __init__(self, api: OpenAIApi, path: str) -> None:
        self.api = api
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        api = self.api
        try:
            body = await read_body(Request(scope, receive), BODY_LIMIT)
            payload = parse_object(body)
            bodies.check_body(self, payload)
            model = payload.get("model")
            if not isinstance(model, str) or not model:
                raise BadRequest("'model' is required")
            if model == COUNCIL_MODEL or model.startswith(f"{COUNCIL_MODEL}:"):
                response = await api.council_answer(self.path, payload, model, device_id(scope))
            elif (route := api.peer_route(model)) is not None:
                await self._to_peer(
                    scope, receive, send, payload=payload, model=model, route=route, started=started
                )
                return
            elif model not in api.seat_names():
                raise NotFound(f"the model {model!r} does not exist: see /v1/models")
            else:
                target = api.target(model)  # raises SeatError when the seat cannot answer
                stream = payload.get("stream") is True
                await self._forward(
                    scope,
                    receive,
                    send,
                    body=body,
                    model=model,
                    target=target,
                    started=started,
                    stream=stream,
                )
                return
        except CouncilError as exc:
            response = error_response(self.path, exc)
        await response(scope, receive, send)

    async def _forward(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        body: bytes,
        model: str,
        target: Endpoint,
        started: float,
        stream: bool,
    ) -> None:
        base_url, key = target
        where = urlsplit(base_url)
        headers = {**engine_headers(key, stream=stream), "content-type": "application/json"}
        try:
            answer = await send_request(
                where.hostname or "127.0.0.1", where.port or 80, self.path, body, headers
            )
        except EngineGone as exc:
            error = NoAnswer(f"the seat {model!r} did not answer: {exc}")
            await error_response(self.path, error)(scope, receive, send)
            return

        async def hang_up_when_the_client_goes() -> None:
            message: Message = {}
            while message.get("type") != "http.disconnect":
                message = await receive()
            answer.close()  # the engine stops generating and frees the slot

        watcher = asyncio.ensure_future(hang_up_when_the_client_goes())
        tail = bytearray()
        try:
            await self._pump(answer, send, tail, model, started)
        except EngineGone as exc:
            if not watcher.done():  # the engine died mid-answer: say so, and end the answer
                error = NoAnswer(f"the seat {model!r} stopped answering: {exc}")
                last = sse_error_frame(error) if stream else b""
                await send({"type": "http.response.body", "body": last, "more_body": False})
        finally:
            watcher.cancel()
            answer.close()
        prompt, completion = _usage(bytes(tail))
        self.api.metrics.usage(model, device_label(scope), prompt, completion)

    async def _to_peer(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        payload: dict[str, Any],
        model: str,
        route: PeerRoute,
        started: float,
    ) -> None:
        """A peer hub's seat: the request goes to that hub's own `/v1` (TLS to its pinned CA,
        this hub's device token), the model named as the peer names it, and its answer comes
        back as it arrives. A client that goes away closes the peer's stream too."""
        body = json.dumps({**payload, "model": route.seat}).encode()
        request = route.client.build_request(
            "POST",
            f"{route.url}{self.path}",
            content=body,
            headers={"authorization": f"Bearer {route.token}", "content-type": "application/json"},
        )
        try:
            response = await route.client.send(request, stream=True)
        except httpx.HTTPError as exc:
            error = NoAnswer(f"the seat {model!r} did not answer: {exc}")
            await error_response(self.path, error)(scope, receive, send)
            return

        async def hang_up_when_the_client_goes() -> None:
            message: Message = {}
            while message.get("type") != "http.disconnect":
                message = await receive()
            await response.aclose()

        watcher = asyncio.ensure_future(hang_up_when_the_client_goes())
        headers = [
            (k.encode(), v.encode())
            for k, v in response.headers.items()
            if k.encode() in PASSED_HEADERS - {b"content-length", b"content-encoding"}
        ]
        await send(
            {"type": "http.response.start", "status": response.status_code, "headers": headers}
        )
        first = True
        try:
            async for chunk in response.aiter_bytes():
                if first:
                    self.api.metrics.first_token(model, time.perf_counter() - started)
                    first = False
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except httpx.HTTPError:
            pass  # the peer went away mid-answer: the answer ends here
        finally:
            watcher.cancel()
            await response.aclose()
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _pump(
        self, answer: EngineAnswer, send: Send, tail: bytearray, model: str, started: float
    ) -> None:
        headers = [(k, v) for k, v in answer.headers if k in PASSED_HEADERS]
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        first = True
        async for chunk, last in answer.body():
            if first:
                self.api.metrics.first_token(model, time.perf_counter() - started)
                first = False
            await send({"type": "http.response.body", "body": chunk, "more_body": not last})
            tail += chunk
            if len(tail) > 2 * TAIL:
                del tail[:-TAIL]


_COUNT = {
    "prompt": re.compile(rb'"(?:prompt_tokens|prompt_n)"\s*:\s*(\d+)'),
    "completion": re.compile(rb'"(?:completion_tokens|predicted_n)"\s*:\s*(\d+)'),
}


def _usage(tail: bytes) -> tuple[int, int]:
    """The token counts llama-server reports at the end of an answer (`usage` or `timings`)."""
    counts = []
    for pattern in (_COUNT["prompt"], _COUNT["completion"]):
        found = pattern.findall(tail)
        counts.append(int(found[-1]) if found else 0)
    return counts[0], counts[1]


def _conversation(messages: Any) -> tuple[str, list[tuple[str, str]]]:
    """The question (last user message) and the earlier user/assistant pairs."""
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty list")
    turns = []
    for message in messages:
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise BadRequest("each message needs a 'role' and 'content'")
        content = message.get("content")
        if isinstance(content, list):  # content parts: keep the text ones
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if message["role"] in {"user", "assistant"} and isinstance(content, str):
            turns.append((message["role"], content))
    if not turns or turns[-1][0] != "user":
        raise BadRequest("the last message must be the user's question")
    history, pending = [], None
    for role, content in turns[:-1]:
        if role == "user":
            pending = content
        elif pending is not None:
            history.append((pending, content))
            pending = None
    return turns[-1][1], history


def _prompt(body: dict[str, Any]) -> tuple[str, list[tuple[str, str]]]:
    """`/v1/completions`: the prompt is the question, with no history."""
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1:
        prompt = prompt[0]
    if not isinstance(prompt, str) or not prompt.strip():
        raise BadRequest("'prompt' must be one non-empty string for the council")
    return prompt, []


class _Shape:
    """How the council's answer is dressed: chat completion or text completion."""

    def __init__(self, completion_id: str, model: str, chat: bool) -> None:
        self.id, self.model, self.chat = completion_id, model, chat
        self.created = int(time.time())

    def chunk(
        self, text: str | None, finish: str | None = None, council: dict[str, Any] | None = None
    ) -> bytes:
        choice: dict[str, Any] = {"index": 0, "finish_reason": finish}
        if self.chat:
            role = {"role": "assistant"} if text == "" else {}
            choice["delta"] = {} if text is None else {**role, "content": text}
        else:
            choice["text"] = text or ""
        payload = {
            "id": self.id,
            "object": "chat.completion.chunk" if self.chat else "text_completion",
            "created": self.created,
            "model": self.model,
            "choices": [choice],
            **({"council": council} if council else {}),
        }
        return f"data: {json.dumps(payload)}\n\n".encode()

    def completion(self, answer: str, council: dict[str, Any] | None = None) -> dict[str, Any]:
        choice: dict[str, Any] = {"index": 0, "finish_reason": "stop"}
        if self.chat:
            choice["message"] = {"role": "assistant", "content": answer}
        else:
            choice["text"] = answer
        return {
            "id": self.id,
            "object": "chat.completion" if self.chat else "text_completion",
            "created": self.created,
            "model": self.model,
            "choices": [choice],
            **({"council": council} if council else {}),
        }


def _beside(done: dict[str, Any]) -> dict[str, Any] | None:
    """What travels beside the answer's text: a vote's tally (the text is the winner alone)."""
    result = done.get("result") or {}
    if "winner" not in result:
        return None
    return {key: result.get(key) for key in ("winner", "votes", "voters", "decided_by")}


async def _stream_chunks(handle: RunHandle, shape: _Shape) -> AsyncIterator[bytes]:
    """The round as OpenAI chunks. Leaving early (the client went away) stops the round at
    once: the event generator is not closed for us when the response is cancelled mid-send."""
    try:
        if shape.chat:
            yield shape.chunk("")  # the role, first, as OpenAI does
        streamed = False
        event: Event
        async for event in handle.events():
            if event.type == "chair_delta":
                streamed = True
                yield shape.chunk(event.data["delta"])
            elif event.type == "stage_start":
                # progress, as a comment
                yield f": council {event.data['stage']} stage\n\n".encode()
            elif event.type == "done":
                if event.data["status"] != "done":
                    error = NoAnswer(f"the council could not answer: {event.data['error']}")
                    yield sse_error_frame(error)
                    return
                if not streamed and event.data["answer"]:
                    yield shape.chunk(event.data["answer"])
                yield shape.chunk(None, "stop", _beside(event.data))
        yield b"data: [DONE]\n\n"
    finally:
        handle.stop()  # a no-op once the round has ended
