"""`/v1`: the OpenAI-compatible surface. Every seat is a model, and so is the council.

`model: "council"` (or `"council:moa"`, `"council:vote"`, `"council:synthesize"`) runs a council
round on the last user message, with the earlier user/assistant turns as history, stores it like
any other conversation, and answers with the chair's text, streamed as `chat.completion.chunk`s
when asked. Any other model name is a seat: the request goes to that seat's engine with the
engine's own per-run key, and its answer comes back byte for byte.

Errors use OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`, so SDKs raise
their usual exceptions.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from council.deliberation.events import Event
from council.deliberation.service import CouncilService, RunHandle
from council.errors import BadRequest, CouncilError, NotFound
from council.server.api import PayloadTooLarge, read_json
from council.store import conversations as store
from council.types import Mode

COUNCIL_MODEL = "council"
Target = Callable[[str], tuple[str, str] | str]


def openai_error(status: int, message: str, kind: str = "invalid_request_error") -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return JSONResponse(body, status_code=status)


class OpenAIApi:
    def __init__(
        self,
        council: CouncilService,
        seat_names: Callable[[], list[str]],
        target: Target,
        client: httpx.AsyncClient,
    ) -> None:
        self.council = council
        self.seat_names = seat_names
        self.target = target
        self.client = client

    def routes(self) -> list[Route]:
        return [
            Route("/v1/models", self.models, methods=["GET"]),
            Route("/v1/chat/completions", self.chat_completions, methods=["POST"]),
        ]

    async def models(self, request: Request) -> Response:
        created = int(time.time())
        names = [COUNCIL_MODEL, *(f"{COUNCIL_MODEL}:{m.value}" for m in Mode), *self.seat_names()]
        return JSONResponse(
            {"object": "list",
             "data": [{"id": name, "object": "model", "created": created, "owned_by": "council"}
                      for name in names]}
        )  # fmt: skip

    async def chat_completions(self, request: Request) -> Response:
        try:
            body = await read_json(request)
            model = body.get("model")
            if not isinstance(model, str) or not model:
                raise BadRequest("'model' is required")
            if model == COUNCIL_MODEL or model.startswith(f"{COUNCIL_MODEL}:"):
                return await self._council(body, model)
            if model not in self.seat_names():
                raise NotFound(f"the model {model!r} does not exist: see /v1/models")
            return await self._forward(request, model, body)
        except PayloadTooLarge as exc:
            return openai_error(413, str(exc))
        except NotFound as exc:
            return openai_error(404, str(exc))
        except BadRequest as exc:
            return openai_error(400, str(exc))
        except CouncilError as exc:
            return openai_error(503, str(exc), "server_error")

    async def _council(self, body: dict[str, Any], model: str) -> Response:
        question, history = _conversation(body.get("messages"))
        request: dict[str, Any] = {"mode": model.partition(":")[2] or None}
        if isinstance(body.get("max_tokens"), int):
            request["max_tokens"] = body["max_tokens"]
        if isinstance(body.get("temperature"), int | float):
            request["temperature"] = body["temperature"]
        options = self.council.options(request)
        conversation_id = store.create_conversation(self.council.db, question)
        store.seed_history(self.council.db, conversation_id, history)
        handle = self.council.start(conversation_id, question, options)
        completion_id = f"chatcmpl-{secrets.token_hex(12)}"
        if body.get("stream"):
            return StreamingResponse(
                _stream_chunks(handle, completion_id, model),
                media_type="text/event-stream",
                headers={"cache-control": "no-store"},
            )
        done: dict[str, Any] = {}
        async for event in handle.events():
            if event.type == "done":
                done = event.data
        if done.get("status") != "done":
            return openai_error(502, f"the council could not answer: {done.get('error')}",
                                "server_error")  # fmt: skip
        return JSONResponse(_completion(completion_id, model, done["answer"]))

    async def _forward(self, request: Request, model: str, body: dict[str, Any]) -> Response:
        target = self.target(model)
        if isinstance(target, str):
            raise CouncilError(target)
        base_url, key = target
        upstream = await self.client.send(
            self.client.build_request(
                "POST", f"{base_url}/v1/chat/completions", json=body,
                headers={"Authorization": f"Bearer {key}"},
                timeout=httpx.Timeout(30.0, read=None),
            ),
            stream=True,
        )  # fmt: skip
        headers = {k: v for k, v in upstream.headers.items()
                   if k.lower() in {"content-type", "cache-control"}}  # fmt: skip
        return StreamingResponse(
            upstream.aiter_raw(),
            status_code=upstream.status_code,
            headers=headers,
            background=BackgroundTask(upstream.aclose),
        )


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


async def _stream_chunks(handle: RunHandle, completion_id: str, model: str) -> AsyncIterator[bytes]:
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        payload = {"id": completion_id, "object": "chat.completion.chunk", "created": created,
                   "model": model,
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}  # fmt: skip
        return f"data: {json.dumps(payload)}\n\n".encode()

    yield chunk({"role": "assistant", "content": ""})
    streamed = False
    event: Event
    async for event in handle.events():
        if event.type == "chair_delta":
            streamed = True
            yield chunk({"content": event.data["delta"]})
        elif event.type == "stage_start":
            yield f": council {event.data['stage']} stage\n\n".encode()  # progress, as a comment
        elif event.type == "done":
            if event.data["status"] != "done":
                error = {"message": f"the council could not answer: {event.data['error']}",
                         "type": "server_error", "param": None, "code": None}  # fmt: skip
                yield f"data: {json.dumps({'error': error})}\n\n".encode()
                return
            if not streamed and event.data["answer"]:
                yield chunk({"content": event.data["answer"]})
            yield chunk({}, "stop")
    yield b"data: [DONE]\n\n"


def _completion(completion_id: str, model: str, answer: str) -> dict[str, Any]:
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer},
                     "finish_reason": "stop"}],
    }  # fmt: skip
