"""`council worker`: this machine's compute for paired hubs, through llama.cpp's RPC backend.

llama.cpp's `rpc-server` has no authentication and no encryption, and its protocol has had
remote-code-execution bugs, so it never listens on the LAN: it binds 127.0.0.1 on a port of its
own, and the only way in is this process's TLS listener. A connection there first speaks the
handshake (handshake.py); only one that presents the token of a paired, unrevoked hub is joined
to rpc-server, byte for byte. Pairing is the phones' pairing (security/pairing.py, the worker's
own council.db): the worker prints a one-time link with its CA's fingerprint, and a hub trades
the code for a device token. Revoking a hub (`council devices revoke --data <worker data>`,
even while the worker runs) closes its open tunnels within a second.

What a paired hub can do: run whatever the RPC protocol lets a client run on this machine's
CPU and memory (which is why only the owner's hubs should be paired). What a stranger on the
LAN can do: a TLS handshake and one refused line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from council.datafolder import DataFolder, HubLock
from council.engine.binary import EngineBinary
from council.engine.process import free_port
from council.errors import CouncilError, EngineNotFound
from council.rpc.handshake import (
    fast_loop,
    read_message,
    splice,
    write_message,
)
from council.security import pairing
from council.store import devices
from council.store.access import Store

log = logging.getLogger("council")
RPC_NAMES = ("ggml-rpc-server", "rpc-server")  # llama.cpp renamed it
REVOCATION_CHECK = 0.25  # seconds between looks for revoked hubs


def rpc_binary(binary: EngineBinary) -> Path:
    for name in RPC_NAMES:
        found = binary.sibling(name)
        if found is not None:
            return found
    raise EngineNotFound(
        f"no rpc-server beside {binary.path}: build the engine with `./council engine build`"
    )


def build_commit(binary: EngineBinary) -> str:
    """What must match between a hub and its workers: the llama.cpp commit both were built
    from (the RPC protocol changes with it)."""
    from council.engine.binary import describe

    info = describe(binary).to_dict()
    return str(info.get("commit") or info.get("version") or "unknown")


@dataclass
class OpenTunnel:
    device_id: str
    writers: list[asyncio.StreamWriter] = field(default_factory=list)


class Worker:
    def __init__(
        self,
        folder: DataFolder,
        binary: EngineBinary,
        *,
        threads: int,
        memory: int | None,
        say: Callable[[str], None],
    ) -> None:
        self.folder = folder
        self.binary = binary
        self.threads = threads
        self.memory = memory  # bytes offered, as the owner said (None: what rpc-server says)
        self.say = say
        self.commit = build_commit(binary)
        self.rpc_port = 0
        self._rpc: subprocess.Popen[bytes] | None = None
        self._open: dict[int, OpenTunnel] = {}
        self._db: Store | None = None
        self._limiter = pairing.AttemptLimiter()

    def start_rpc(self) -> None:
        """rpc-server on loopback only, in a session of its own, dying with this process."""
        self.rpc_port = free_port()
        log_path = self.folder.logs / "rpc-server.log"
        with open(log_path, "ab") as out:
            self._rpc = subprocess.Popen(
                [
                    str(rpc_binary(self.binary)),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.rpc_port),
                    "--threads",
                    str(self.threads),
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._rpc.poll() is not None:
                raise CouncilError(f"rpc-server stopped at once: see {log_path}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.rpc_port), timeout=0.5),
            ):
                return
            time.sleep(0.05)
        raise CouncilError(f"rpc-server did not start listening: see {log_path}")

    def stop_rpc(self) -> None:
        if self._rpc is not None and self._rpc.poll() is None:
            self._rpc.terminate()
            try:
                self._rpc.wait(5)
            except subprocess.TimeoutExpired:
                self._rpc.kill()
                self._rpc.wait()

    async def serve(self, sock: socket.socket, context: ssl.SSLContext) -> None:
        self._db = Store(self.folder.database)
        server = await asyncio.start_server(
            self._connection,
            sock=sock,
            ssl=context,
            limit=16 * 1024,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        watch = asyncio.create_task(self._watch_revocations())
        try:
            async with server:
                await stop.wait()
        finally:
            watch.cancel()
            for tunnel in list(self._open.values()):
                for writer in tunnel.writers:
                    writer.close()
            await asyncio.to_thread(self._db.close)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        address = str((writer.get_extra_info("peername") or ("?",))[0])
        try:
            message = await read_message(reader)
            op = message.get("op")
            if op == "ca":
                ca = (self.folder.tls / "ca.pem").read_text()
                await write_message(writer, {"ca": ca})
            elif op == "pair":
                await self._pair(message, address, writer)
            elif op in {"hello", "open"}:
                device = await self._authenticate(message, address)
                if device is None:
                    await write_message(writer, {"error": "not paired with this worker"})
                elif op == "hello":
                    await write_message(writer, self._hello())
                else:
                    await self._tunnel(device, reader, writer)
                    return
            else:
                await write_message(writer, {"error": "unknown request"})
        except (CouncilError, ConnectionError, OSError) as exc:  # HandshakeError too
            log.info("worker: a connection from %s ended: %s", address, exc)
        finally:
            writer.close()

    def _hello(self) -> dict[str, object]:
        available = psutil.virtual_memory().available
        memory = min(self.memory, available) if self.memory else available
        return {"version": "llama.cpp", "commit": self.commit, "memory": memory}

    async def _pair(
        self, message: dict[str, object], address: str, writer: asyncio.StreamWriter
    ) -> None:
        assert self._db is not None  # noqa: S101 - set by serve()
        if (wait := self._limiter.check(address)) is not None:
            await write_message(writer, {"error": f"too many attempts: wait {wait:.0f} s"})
            return
        try:
            result = await self._db.write(
                pairing.exchange,
                str(message.get("code") or ""),
                str(message.get("name") or "council hub"),
                address,
            )
        except CouncilError:
            self._limiter.failure(address)
            await write_message(writer, {"error": "that pairing code cannot be used"})
            return
        self._limiter.success(address)
        if not result.paired:
            await write_message(writer, {"pending": result.to_dict().get("comparison")})
            return
        self.say(f"paired {result.to_dict().get('name')} ({address})")
        await write_message(writer, {"token": result.token})

    async def _authenticate(self, message: dict[str, object], address: str) -> object:
        assert self._db is not None  # noqa: S101 - set by serve()
        token = message.get("token")
        if not isinstance(token, str):
            return None
        return await self._db.write(pairing.authenticate, token, address)

    async def _tunnel(
        self, device: object, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Join this connection to rpc-server until either side closes or the hub is revoked."""
        inner = await asyncio.open_connection("127.0.0.1", self.rpc_port)
        tunnel = OpenTunnel(str(getattr(device, "id", "")), [writer, inner[1]])
        key = id(tunnel)
        self._open[key] = tunnel
        try:
            await write_message(writer, {"ok": True, "version": "llama.cpp", "commit": self.commit})
            await splice((reader, writer), inner)
        finally:
            self._open.pop(key, None)

    async def _watch_revocations(self) -> None:
        assert self._db is not None  # noqa: S101 - set by serve()
        while True:
            await asyncio.sleep(REVOCATION_CHECK)
            if not self._open:
                continue
            ids = sorted({tunnel.device_id for tunnel in self._open.values()})
            try:
                revoked = set(await self._db.read(devices.revoked_among, ids))
            except CouncilError:
                continue
            for tunnel in list(self._open.values()):
                if tunnel.device_id in revoked:
                    log.warning("worker: hub %s was revoked: its tunnel closes", tunnel.device_id)
                    for each in tunnel.writers:
                        each.close()


def run_worker(
    folder: DataFolder,
    binary: EngineBinary,
    *,
    host: str,
    port: int,
    threads: int,
    memory: int | None,
    say: Callable[[str], None],
) -> None:
    """The whole `council worker`: rpc-server, the TLS listener, a pairing link, until Ctrl-C."""
    from council.phone import invite, qr_text
    from council.server.listeners import open_lan_listener
    from council.store import db as store_db

    lock = HubLock(folder)  # one hub or worker per data folder
    lock.acquire()
    worker = Worker(folder, binary, threads=threads, memory=memory, say=say)
    try:
        lan = open_lan_listener(folder, host, port)
        lock.record(lan_url=lan.url, worker=True)  # where `council pair` sends hubs
        worker.start_rpc()
        connection = store_db.connect(folder.database)
        try:
            made = invite(connection, folder, name=None, ttl=600, confirm=False, base_url=lan.url)
        finally:
            connection.close()
        say(qr_text(made.url))
        say(f"council worker: rpc-server on 127.0.0.1:{worker.rpc_port} (loopback only)")
        say(f"pair a hub with it (the code works once, for 10 minutes):\n  {made.url}")
        say("  on the hub: ./council workers add '<that link>'   (a new code: ./council pair)")
        with asyncio.Runner(loop_factory=fast_loop) as runner:
            runner.run(worker.serve(lan.socket, lan.context))
    finally:
        worker.stop_rpc()
        lock.release()
        say("council worker stopped")
