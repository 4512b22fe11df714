"""The /v1 passthrough against a scripted engine on loopback: what arrives, when, and hang-ups.

The scripted engine stands in for llama-server only where llama-server cannot be steered: it
sends an SSE comment and then waits, so a test can see that the comment reached the client
before the engine said anything more (nothing is buffered), or that a client's hang-up reaches
the engine. Real llama-server streams are covered in tests/integration.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, cast

from starlette.types import Message

from council.server.openai_api import OpenAIApi, Passthrough
from tests.running import run as run_coroutine

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
BODY = json.dumps({"model": "seat", "stream": True, "messages": []}).encode()


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    return head + await reader.readexactly(length)


class Client:
    """An ASGI client: sends the body, then waits until told to hang up."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.arrived = asyncio.Event()
        self.hang_up = asyncio.Event()
        self.sent_body = False

    async def receive(self) -> Message:
        if not self.sent_body:
            self.sent_body = True
            return {"type": "http.request", "body": BODY, "more_body": False}
        await self.hang_up.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        self.messages.append(message)
        self.arrived.set()

    def body(self) -> bytes:
        return b"".join(
            m.get("body", b"") for m in self.messages if m["type"] == "http.response.body"
        )


async def serve(script: Script, client: Client, port: int | None = None) -> None:
    async def closing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await script(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(closing, "127.0.0.1", 0)
    engine_port = port or server.sockets[0].getsockname()[1]
    api = OpenAIApi(
        cast(Any, None), lambda: ["seat"], lambda _: (f"http://127.0.0.1:{engine_port}", "k")
    )
    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": []}
    async with server:
        await Passthrough(api, "/v1/chat/completions")(scope, client.receive, client.send)


def test_an_sse_comment_reaches_the_client_before_the_engine_says_more() -> None:
    async def scenario() -> None:
        client, go_on = Client(), asyncio.Event()
        seen: list[bytes] = []

        async def engine(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            seen.append(await read_request(reader))
            writer.write(HEAD + chunk(b": ping\n\n"))
            await go_on.wait()
            writer.write(
                chunk(b'data: {"choices":[]}\n\n') + chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n"
            )
            await writer.drain()
            writer.close()

        async def watch() -> None:
            while client.body() != b": ping\n\n":
                client.arrived.clear()
                await client.arrived.wait()
            go_on.set()  # only now may the engine go on

        await asyncio.gather(serve(engine, client), watch())
        assert client.messages[0]["status"] == 200
        assert (b"content-type", b"text/event-stream") in client.messages[0]["headers"]
        bodies = [m["body"] for m in client.messages[1:] if m["body"]]
        assert bodies[0] == b": ping\n\n"  # on its own, before the engine went on
        assert b"".join(bodies[1:]) == b'data: {"choices":[]}\n\ndata: [DONE]\n\n'
        assert client.messages[-1]["more_body"] is False  # the response is complete
        request = seen[0]
        assert request.endswith(BODY)  # the body goes to the engine unchanged
        assert b"authorization: Bearer k" in request.lower().replace(b"bearer", b"Bearer")
        assert b"Connection: close" in request

    run_coroutine(asyncio.wait_for(scenario(), 10))


def test_a_client_that_hangs_up_hangs_up_on_the_engine() -> None:
    async def scenario() -> None:
        client, engine_saw_hang_up = Client(), asyncio.Event()

        async def engine(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await read_request(reader)
            writer.write(HEAD + chunk(b"data: {}\n\n"))
            await writer.drain()
            if await reader.read(1) == b"":  # EOF: the hub closed the connection
                engine_saw_hang_up.set()

        async def hang_up() -> None:
            await client.arrived.wait()
            client.hang_up.set()

        await asyncio.gather(serve(engine, client), hang_up())
        await asyncio.wait_for(engine_saw_hang_up.wait(), 2)

    run_coroutine(asyncio.wait_for(scenario(), 10))


def test_an_engine_that_dies_mid_answer_ends_the_stream_with_an_error_event() -> None:
    async def scenario() -> None:
        client = Client()

        async def engine(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await read_request(reader)
            writer.write(HEAD + chunk(b"data: {}\n\n"))
            await writer.drain()
            writer.transport.abort()

        await serve(engine, client)
        last = client.body().split(b"\n\n")[-2]
        assert json.loads(last.removeprefix(b"data: "))["error"]["type"] == "server_error"
        assert client.messages[-1]["more_body"] is False

    run_coroutine(asyncio.wait_for(scenario(), 10))


def test_an_engine_that_cannot_be_reached_is_an_openai_shaped_502() -> None:
    async def scenario() -> None:
        client = Client()

        async def never(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            raise AssertionError("not reached")

        import socket

        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))
            port = closed.getsockname()[1]  # bound, not listening: connections are refused
            await serve(never, client, port=port)
        assert client.messages[0]["status"] == 502
        assert set(json.loads(client.body())["error"]) == {"message", "type", "param", "code"}

    run_coroutine(asyncio.wait_for(scenario(), 10))
