"""The hub's uvicorn protocol: whole files leave by the kernel's sendfile, the rest as before.

A real uvicorn server (council's own `uvicorn_server`) on a loopback socket, a real client.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from council.server.listeners import bind_listener, uvicorn_server
from council.server.sendfile import SendfileProtocol, _PathsendApp
from council.settings import Chosen
from tests.running import run

MB = 1024 * 1024


def big_file(folder: Path, size: int = 64 * MB) -> tuple[Path, str]:
    path = folder / "big.bin"
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        for _ in range(size // MB):
            block = os.urandom(MB)
            digest.update(block)
            out.write(block)
    return path, digest.hexdigest()


def app_serving(path: Path, padding: str = "") -> Starlette:
    async def file(request: Request) -> Response:
        return FileResponse(path)

    async def padded(request: Request) -> Response:
        return FileResponse(path, headers={"x-padding": padding})

    async def events(request: Request) -> Response:
        async def stream() -> AsyncIterator[str]:
            for n in range(3):
                yield f"data: {n}\n\n"
                await asyncio.sleep(0.01)

        return StreamingResponse(stream(), media_type="text/event-stream")

    async def whoami(request: Request) -> Response:
        assert request.client is not None
        return JSONResponse({"port": request.client.port})

    return Starlette(
        routes=[
            Route("/file", file, methods=["GET", "HEAD"]),
            Route("/events", events),
            Route("/whoami", whoami),
            Route("/padded", padded),
        ]
    )


def serving(
    path: Path, check: Callable[[httpx.AsyncClient], Awaitable[None]], padding: str = ""
) -> None:
    """Run `check` with a client of a real uvicorn server that serves `app_serving(path)`."""

    async def main() -> None:
        sock = bind_listener("127.0.0.1", Chosen(0, "--port"))
        server = uvicorn_server(app_serving(path, padding))
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            await asyncio.sleep(0.01)
        port = sock.getsockname()[1]
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
                await check(client)
        finally:
            server.should_exit = True
            await task

    run(main())


async def sha256_of_download(client: httpx.AsyncClient, url: str) -> tuple[str, int]:
    digest, count = hashlib.sha256(), 0
    async with client.stream("GET", url) as response:
        assert response.status_code == 200
        async for chunk in response.aiter_raw():
            digest.update(chunk)
            count += len(chunk)
    return digest.hexdigest(), count


def test_a_whole_file_goes_out_through_sendfile_byte_for_byte(tmp_path: Path) -> None:
    path, expected = big_file(tmp_path)

    async def check(client: httpx.AsyncClient) -> None:
        before = SendfileProtocol.sendfile_calls
        assert await sha256_of_download(client, "/file") == (expected, 64 * MB)
        assert SendfileProtocol.sendfile_calls == before + 1

    serving(path, check)


def test_ranges_and_head_are_answered_without_sendfile(tmp_path: Path) -> None:
    path, _ = big_file(tmp_path, 2 * MB)
    data = path.read_bytes()

    async def check(client: httpx.AsyncClient) -> None:
        before = SendfileProtocol.sendfile_calls
        ranged = await client.get("/file", headers={"range": "bytes=1000-1999"})
        assert (ranged.status_code, ranged.content) == (206, data[1000:2000])
        head = await client.head("/file")
        assert (head.status_code, head.headers["content-length"]) == (200, str(len(data)))
        assert SendfileProtocol.sendfile_calls == before

    serving(path, check)


def test_one_connection_keeps_serving_streams_files_and_json_after_a_sendfile(
    tmp_path: Path,
) -> None:
    path, expected = big_file(tmp_path, 4 * MB)

    async def check(client: httpx.AsyncClient) -> None:
        port = (await client.get("/whoami")).json()["port"]
        for _ in range(3):
            assert await sha256_of_download(client, "/file") == (expected, 4 * MB)
            events = await client.get("/events")
            assert events.text == "data: 0\n\ndata: 1\n\ndata: 2\n\n"
        assert (await client.get("/whoami")).json()["port"] == port  # the same kept-alive socket

    serving(path, check)


def test_a_client_that_leaves_mid_file_does_not_stop_the_server(tmp_path: Path) -> None:
    path, expected = big_file(tmp_path)

    async def check(client: httpx.AsyncClient) -> None:
        port = client.base_url.port
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /file HTTP/1.1\r\nhost: x\r\n\r\n")
        await reader.readexactly(1024)
        writer.close()  # gone with most of the 64 MB unread
        await asyncio.sleep(0.1)
        assert await sha256_of_download(client, "/file") == (expected, 64 * MB)

    serving(path, check)


def test_a_slow_reader_gets_every_byte_while_the_server_answers_others(tmp_path: Path) -> None:
    path, expected = big_file(tmp_path)

    async def check(client: httpx.AsyncClient) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", client.base_url.port)
        writer.write(b"GET /file HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        await asyncio.sleep(0.3)  # unread: the socket's buffers fill and the server waits
        for _ in range(3):  # meanwhile the server answers others
            assert (await client.get("/whoami")).status_code == 200
        response = await reader.read()
        writer.close()
        head, _, body = response.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        assert hashlib.sha256(body).hexdigest() == expected

    serving(path, check)


def test_the_file_never_overtakes_headers_still_queued_in_the_transport(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, expected = big_file(tmp_path, 4 * MB)
    padding = "p" * (16 * MB)  # far more than the socket takes while the client is not reading
    queued_at_first_byte: list[int] = []
    send = _PathsendApp._send

    async def recording_send(self: _PathsendApp, file_fd: int, count: int) -> int:
        queued_at_first_byte.append(self.cycle.transport.get_write_buffer_size())
        return await send(self, file_fd, count)

    monkeypatch.setattr(_PathsendApp, "_send", recording_send)

    async def check(client: httpx.AsyncClient) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", client.base_url.port)
        writer.write(b"GET /padded HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        await asyncio.sleep(0.3)
        response = await reader.read()
        writer.close()
        head, _, body = response.partition(b"\r\n\r\n")
        assert f"x-padding: {padding}".encode() in head
        assert hashlib.sha256(body).hexdigest() == expected
        assert queued_at_first_byte == [0]

    serving(path, check, padding=padding)
