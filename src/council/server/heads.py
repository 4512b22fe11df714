"""Limits on a request's head (the request line and its headers), on both listeners.

uvicorn's httptools protocol sets none: a header block that never ends grows the hub's memory
without bound (the probe behind issue 14 sent 64 MiB of one header), any number of headers
is accepted, and a connection that trickles its head a byte at a time stays open for ever.
uvicorn offers no setting for any of this (h11's `h11_max_incomplete_event_size` is for the
other protocol), so the protocol below counts what it feeds the parser:

- a head longer than `MAX_HEAD` bytes, or with more than `MAX_HEADERS` headers, is answered
  431 and the connection closed;
- a head not complete `HEAD_TIMEOUT` seconds after it began (or, on a new connection, after the
  connection opened) is answered 408 and closed; a connection that sent nothing is just closed.

The answer is JSON in the shape of the path asked for (OpenAI's on `/v1`), like every error.
Then the hub stops writing but reads (and drops) what is still coming for `LINGER` seconds
before it closes, as nginx's lingering close does: closing a socket with unread data in it
sends a reset, and a reset makes the client's kernel drop the answer it had not read yet.
Bytes of a pipelined request that follow the previous one in the same read are counted from
the next read on: the bound is `MAX_HEAD` plus one read.
"""

from __future__ import annotations

import asyncio
import json

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from council.errors import CouncilError, HeadersTooLarge, RequestTimeout
from council.server.http import error_body

MAX_HEAD = 64 * 1024  # bytes of request line and headers
MAX_HEADERS = 200
HEAD_TIMEOUT = 10.0  # seconds for a whole head
LINGER = 2.0  # seconds a refused connection is drained before it is closed


class _Refused(Exception):
    """Stops the parser in a callback; the refusal is already on its way to the client."""


class BoundedHeadProtocol(HttpToolsProtocol):
    """HttpToolsProtocol that refuses an oversized head and times out a slow one."""

    _in_head = True  # the next bytes fed belong to a request's head
    _head_bytes = 0
    _header_count = 0
    _head_timer: asyncio.TimerHandle | None = None
    _refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        while data and not self._refused:
            if not self._in_head:
                super().data_received(data)
                return
            room = MAX_HEAD - self._head_bytes
            if room <= 0:
                self._refuse(HeadersTooLarge(f"the request's headers are over {MAX_HEAD} bytes"))
                return
            piece, data = data[:room], data[room:]
            self._head_bytes += len(piece)
            super().data_received(piece)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_count = 0
        if self._head_timer is None:
            self._arm()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > MAX_HEADERS:
            self._refuse(HeadersTooLarge(f"the request has more than {MAX_HEADERS} headers"))
            raise _Refused
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._disarm()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head, self._head_bytes = True, 0

    def send_400_response(self, msg: str) -> None:
        if not self._refused:  # a refusal stops the parser with an error of its own
            super().send_400_response(msg)

    def _arm(self) -> None:
        self._disarm()
        self._head_timer = self.loop.call_later(HEAD_TIMEOUT, self._head_timed_out)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or not self._in_head:
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.keep_alive = False  # a pipelined head trickles in: close after this one
        elif self._head_bytes == 0:
            self.transport.close()  # nothing was asked: nothing to answer
        else:
            self._refuse(RequestTimeout(f"the request's headers took over {HEAD_TIMEOUT:g} s"))

    def _refuse(self, error: CouncilError) -> None:
        """Answer `error` and close; the rest of what the client sends is never parsed."""
        self._refused = True
        self._disarm()
        path = self.url.decode("latin-1").split("?", 1)[0] if self.url else "/"
        data = json.dumps(error_body(path, error.status, str(error), error.kind)).encode()
        head = (
            f"HTTP/1.1 {error.status} {_REASONS[error.status]}\r\n"
            "content-type: application/json\r\n"
            f"content-length: {len(data)}\r\n"
            "cache-control: no-store\r\n"
            "connection: close\r\n\r\n"
        )
        self.transport.write(head.encode() + data)
        if self.transport.can_write_eof():  # TLS cannot half-close: it closes at once
            self.transport.write_eof()
            self.transport.resume_reading()  # drained by data_received, which drops it all
            self.loop.call_later(LINGER, self.transport.close)
        else:
            self.transport.close()


_REASONS = {408: "Request Timeout", 431: "Request Header Fields Too Large"}
