"""One request to a local engine, on a connection of its own, with its answer as it arrives.

This is the `/v1` passthrough's hot path, so it is lean on purpose: the request goes out in a
single write, the answer is parsed by `httptools` (llhttp, in C) inside an asyncio protocol, and
each piece of the body is handed over as the engine sent it, with no copies or re-framing in
between. Everything else that talks to engines (health checks, council seats, tokenizing) uses
httpx, which costs more per chunk but does far more.

One connection per request is deliberate, not a shortcut: llama-server closes a connection after
a streamed answer without announcing it, so a pool would now and then send a request into a
closing socket (see `engine_headers`); a loopback connect costs tens of microseconds. Closing
the connection early is how the engine learns that nobody is listening: it stops generating and
frees the slot.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator

import httptools

FRAMING = frozenset({"host", "connection", "content-length", "transfer-encoding"})  # ours to set
HIGH_WATER = 1024 * 1024  # stop reading from the engine while this much waits for the client


class EngineGone(ConnectionError):
    """The engine refused the connection or closed it before its answer was complete."""


class _Answer(asyncio.Protocol):
    def __init__(self, request: bytes) -> None:
        self.request = request
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.head: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.pieces: deque[bytes] = deque()
        self.buffered = 0
        self.complete = False
        self.error: Exception | None = None
        self.waiter: asyncio.Future[None] | None = None

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)  # noqa: S101 - a TCP connection
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(EngineGone(f"the engine sent something that is not HTTP: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.complete:
            self._fail(EngineGone("the engine closed the connection before its answer ended"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        if not self.head.done():
            self.head.set_result(None)

    def on_body(self, body: bytes) -> None:
        self.pieces.append(body)
        self.buffered += len(body)
        if self.buffered > HIGH_WATER and self.transport is not None:
            self.transport.pause_reading()  # the client is slower than the engine
        self._wake()

    def on_message_complete(self) -> None:
        self.complete = True
        self._wake()

    def _fail(self, error: Exception) -> None:
        self.error = error
        if not self.head.done():
            self.head.set_exception(error)
        self._wake()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


class EngineAnswer:
    """The engine's status, headers and body; `close()` hangs up (stopping any generation)."""

    def __init__(self, answer: _Answer) -> None:
        self._answer = answer
        self.status = answer.parser.get_status_code()
        self.headers = answer.headers

    async def body(self) -> AsyncIterator[tuple[bytes, bool]]:
        """The body as it arrives, each piece with whether it is the last (the answer is
        complete), so that the last piece and the end of the response can go out together."""
        answer = self._answer
        loop = asyncio.get_running_loop()
        while True:
            if answer.pieces:
                # Everything that has arrived goes on at once: nothing waits for more to come,
                # but a busy engine's pieces do not each pay the trip through the ASGI stack.
                pieces = answer.pieces
                piece = pieces.popleft() if len(pieces) == 1 else b"".join(pieces)
                pieces.clear()
                answer.buffered = 0
                if answer.transport is not None:
                    answer.transport.resume_reading()
                yield piece, answer.complete
                if answer.complete:
                    return
                continue
            if answer.complete:
                yield b"", True
                return
            if answer.error is not None:
                raise answer.error
            answer.waiter = loop.create_future()
            await answer.waiter

    def close(self) -> None:
        if self._answer.transport is not None:
            self._answer.transport.close()


async def send_request(
    host: str, port: int, path: str, body: bytes, headers: dict[str, str], *, timeout: float = 30
) -> EngineAnswer:
    """POST `body` to the engine and wait for the head of its answer (not its body).

    `timeout` bounds the connect only: an engine reading a long prompt on a CPU may take minutes
    before its first byte, and a client that gives up cancels this instead.
    """
    head = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Connection: close",
        f"Content-Length: {len(body)}",
    ]
    head += [f"{name}: {value}" for name, value in headers.items() if name.lower() not in FRAMING]
    request = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
    loop = asyncio.get_running_loop()
    try:
        _, answer = await asyncio.wait_for(
            loop.create_connection(lambda: _Answer(request), host, port), timeout
        )
    except (OSError, TimeoutError) as exc:
        raise EngineGone(f"cannot reach the engine: {exc}") from None
    try:
        await answer.head
    except BaseException:
        if answer.transport is not None:
            answer.transport.close()
        if isinstance(answer.error, EngineGone):
            raise answer.error from None
        raise
    return EngineAnswer(answer)
