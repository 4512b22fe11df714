"""uvicorn's httptools protocol, plus the ASGI `http.response.pathsend` extension (sendfile).

Starlette's FileResponse sends a whole file as one `http.response.pathsend` message (the path)
when the server lists that extension in `scope["extensions"]`; uvicorn does not, so without this
a model download would pass through Python 64 KiB at a time. `SendfileProtocol` advertises the
extension and answers the message with the kernel's sendfile(2): the bytes go from the page
cache to the socket without entering Python.

Only plain-HTTP connections advertise it: over TLS the bytes must pass through the TLS layer
in Python anyway, so TLS connections (the LAN listener) keep FileResponse's chunked reads.
Range requests never use pathsend either (FileResponse sends ranges as body chunks).

The status line and headers were written by uvicorn on `http.response.start` as usual; this
writes only the body, then hands uvicorn an empty final body message so that its bookkeeping
(keep-alive, pipelining, the response-complete callback) runs exactly as for any response.

The body goes out in sendfile(2) calls of at most 256 KiB, with a turn of the event loop after
each, rather than through asyncio's `loop.sendfile`, which offers the kernel all that is left
in each call. Measured with benchmarks/browser_seat.py (a 1 GB file over loopback, two cores),
asyncio's way reached ~2.4 GB/s against Debian's nginx at ~3.6 GB/s; 2 MiB calls ~2.9 GB/s;
256 KiB calls with a turn between them ~5-7 GB/s. Short calls let the receiver copy one piece
while the next is queued, and the turns keep every other connection served during a download.
"""

from __future__ import annotations

import asyncio
import os
from asyncio.selector_events import BaseSelectorEventLoop
from typing import Any

from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from council.server.heads import BoundedHeadProtocol

PATHSEND = "http.response.pathsend"
CHUNK = 256 * 1024  # bytes per sendfile(2) call
SENDFILE = hasattr(os, "sendfile")


class SendfileProtocol(BoundedHeadProtocol):
    """HttpToolsProtocol, with bounded heads, whose requests may end with
    `http.response.pathsend`."""

    sendfile_calls = 0  # whole files sent with sendfile(2) since start (tests read it)

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        # os.sendfile and a selector loop (add_writer) are what _send needs: Linux and macOS;
        # Windows' proactor loop and uvloop keep FileResponse's reads.
        plain = self.transport.get_extra_info("sslcontext") is None
        if plain and SENDFILE and isinstance(self.loop, BaseSelectorEventLoop):
            extensions = cycle.scope.setdefault("extensions", {})
            extensions[PATHSEND] = {}
            app = _PathsendApp(app, cycle, self.loop)
        super()._start_asgi_task(cycle, app)


class _PathsendApp:
    """Wraps the app for one request: pathsend messages become sendfile, the rest pass on."""

    def __init__(self, app: Any, cycle: RequestResponseCycle, loop: asyncio.AbstractEventLoop):
        self.app, self.cycle, self.loop = app, cycle, loop

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def send_or_sendfile(message: Any) -> None:
            if message["type"] == PATHSEND:
                await self.sendfile(message["path"])
            else:
                await send(message)

        await self.app(scope, receive, send_or_sendfile)

    async def sendfile(self, path: str) -> None:
        cycle = self.cycle
        if not cycle.response_started or cycle.response_complete:
            raise RuntimeError("http.response.pathsend needs a started, unfinished response")
        if cycle.disconnected:
            return
        head = cycle.scope["method"] == "HEAD"
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            count = size if cycle.chunked_encoding else cycle.expected_content_length
            if count > size:
                raise RuntimeError("Response content shorter than Content-Length")
            if not head and count:
                if cycle.chunked_encoding:
                    cycle.transport.write(b"%x\r\n" % count)
                await self._written_out()
                try:
                    sent = -1 if cycle.disconnected else await self._send(file.fileno(), count)
                except OSError:  # the client went away mid-file
                    sent = -1
                if sent != count:  # gone, or the file shrank: the response cannot be finished
                    cycle.disconnected = True
                    cycle.transport.close()
                    return
                if cycle.chunked_encoding:
                    cycle.transport.write(b"\r\n")
                SendfileProtocol.sendfile_calls += 1
        cycle.expected_content_length = 0
        await cycle.send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _written_out(self) -> None:
        """Wait until the transport has handed everything written so far to the kernel.

        The file's bytes go to the socket directly, so they must not overtake the headers (or
        a chunk-size line) still queued in the transport. Lowering the buffer limits to zero
        makes the transport pause uvicorn's writer until its buffer is empty.
        """
        transport, flow = self.cycle.transport, self.cycle.flow
        if not transport.get_write_buffer_size():
            return
        low, high = transport.get_write_buffer_limits()
        transport.set_write_buffer_limits(high=0, low=0)
        try:
            await flow.drain()
        finally:
            if not transport.is_closing():
                transport.set_write_buffer_limits(high=high, low=low)

    async def _send(self, file_fd: int, count: int) -> int:
        """sendfile(2) `count` bytes of the file to the connection's socket; the bytes sent.

        The transport stops reading meanwhile (as asyncio's own sendfile does). The socket is
        waited on through a duplicate of its descriptor, because asyncio lets no one else watch
        a descriptor that a transport owns.
        """
        transport, loop = self.cycle.transport, self.loop
        sock_fd = os.dup(transport.get_extra_info("socket").fileno())
        reading = transport.is_reading()
        transport.pause_reading()
        sent = 0
        try:
            while sent < count:
                try:
                    moved = os.sendfile(sock_fd, file_fd, sent, min(count - sent, CHUNK))
                except BlockingIOError:
                    await _writable(loop, sock_fd)
                    continue
                if moved == 0:  # the file ended early
                    break
                sent += moved
                await asyncio.sleep(0)
        finally:
            os.close(sock_fd)
            if reading and not transport.is_closing():
                transport.resume_reading()
        return sent


async def _writable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    """Return once the socket `fd` has room to write."""
    writable = loop.create_future()

    def ready() -> None:
        loop.remove_writer(fd)  # at once: the selector would report it again next turn
        if not writable.done():
            writable.set_result(None)

    loop.add_writer(fd, ready)
    try:
        await writable
    finally:
        loop.remove_writer(fd)
