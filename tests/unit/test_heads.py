"""A request's head has limits: too long or too many headers is a 431, too slow a 408, and
neither touches a request within them.

A real uvicorn server (council's own `uvicorn_server`, so the hub's protocol) on a loopback
socket; raw sockets as clients, since no well-behaved client sends what these tests send.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from council.server import heads
from council.server.listeners import bind_listener, uvicorn_server
from council.settings import Chosen
from tests.running import run

TIMEOUT = 0.4  # patched over heads.HEAD_TIMEOUT


def app() -> Starlette:
    async def echo(request: Request) -> Response:
        body = await request.body()
        return JSONResponse({"headers": len(request.headers), "body": len(body)})

    async def slow(request: Request) -> Response:
        async def stream() -> AsyncIterator[str]:
            for n in range(4):
                yield f"data: {n}\n\n"
                await asyncio.sleep(TIMEOUT)

        return StreamingResponse(stream(), media_type="text/event-stream")

    return Starlette(
        routes=[
            Route("/echo", echo, methods=["POST"]),
            Route("/v1/echo", echo, methods=["POST"]),
            Route("/slow", slow),
        ]
    )


Client = Callable[[], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


def against_hub_protocol(check: Callable[[Client], Awaitable[None]]) -> None:
    async def main() -> None:
        sock = bind_listener("127.0.0.1", Chosen(0, "--port"))
        server = uvicorn_server(app())
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            await asyncio.sleep(0.01)
        port = sock.getsockname()[1]
        try:
            await check(lambda: asyncio.open_connection("127.0.0.1", port))
        finally:
            server.should_exit = True
            await task

    run(main())


async def answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, Any], bool]:
    """The status and JSON body of one response, and whether the server then closed."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    fields = dict(line.lower().split(": ", 1) for line in lines[1:] if line)
    body = await reader.readexactly(int(fields["content-length"]))
    closed = await asyncio.wait_for(reader.read(1), 5) == b""
    return status, json.loads(body), closed


def post(path: str, headers: list[str], body: bytes = b"") -> bytes:
    lines = [f"POST {path} HTTP/1.1", "host: 127.0.0.1", f"content-length: {len(body)}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@pytest.fixture(autouse=True)
def quick_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heads, "HEAD_TIMEOUT", TIMEOUT)


def test_a_head_over_64_kib_is_refused_with_431_and_the_connection_closed() -> None:
    async def check(connect: Client) -> None:
        reader, writer = await connect()
        writer.write(post("/echo", ["x-big: " + "a" * (heads.MAX_HEAD + 10)]))
        status, body, closed = await answer(reader)
        writer.close()
        assert status == 431
        assert "over 65536 bytes" in body["error"]["message"]
        assert closed

    against_hub_protocol(check)


def test_a_header_line_that_never_ends_is_refused_once_it_passes_the_limit() -> None:
    async def check(connect: Client) -> None:
        reader, writer = await connect()
        writer.write(b"GET /echo HTTP/1.1\r\nx-endless: ")
        for _ in range(64):  # 4 MiB offered in 64 KiB writes; refused after the second
            writer.write(b"a" * 65536)
            await writer.drain()
        status, _, closed = await answer(reader)
        writer.close()
        assert status == 431
        assert closed

    against_hub_protocol(check)


def test_more_than_200_headers_are_refused_with_431_in_openais_shape_on_v1() -> None:
    async def check(connect: Client) -> None:
        reader, writer = await connect()
        writer.write(post("/v1/echo", [f"x-h{n}: 1" for n in range(heads.MAX_HEADERS + 1)]))
        status, body, closed = await answer(reader)
        writer.close()
        assert status == 431
        assert body["error"]["message"] == "the request has more than 200 headers"
        assert body["error"]["type"] == "invalid_request_error"
        assert closed

    against_hub_protocol(check)


def test_a_head_that_trickles_in_is_answered_408_after_the_timeout() -> None:
    async def check(connect: Client) -> None:
        reader, writer = await connect()
        writer.write(b"POST /echo HTTP/1.1\r\nhost: 127.0.0.1\r\n")
        await asyncio.sleep(TIMEOUT / 2)
        writer.write(b"x-more: 1\r\n")  # still sending, but never finishing
        status, body, closed = await answer(reader)
        writer.close()
        assert status == 408
        assert "took over" in body["error"]["message"]
        assert closed

    against_hub_protocol(check)


def test_a_connection_that_sends_nothing_is_closed_after_the_timeout() -> None:
    async def check(connect: Client) -> None:
        reader, writer = await connect()
        closed = await asyncio.wait_for(reader.read(1), TIMEOUT * 10)
        writer.close()
        assert closed == b""

    against_hub_protocol(check)


def test_requests_within_the_limits_are_untouched_a_big_body_and_a_long_answer_included() -> None:
    """A head just under the limit with a body far over it in one write; then, on the same
    connection, a response that streams for longer than the head timeout."""

    async def check(connect: Client) -> None:
        reader, writer = await connect()
        padding = "p" * (heads.MAX_HEAD - 4000)
        headers = [f"x-h{n}: 1" for n in range(heads.MAX_HEADERS - 3)]
        writer.write(post("/echo", [f"x-pad: {padding}", *headers], b"b" * 300_000))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200")
        length = int(head.split(b"content-length: ")[1].split(b"\r\n")[0])
        echoed = json.loads(await reader.readexactly(length))
        assert echoed == {"headers": heads.MAX_HEADERS, "body": 300_000}

        writer.write(b"GET /slow HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        streamed = b""
        while b"data: 3" not in streamed:
            chunk = await asyncio.wait_for(reader.read(4096), TIMEOUT * 10)
            assert chunk, "the connection was closed while the answer streamed"
            streamed += chunk
        writer.close()

    against_hub_protocol(check)
