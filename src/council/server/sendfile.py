"""uvicorn's httptools protocol, plus the ASGI `http.response.pathsend` extension (sendfile).

Starlette's FileResponse sends a whole file as one `http.response.pathsend` message (the path)
when the server lists that extension in `scope["extensions"]`; uvicorn does not, so without this
a model download would pass through Python 64 KiB at a time. `SendfileProtocol` advertises the
extension and answers the message with `loop.sendfile`, which on a plain TCP socket is the
kernel's sendfile(2): the bytes go from the page cache to the socket without entering Python.

Only plain-HTTP connections advertise it. Over TLS, asyncio's sendfile falls back to reading
the file in a worker thread and writing it through the transport (swapping the transport's
protocol meanwhile): no faster than FileResponse's own chunked reads, and a less-trodden path,
so TLS connections (the LAN listener) keep FileResponse's reads. Range requests never use
pathsend either (FileResponse sends ranges as body chunks).

The status line and headers were written by uvicorn on `http.response.start` as usual; this
writes only the body, then hands uvicorn an empty final body message so that its bookkeeping
(keep-alive, pipelining, the response-complete callback) runs exactly as for any response.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

PATHSEND = "http.response.pathsend"


class SendfileProtocol(HttpToolsProtocol):
    """HttpToolsProtocol whose requests may end with `http.response.pathsend`."""

    sendfile_calls = 0  # whole files sent with loop.sendfile since start (tests read it)

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        # uvloop's loop has no working loop.sendfile; asyncio's own loops do.
        plain = self.transport.get_extra_info("sslcontext") is None
        if plain and isinstance(self.loop, asyncio.BaseEventLoop):
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
        if cycle.flow.write_paused:
            await cycle.flow.drain()
        head = cycle.scope["method"] == "HEAD"
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            count = size if cycle.chunked_encoding else cycle.expected_content_length
            if count > size:
                raise RuntimeError("Response content shorter than Content-Length")
            if not head and count:
                if cycle.chunked_encoding:
                    cycle.transport.write(b"%x\r\n" % count)
                try:
                    sent = await self.loop.sendfile(cycle.transport, file, 0, count)
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
