"""Council's errors as HTTP responses, rendered here and nowhere else.

Two dialects: council's own `{"error": {"status", "message"}}` everywhere but `/v1`, whose
clients are OpenAI SDKs and get OpenAI's `{"error": {"message", "type", "param", "code"}}` (an
SSE stream that has to end early gets the same object as its last `data:` line, which the SDKs
raise). The status, the OpenAI type and code come from the error's class (`errors.py`), so one
error reads the same status on both. The handlers here are the app's only exception handlers:
starlette finds one along the raised class's `__mro__`, and the class attributes are inherited
the same way, so a new subclass needs no new handler (starlette's `_exception_handler.py`).
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Scope, Send

from council.errors import CouncilError, TooManyRequests, Unauthorized, error_for_status

log = logging.getLogger("council")

INTERNAL = "internal error: the hub's log says more"


def speaks_openai(path: str) -> bool:
    return path == "/v1" or path.startswith("/v1/")


def error_body(
    path: str, status: int, message: str, kind: str | None = None, code: str | None = None
) -> dict[str, Any]:
    if speaks_openai(path):
        kind = kind or error_for_status(status).kind
        return {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return {"error": {"status": status, "message": message}}


def error_headers(error: CouncilError | None, status: int) -> dict[str, str]:
    headers = {"cache-control": "no-store"}
    if status == Unauthorized.status:
        headers["www-authenticate"] = 'Bearer realm="council"'
    if isinstance(error, TooManyRequests) and error.retry_after is not None:
        headers["retry-after"] = str(max(1, math.ceil(error.retry_after)))
    return headers


def error_response(path: str, error: CouncilError) -> JSONResponse:
    """`error` in the dialect of `path`, with the status its class declares."""
    body = error_body(path, error.status, str(error), error.kind, error.code)
    return JSONResponse(body, status_code=error.status, headers=error_headers(error, error.status))


def sse_error_frame(error: CouncilError) -> bytes:
    """The last event of a `/v1` stream that cannot finish: OpenAI's error object as data."""
    body = error_body("/v1/", error.status, str(error), error.kind, error.code)
    return f"data: {json.dumps(body)}\n\n".encode()


async def send_error(scope: Scope, send: Send, error: CouncilError) -> None:
    """`error_response` for pure ASGI code with no response object (a websocket is closed)."""
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    data = json.dumps(error_body(scope["path"], error.status, str(error), error.kind, error.code))
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(data))]
    headers += [(k.encode(), v.encode()) for k, v in error_headers(error, error.status).items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": data.encode()})


async def council_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, CouncilError):  # pragma: no cover - registered for CouncilError only
        raise exc
    return error_response(request.url.path, exc)


async def http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (no such route, wrong method) in the same two dialects."""
    if not isinstance(exc, HTTPException):  # pragma: no cover - registered for HTTPException only
        raise exc
    status, message = exc.status_code, str(exc.detail)
    headers = {**error_headers(None, status), **(exc.headers or {})}
    return JSONResponse(error_body(request.url.path, status, message), status, headers=headers)


async def internal_error(request: Request, exc: Exception) -> Response:
    """A bug still answers in JSON; the traceback goes to the log, never to the client."""
    log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
    body = error_body(request.url.path, 500, INTERNAL, "server_error")
    return JSONResponse(body, status_code=500, headers=error_headers(None, 500))


EXCEPTION_HANDLERS = {
    HTTPException: http_exception,
    CouncilError: council_error,
    Exception: internal_error,
}
