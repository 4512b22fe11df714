"""`council worker` and a seat split across this hub and a worker on 127.0.0.3, through the
authenticated TLS tunnel; what a stranger gets; a revoked hub's tunnel; another build refused."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import psutil
import pytest

from council.config import load_config, save_config
from council.datafolder import DataFolder
from council.engine.binary import EngineBinary
from council.rpc.handshake import read_message, write_message
from council.rpc.workers import load_workers
from council.server.listeners import open_lan_listener
from tests.hubs import HubProcess, free_port, run_council
from tests.running import run

StartHub = Callable[..., HubProcess]
WORKER_HOST = "127.0.0.3"
LINK = re.compile(r"https://\S+/pair#code=\S+&fp=[0-9a-f]{64}")


def council(engine: EngineBinary, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COUNCIL_LLAMA_SERVER": str(engine.path)}
    return run_council(*args, env=env, timeout=120)


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    data: DataFolder
    port: int
    output: Path
    link: str
    children: list[int]

    def rpc_port(self) -> int:
        found = re.search(r"rpc-server on 127\.0\.0\.1:(\d+)", self.output.read_text())
        assert found, self.output.read_text()
        return int(found.group(1))


@contextlib.contextmanager
def running_worker(engine: EngineBinary, root: Path, *extra: str) -> Iterator[WorkerProcess]:
    """`council worker` on 127.0.0.3 with its own data folder, stopped (and its rpc-server
    killed by its PID) at the end."""
    data = DataFolder(root)
    data.root.mkdir()
    port = free_port()
    output = root.parent / f"{root.name}.out"
    env = {**os.environ, "COUNCIL_LLAMA_SERVER": str(engine.path)}
    command = [sys.executable, "-m", "council", "worker", "--data", str(data.root)]
    command += ["--lan-host", WORKER_HOST, "--lan-port", str(port), *extra]
    with open(output, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    children: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while not (found := LINK.search(output.read_text(errors="replace"))):
            assert process.poll() is None, output.read_text()
            assert time.monotonic() < deadline, output.read_text()
            time.sleep(0.05)
        children = [child.pid for child in psutil.Process(process.pid).children(recursive=True)]
        yield WorkerProcess(process, data, port, output, found.group(0), children)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def worker(engine_binary: EngineBinary, tmp_path: Path) -> Iterator[WorkerProcess]:
    with running_worker(engine_binary, tmp_path / "worker-stick") as started:
        yield started


def split_seat(folder: DataFolder, worker: str = "w1", ctx_size: int | None = None) -> None:
    """A fourth seat, demo-1's model with one of its two layers on the worker."""
    config = load_config(folder)
    first = config.seats[0]
    split = replace(first, name="split", workers=(worker,), extra_args=("--n-gpu-layers", "1"))
    if ctx_size is not None:
        split = replace(split, ctx_size=ctx_size)
    save_config(folder, replace(config, seats=(*config.seats, split)))


def greedy(hub: HubProcess, model: str) -> str:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": "Count to five."}],
        "max_tokens": 16,
        "temperature": 0,
    }
    response = httpx.post(f"{hub.url}/v1/chat/completions", json=body, timeout=60)
    assert response.status_code == 200, response.text
    return str(response.json()["choices"][0]["message"]["content"])


def test_a_seat_split_onto_a_worker_answers_the_same_greedy_tokens_as_it_does_alone(
    engine_binary: EngineBinary,
    worker: WorkerProcess,
    start_hub: StartHub,
    isolated_data: DataFolder,
) -> None:
    added = council(engine_binary, "workers", "add", worker.link, "--name", "w1")
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith(f"paired with worker w1 ({WORKER_HOST}:{worker.port}, ")
    [kept] = load_workers(isolated_data)
    assert kept.token not in added.stdout + added.stderr
    listed = json.loads(council(engine_binary, "workers", "list", "--json").stdout)
    assert [(row["name"], row["state"]) for row in listed] == [("w1", "reachable")]

    split_seat(isolated_data)
    hub = start_hub()
    hub.wait_ok()
    engine = next(e for e in hub.engines() if "split" in " ".join(e.cmdline()))
    argv = engine.cmdline()
    [tunnel] = argv[argv.index("--rpc") + 1].split(",")
    assert tunnel.startswith("127.0.0.1:")  # the engine talks to the hub's tunnel, not the LAN
    assert greedy(hub, "split") == greedy(hub, "demo-1")
    rpc = psutil.Process(worker.children[0])
    assert "rpc-server" in rpc.name()
    assert rpc.memory_info().rss > 0
    assert "Accepted client connection" in (worker.data.logs / "rpc-server.log").read_text()


def test_nothing_reaches_rpc_server_without_a_paired_tls_session(worker: WorkerProcess) -> None:
    # rpc-server listens on loopback's 127.0.0.1 only: not on the worker's LAN address.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((WORKER_HOST, worker.rpc_port()), timeout=5).close()
    # Plain TCP to the worker's port: RPC's first bytes get no RPC answer, only TLS refusing.
    with socket.create_connection((WORKER_HOST, worker.port), timeout=5) as plain:
        plain.sendall(b"\x00" * 64)
        plain.settimeout(5)
        received = b""
        with contextlib.suppress(ConnectionResetError, TimeoutError):
            while chunk := plain.recv(4096):
                received += chunk
    assert received == b"" or received[0] == 0x15  # nothing, or a TLS alert record

    async def with_tls(message: dict[str, object]) -> dict[str, object]:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        reader, writer = await asyncio.open_connection(WORKER_HOST, worker.port, ssl=context)
        try:
            await write_message(writer, message)
            return await read_message(reader)
        finally:
            writer.close()

    for message in ({"op": "open", "token": "cd_" + "x" * 40}, {"op": "open"}, {"op": "rm"}):
        answer = run(with_tls(message))
        assert set(answer) == {"error"}, answer


def test_a_revoked_hubs_tunnel_closes_within_a_second(
    engine_binary: EngineBinary, worker: WorkerProcess, isolated_data: DataFolder
) -> None:
    assert council(engine_binary, "workers", "add", worker.link, "--name", "w1").returncode == 0
    [paired] = load_workers(isolated_data)
    opened = threading.Event()
    closed_after: list[float] = []

    async def tunnel() -> None:
        reader, writer = await asyncio.open_connection(
            WORKER_HOST, worker.port, ssl=paired.trust(), server_hostname=WORKER_HOST
        )
        await write_message(writer, {"op": "open", "token": paired.token})
        assert (await read_message(reader))["ok"] is True
        opened.set()
        while not revoked_at:
            await asyncio.sleep(0.01)
        data = await asyncio.wait_for(reader.read(1), 10)  # EOF once the worker cuts it
        closed_after.append(time.monotonic() - revoked_at[0])
        assert data == b""
        writer.close()

    revoked_at: list[float] = []
    thread = threading.Thread(target=lambda: asyncio.run(tunnel()))
    thread.start()
    assert opened.wait(30)
    [device] = json.loads(
        council(engine_binary, "devices", "list", "--data", str(worker.data.root), "--json").stdout
    )
    revoked = council(
        engine_binary, "devices", "revoke", device["id"], "--data", str(worker.data.root)
    )
    revoked_at.append(time.monotonic())
    assert revoked.returncode == 0
    thread.join(20)
    assert closed_after, "the tunnel stayed open"
    print(f"tunnel closed {closed_after[0]:.2f} s after the revocation")
    listed = json.loads(council(engine_binary, "workers", "list", "--json").stdout)
    assert listed[0]["state"] == "unreachable"
    assert "not paired with this worker" in listed[0]["reason"]


@contextlib.contextmanager
def fake_worker(tmp_path: Path, commit: str) -> Iterator[str]:
    """A TLS listener on 127.0.0.4 speaking the worker's handshake, built from another
    llama.cpp: its link."""
    folder = DataFolder(tmp_path / "fake-worker")
    folder.root.mkdir()
    folder.prepare()
    lan = open_lan_listener(folder, "127.0.0.4", free_port())
    assert lan.ca is not None
    stop = threading.Event()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        message = await read_message(reader)
        replies = {
            "ca": {"ca": lan.ca.pem.decode() if lan.ca else ""},
            "pair": {"token": "cd_fake"},
            "hello": {"version": "llama.cpp", "commit": commit, "memory": 1 << 30},
        }
        await write_message(writer, replies.get(str(message.get("op")), {"error": "no"}))
        writer.close()

    async def serve() -> None:
        server = await asyncio.start_server(answer, sock=lan.socket, ssl=lan.context)
        async with server:
            while not stop.is_set():
                await asyncio.sleep(0.05)

    thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    thread.start()
    fingerprint = lan.ca.fingerprint.replace(":", "").lower()
    try:
        yield f"https://127.0.0.4:{lan.port}/pair#code=fakecode&fp={fingerprint}"
    finally:
        stop.set()
        thread.join(5)


def test_a_worker_built_from_another_llama_cpp_is_refused_naming_both(
    engine_binary: EngineBinary, isolated_data: DataFolder, tmp_path: Path
) -> None:
    with fake_worker(tmp_path, "deadbee") as link:
        refused = council(engine_binary, "workers", "add", link, "--name", "old")
    assert refused.returncode == 1
    [line] = refused.stderr.strip().splitlines()
    assert "worker old runs llama.cpp deadbee, this hub " in line
    assert "RPC needs the same build on both" in line
    assert load_workers(isolated_data) == []


def test_a_seat_naming_a_worker_that_is_not_paired_stops_council_up_in_one_line(
    engine_binary: EngineBinary, isolated_data: DataFolder
) -> None:
    split_seat(isolated_data, worker="nowhere")
    result = council(engine_binary, "up", "--no-browser", "--port", str(free_port()))
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert "seats name worker(s) nowhere this hub is not paired with" in line


def test_a_plan_whose_share_does_not_fit_on_its_worker_is_refused_naming_that_share(
    engine_binary: EngineBinary, isolated_data: DataFolder, tmp_path: Path
) -> None:
    with running_worker(engine_binary, tmp_path / "small-worker", "--mem", "1") as small:
        assert council(engine_binary, "workers", "add", small.link, "--name", "w1").returncode == 0
        split_seat(isolated_data, ctx_size=1 << 18)  # its half of the KV cache: several MB
        result = council(engine_binary, "up", "--no-browser", "--port", str(free_port()))
    assert result.returncode == 1
    [line] = [line for line in result.stderr.strip().splitlines() if line.startswith("Error")]
    assert "worker w1 offers 1 MB but its share of the seats needs" in line
    assert "this hub holds the rest of their layers" in line
