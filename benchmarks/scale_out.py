"""What spreading one model over machines costs, in one run.

1. Tokens/s of one model (the starter, SmolLM2-135M Q4_1, greedy, 64 tokens) in llama-server:
   alone; with half its layers on llama.cpp's raw `rpc-server` over loopback; with them on a
   `council worker` through council's TLS tunnel over loopback; and through the tunnel to a
   worker in a network namespace of its own, over a veth pair shaped like gigabit Ethernet
   (1 Gbit/s, 0.5 ms each way) and like Wi-Fi (100 Mbit/s, 3 ms ± 1 ms each way).
2. The tunnel's overhead: its tokens/s against raw rpc-server's on the same loopback link
   (the target is a cost of at most 5%).
3. The time to the first token of a peer hub's seat next to a local seat (two hubs on this
   machine, the peer's LAN listener on 127.0.0.2, one-seat rounds on demo models).

The rate is shaped with `tc`'s token bucket (tbf) on both ends of the veth pair. The delay is
added by a relay in this process between llama-server and the tunnel, each direction on its
own, order kept: this kernel has no `netem` (`tc qdisc add … netem` says "Specified qdisc kind
is unknown"), and a relay is what is left. The shaped links need root and `ip`; without them
they are skipped and said so.

    .venv/bin/python benchmarks/scale_out.py [--tokens 64] [--runs 3]
"""

from __future__ import annotations

import sys
from pathlib import Path

if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
from benchmarks.hubs import free_port

from council.config import HubConfig, save_config
from council.datafolder import DataFolder
from council.defaults import demo_seats
from council.engine.binary import EngineBinary, find_llama_server
from council.models.starter import starter_model
from council.rpc.handshake import fast_loop
from council.rpc.tunnel import Tunnel
from council.rpc.worker import build_commit, rpc_binary
from council.rpc.workers import WorkerConfig, pair_worker

NETNS = "council-bench"
HOST_IF, NS_IF = "cbench0", "cbench1"
HOST_IP, NS_IP = "10.251.0.1", "10.251.0.2"
PROMPT = "Write a short paragraph about the sea, the wind and the ships that cross them."
LINK = re.compile(r"https://\S+/pair#code=\S+&fp=[0-9a-f]{64}")


@dataclass(frozen=True)
class Link:
    name: str
    rate: str | None  # tbf rate, None: unshaped
    delay_ms: float
    jitter_ms: float


GIGABIT = Link("1 Gbit/s, 0.5 ms", "1gbit", 0.5, 0.0)
WIFI = Link("100 Mbit/s, 3 ms ± 1 ms", "100mbit", 3.0, 1.0)


# --- processes ----------------------------------------------------------------------------------


@contextlib.contextmanager
def process(command: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A process of ours, stopped by its PID at the end."""
    with open(log, "wb") as out:
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield child
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def wait_healthy(
    base: str, child: subprocess.Popen[bytes], log: Path, deadline: float = 120
) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if child.poll() is not None:
            raise SystemExit(f"stopped early:\n{log.read_text(errors='replace')[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/health", timeout=2, trust_env=False).status_code == 200:
                return
        time.sleep(0.1)
    raise SystemExit(f"not healthy in time:\n{log.read_text(errors='replace')[-2000:]}")


def tokens_per_second(base: str, tokens: int, runs: int) -> float:
    body = {"prompt": PROMPT, "n_predict": tokens, "temperature": 0, "cache_prompt": False}
    body["ignore_eos"] = True  # every run generates exactly `tokens`
    speeds = []
    for run in range(runs + 1):  # the first warms the engine up
        answer = httpx.post(f"{base}/completion", json=body, timeout=600, trust_env=False).json()
        if run:
            speeds.append(float(answer["timings"]["predicted_per_second"]))
    return statistics.median(speeds)


def measure(
    binary: EngineBinary,
    model: Path,
    rpc: str | None,
    *,
    layers: int,
    args: argparse.Namespace,
    tmp: Path,
) -> float:
    port = free_port()
    command = [str(binary.path), "-m", str(model), "--host", "127.0.0.1", "--port", str(port)]
    command += ["-c", "512", "-t", "1", "--no-webui", "--parallel", "1", *binary.runtime_args]
    if rpc is not None:
        command += ["--rpc", rpc, "--n-gpu-layers", str(layers)]
    log = tmp / f"llama-server-{port}.log"
    with process(command, log) as child:
        base = f"http://127.0.0.1:{port}"
        wait_healthy(base, child, log)
        return tokens_per_second(base, args.tokens, args.runs)


# --- a loop in a thread, for the tunnel and the delay relay ------------------------------------


class LoopThread:
    def __init__(self) -> None:
        self.loop = fast_loop()  # what the tunnel runs on, for the relay beside it
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, work):  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(work, self.loop).result()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


async def delay_relay(target: tuple[str, int], link: Link) -> tuple[asyncio.Server, int]:
    """A loopback port whose connections reach `target` with `link`'s delay each way: every
    chunk is held until its time, and never released before one read earlier."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def release() -> None:
            while True:
                due, data = await queue.get()
                if not data:
                    writer.close()
                    return
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                writer.write(data)
                await writer.drain()

        sender = asyncio.create_task(release())
        last = 0.0
        try:
            while data := await reader.read(256 * 1024):
                jitter = random.uniform(-link.jitter_ms, link.jitter_ms)  # noqa: S311
                last = max(last, time.monotonic() + max(0.0, link.delay_ms + jitter) / 1000)
                queue.put_nowait((last, data))
        finally:
            queue.put_nowait((last, b""))
            with contextlib.suppress(Exception):
                await sender

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        far_reader, far_writer = await asyncio.open_connection(*target)
        await asyncio.gather(pipe(reader, far_writer), pipe(far_reader, writer))

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    return server, int(server.sockets[0].getsockname()[1])


# --- workers ------------------------------------------------------------------------------------


@contextlib.contextmanager
def council_worker(
    binary: EngineBinary, tmp: Path, host: str, prefix: list[str]
) -> Iterator[tuple[str, Path]]:
    data = tmp / f"worker-{host}"
    data.mkdir()
    port = free_port()
    command = [*prefix, sys.executable, "-m", "council", "worker", "--data", str(data)]
    command += ["--lan-host", host, "--lan-port", str(port), "--llama-server", str(binary.path)]
    log = tmp / f"worker-{host}.out"
    with process(command, log) as child:
        end = time.monotonic() + 60
        while not (found := LINK.search(log.read_text(errors="replace"))):
            if child.poll() is not None or time.monotonic() > end:
                raise SystemExit(f"the worker did not start:\n{log.read_text(errors='replace')}")
            time.sleep(0.05)
        yield found.group(0), data


def paired(binary: EngineBinary, link: str) -> WorkerConfig:
    worker, _ = asyncio.run(pair_worker([], link, "bench", build_commit(binary)))
    return worker


@contextlib.contextmanager
def netns() -> Iterator[list[str]]:
    """A namespace with one end of a veth pair (10.251.0.2), the other here (10.251.0.1)."""
    run = lambda *cmd: subprocess.run(cmd, check=True, capture_output=True)  # noqa: E731
    run("ip", "netns", "add", NETNS)
    try:
        run("ip", "link", "add", HOST_IF, "type", "veth", "peer", "name", NS_IF)
        run("ip", "link", "set", NS_IF, "netns", NETNS)
        run("ip", "addr", "add", f"{HOST_IP}/30", "dev", HOST_IF)
        run("ip", "link", "set", HOST_IF, "up")
        inside = ["ip", "netns", "exec", NETNS]
        run(*inside, "ip", "addr", "add", f"{NS_IP}/30", "dev", NS_IF)
        run(*inside, "ip", "link", "set", NS_IF, "up")
        run(*inside, "ip", "link", "set", "lo", "up")
        yield inside
    finally:
        subprocess.run(["ip", "link", "del", HOST_IF], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", NETNS], capture_output=True, check=False)


def shape(inside: list[str], rate: str | None) -> None:
    for prefix, device in (([], HOST_IF), (inside, NS_IF)):
        subprocess.run(
            [*prefix, "tc", "qdisc", "del", "dev", device, "root"], capture_output=True, check=False
        )
        if rate is not None:
            subprocess.run(
                [
                    *prefix,
                    "tc",
                    "qdisc",
                    "add",
                    "dev",
                    device,
                    "root",
                    "tbf",
                    "rate",
                    rate,
                    "burst",
                    "256kb",
                    "latency",
                    "50ms",
                ],
                check=True,
                capture_output=True,
            )


# --- a peer seat's first token ------------------------------------------------------------------


def first_token(url: str, token: str, seat: str) -> float:
    body = {"question": "Say something.", "seats": [seat], "chair": seat, "max_tokens": 8}
    headers = {"authorization": f"Bearer {token}"}
    started = time.monotonic()
    with httpx.stream(
        "POST", f"{url}/api/messages", json=body, headers=headers, timeout=120, trust_env=False
    ) as response:
        kind = ""
        for line in response.iter_lines():
            if line.startswith("event:"):
                kind = line[6:].strip()
            elif kind == "seat_delta":
                return time.monotonic() - started
    raise SystemExit(f"no token from {seat}")


@contextlib.contextmanager
def hub(binary: EngineBinary, data: Path, *extra: str) -> Iterator[tuple[str, str]]:
    port = free_port()
    command = [sys.executable, "-m", "council", "up", "--no-browser", "--port", str(port)]
    command += ["--data", str(data), "--llama-server", str(binary.path), *extra]
    log = data.parent / f"{data.name}.out"
    with process(command, log) as child:
        url = f"http://127.0.0.1:{port}"
        end = time.monotonic() + 120
        while time.monotonic() < end:
            if child.poll() is not None:
                raise SystemExit(log.read_text())
            token_file = data / "owner.token"
            if token_file.exists():
                token = token_file.read_text().strip()
                with contextlib.suppress(httpx.HTTPError):
                    health = httpx.get(
                        f"{url}/api/health",
                        headers={"authorization": f"Bearer {token}"},
                        timeout=2,
                        trust_env=False,
                    ).json()
                    if health["status"] == "ok":
                        yield url, token
                        return
            time.sleep(0.1)
        raise SystemExit("the hub did not become healthy")


def peer_first_token(binary: EngineBinary, tmp: Path, runs: int) -> tuple[float, float]:
    folders = []
    for name in ("here", "peer"):
        folder = DataFolder(tmp / f"{name}-stick")
        folder.root.mkdir()
        folder.prepare()
        save_config(folder, HubConfig(seats=demo_seats()))
        folders.append(folder)
    here, peer = folders
    with hub(binary, peer.root, "--lan", "--lan-host", "127.0.0.2", "--lan-port", str(free_port())):
        pair = subprocess.run(
            [sys.executable, "-m", "council", "pair", "--data", str(peer.root), "--json"],
            capture_output=True,
            text=True,
            check=True,
        )
        link = json.loads(pair.stdout)["url"]
        subprocess.run(
            [
                sys.executable,
                "-m",
                "council",
                "peers",
                "add",
                link,
                "--name",
                "peer",
                "--data",
                str(here.root),
            ],
            capture_output=True,
            check=True,
        )
        with hub(binary, here.root) as (url, token):
            end = time.monotonic() + 60
            while time.monotonic() < end:
                rows = httpx.get(
                    f"{url}/api/seats",
                    headers={"authorization": f"Bearer {token}"},
                    trust_env=False,
                ).json()["seats"]
                if any(row["name"] == "peer/demo-1" and row["state"] == "ready" for row in rows):
                    break
                time.sleep(0.2)
            local, remote = [], []
            for _ in range(runs + 1):
                local.append(first_token(url, token, "demo-1"))
                remote.append(first_token(url, token, "peer/demo-1"))
            return statistics.median(local[1:]), statistics.median(remote[1:])


# --- the run ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    binary = find_llama_server(DataFolder(Path("/nonexistent")))
    model = starter_model()
    layers = 15  # of the starter's 30: half the model on the worker
    loop = LoopThread()
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="council-scale-") as name:
        tmp = Path(name)
        results["local only"] = measure(binary, model, None, layers=0, args=args, tmp=tmp)

        rpc_port = free_port()
        raw = [str(rpc_binary(binary)), "--host", "127.0.0.1", "--port", str(rpc_port), "-t", "1"]
        with process(raw, tmp / "rpc-raw.log"):
            time.sleep(1)
            results["raw rpc-server, loopback"] = measure(
                binary, model, f"127.0.0.1:{rpc_port}", layers=layers, args=args, tmp=tmp
            )

        with council_worker(binary, tmp, "127.0.0.3", []) as (link, _):
            tunnel = Tunnel(paired(binary, link))
            loop.run(tunnel.start())
            results["council tunnel, loopback"] = measure(
                binary, model, tunnel.address, layers=layers, args=args, tmp=tmp
            )
            loop.run(tunnel.close())

        if os.geteuid() == 0 and shutil.which("ip") and shutil.which("tc"):
            with netns() as inside, council_worker(binary, tmp, NS_IP, inside) as (link, _):
                tunnel = Tunnel(paired(binary, link))
                loop.run(tunnel.start())
                for shaped in (GIGABIT, WIFI):
                    shape(inside, shaped.rate)
                    server, port = loop.run(delay_relay(("127.0.0.1", tunnel.port), shaped))
                    results[f"council tunnel, {shaped.name}"] = measure(
                        binary, model, f"127.0.0.1:{port}", layers=layers, args=args, tmp=tmp
                    )
                    server.close()
                loop.run(tunnel.close())
        else:
            print("(the shaped links need root, `ip` and `tc`: skipped)")

        local_ttft, peer_ttft = peer_first_token(binary, tmp, args.runs + 2)
    loop.close()

    base = results["local only"]
    print(
        f"\n{model.name}, {args.tokens} tokens, greedy, 1 thread; split runs: {layers} of 30 "
        "layers on the worker"
    )
    print(f"{'':<40}{'tokens/s':>10}{'vs local':>10}")
    for label, speed in results.items():
        print(f"{label:<40}{speed:>10.1f}{speed / base:>10.2f}")
    raw_speed = results["raw rpc-server, loopback"]
    tunnel_speed = results["council tunnel, loopback"]
    print(
        f"\ntunnel vs raw rpc-server on loopback: {tunnel_speed / raw_speed:.3f} "
        f"({100 * (1 - tunnel_speed / raw_speed):+.1f}% cost; target ≤ 5%)"
    )
    print(
        f"time to first token, one-seat round: local seat {1000 * local_ttft:.1f} ms, "
        f"peer seat {1000 * peer_ttft:.1f} ms (+{1000 * (peer_ttft - local_ttft):.1f} ms)"
    )


if __name__ == "__main__":
    main()
