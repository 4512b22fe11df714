"""The hub's end of a worker's tunnel: a loopback port a seat's `llama-server --rpc` connects
to, carried to the worker over TLS (its pinned CA) after the handshake's `open` with the hub's
token.

The port is on 127.0.0.1, where every account on the laptop could connect to it and so reach
the worker's rpc-server with this hub's pairing. On Linux a connection is accepted only from a
socket owned by this hub's own user (the kernel's /proc/net/tcp says whose it is); elsewhere a
connection from another account cannot be told apart, and the README says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from council.config import SeatConfig
from council.datafolder import DataFolder
from council.errors import ConfigError, CouncilError, HandshakeError, InsufficientMemory
from council.rpc.handshake import fast_loop, read_message, splice, write_message
from council.rpc.workers import CONNECT_TIMEOUT, WorkerConfig, check_version, hello, load_workers
from council.units import human_size

log = logging.getLogger("council")


def socket_owner(local: tuple[str, int], remote: tuple[str, int]) -> int | None:
    """The user id owning the IPv4 TCP socket bound to `local` and connected to `remote`,
    from the kernel's table (None where there is no such table or no such socket)."""
    table = Path("/proc/net/tcp")
    if not table.exists():
        return None

    def encode(address: tuple[str, int]) -> str:
        packed = socket.inet_aton(address[0])
        return f"{int.from_bytes(packed, 'little'):08X}:{address[1]:04X}"

    wanted_local, wanted_remote = encode(local), encode(remote)
    for line in table.read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) > 7 and fields[1] == wanted_local and fields[2] == wanted_remote:
            return int(fields[7])
    return None


class Tunnel:
    """One worker's loopback port on this hub."""

    def __init__(self, worker: WorkerConfig) -> None:
        self.worker = worker
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(16)
        self.port = int(self.socket.getsockname()[1])
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Serve the port on an event loop of its own thread (uvloop's where installed): the
        RPC stream's many small round trips never wait behind the hub's own work."""
        ready = threading.Event()

        def run() -> None:
            loop = fast_loop()
            self._loop = loop
            try:
                self._server = loop.run_until_complete(
                    asyncio.start_server(self._accept, sock=self.socket)
                )
                ready.set()
                loop.run_forever()
                loop.run_until_complete(self._shut())
            finally:
                ready.set()
                loop.close()

        self._thread = threading.Thread(target=run, name=f"tunnel:{self.worker.name}", daemon=True)
        self._thread.start()
        await asyncio.to_thread(ready.wait, 10)

    async def close(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            self.socket.close()
            return
        with contextlib.suppress(RuntimeError):  # its loop already stopped
            loop.call_soon_threadsafe(loop.stop)
        await asyncio.to_thread(thread.join, 10)

    async def _shut(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._open):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._open, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._open.add(task)
        try:
            if not self._ours(writer):
                log.warning("worker %s: refused a connection from another user", self.worker.name)
                return
            far = await self._connect()
            await splice((reader, writer), far)
        except CouncilError as exc:
            log.warning("worker %s: %s", self.worker.name, exc)
        finally:
            writer.close()
            if task is not None:
                self._open.discard(task)

    def _ours(self, writer: asyncio.StreamWriter) -> bool:
        if not sys.platform.startswith("linux"):
            return True
        peer = writer.get_extra_info("peername")
        mine = writer.get_extra_info("sockname")
        owner = socket_owner(tuple(peer[:2]), tuple(mine[:2])) if peer and mine else None
        return owner == os.getuid()

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        worker = self.worker
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    worker.host, worker.port, ssl=worker.trust(), server_hostname=worker.host
                ),
                CONNECT_TIMEOUT,
            )
        except (OSError, TimeoutError) as exc:
            raise CouncilError(f"cannot reach {worker.host}:{worker.port}: {exc}") from None
        try:
            await write_message(writer, {"op": "open", "token": worker.token})
            answer = await read_message(reader)
        except (HandshakeError, OSError) as exc:
            writer.close()
            raise CouncilError(f"the worker did not open its tunnel: {exc}") from None
        if not answer.get("ok"):
            writer.close()
            raise CouncilError(f"the worker refused its tunnel: {answer.get('error')}")
        return reader, writer


def open_tunnels(folder: DataFolder, seats: Sequence[SeatConfig]) -> dict[str, Tunnel]:
    """A tunnel (its loopback port bound now, served once the loop runs) for each worker the
    seats name; a worker this hub is not paired with is a one-line refusal."""
    wanted = sorted({name for seat in seats for name in seat.workers})
    if not wanted:
        return {}
    known = {worker.name: worker for worker in load_workers(folder)}
    missing = [name for name in wanted if name not in known]
    if missing:
        raise ConfigError(
            f"{folder.config_file}: seats name worker(s) {', '.join(missing)} this hub is not "
            "paired with: pair one with `./council workers add LINK`"
        )
    return {name: Tunnel(known[name]) for name in wanted}


async def start_tunnels(
    tunnels: Mapping[str, Tunnel],
    ours: str,
    needs: Mapping[str, list[tuple[str, int]]] | None = None,
) -> None:
    """Check each worker runs this hub's llama.cpp build and has room for its share of the
    seats (`needs`, fleet.worker_needs), then serve its tunnel. A worker that does not answer
    now is said and its seats fail when their engine cannot reach it; one that runs another
    build, or offers less memory than its share, is refused."""
    for name, tunnel in tunnels.items():
        try:
            facts = await hello(tunnel.worker)
        except CouncilError as exc:
            log.warning("worker %s: %s", name, exc)
        else:
            check_version(name, facts.get("commit"), ours)
            check_room(name, facts.get("memory"), (needs or {}).get(name, []))
        await tunnel.start()


def check_room(worker: str, offered: object, shares: list[tuple[str, int]]) -> None:
    needed = sum(size for _, size in shares)
    if isinstance(offered, int) and needed > offered:
        seats = "; ".join(f"{seat} {human_size(size)}" for seat, size in shares)
        raise InsufficientMemory(
            f"worker {worker} offers {human_size(offered)} but its share of the seats needs "
            f"{human_size(needed)} ({seats}); this hub holds the rest of their layers. Lower "
            "--n-gpu-layers, add a worker, or give this one more (`council worker --mem`)"
        )
