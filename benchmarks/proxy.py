"""Streaming through the hub's `/v1` next to streaming from llama-server directly, in one run.

One hub serves one seat (a generated random-weight model); the benchmark finds that seat's
engine (its port and per-run key, readable by the owner) and sends the same streamed chat
completions to both, at 1, 8 and 32 concurrent streams, alternating which goes first. Where
Debian's nginx is installed it is run as a reverse proxy to the same engine (buffering off, a
connection per request, as council does) as a reference.

The default model generates at the pace of a real small model on a laptop CPU (about 150
tokens/s alone here); `--model demo` generates thousands of tokens/s, which makes the proxy's
per-token cost, not the model, the thing measured. `--engine-threads 1` leaves a core to the
proxies on a two-core machine, where an engine on every core is slowed by any other work.

Reported per target: time to first token (the first SSE event) p50 and p99, and tokens/s over
each batch (every stream's tokens, as the engine counted them, over the batch's wall time).
Then: added TTFT (proxy p50/p99 minus direct p50/p99) and the throughput ratio (proxy/direct).

    .venv/bin/python benchmarks/proxy.py [--model paced|demo] [--rounds 10] [--max-tokens 64]
        [--streams 1,8,32] [--engine-threads N]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this folder would come first on sys.path, where council.py is a benchmark:
# put the repository there instead, so `council` is the package and `benchmarks.hubs` resolves.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

import psutil
from benchmarks.hubs import PACED, running_hub, running_nginx

from council.config import HubConfig, SeatConfig, save_config
from council.datafolder import DataFolder
from council.models.demo import DEMO_SHAPE, write_demo_model

SEAT = "bench"
# "paced" runs at a real small model's pace; the default demo model runs a hundred times
# faster, the worst case for a proxy's per-token cost.
SHAPES = {"demo": DEMO_SHAPE, "paced": PACED}
PREDICTED = re.compile(rb'"predicted_n"\s*:\s*(\d+)')
NGINX_CONF = """
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    upstream engine {{ server 127.0.0.1:{engine_port}; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://engine;
            proxy_http_version 1.1;
            proxy_set_header Connection close;  # a connection per request, as council does
            proxy_buffering off;
            proxy_request_buffering off;
        }}
    }}
}}
"""


@dataclass
class Target:
    name: str
    url: str
    key: str
    ttft: dict[int, list[float]] = field(default_factory=dict)
    rates: dict[int, list[float]] = field(default_factory=dict)


class _Stream(asyncio.Protocol):
    """A load generator's client: it notes when the first SSE event arrives and keeps the tail.

    It does no HTTP parsing beyond that (the request says `Connection: close`, so the answer
    ends when the connection does): a Python HTTP client would spend more CPU per event than
    the proxies being measured, and on two cores that would be most of what gets measured.
    """

    def __init__(self, request: bytes, started: float) -> None:
        self.request, self.started = request, started
        self.first = 0.0
        self.head = b""
        self.tail = b""
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        if not self.first and b"data: " in data:
            self.first = time.perf_counter() - self.started
        if len(self.head) < 64:
            self.head += data
        self.tail = (self.tail + data)[-4096:]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def one_stream(target: Target, body: bytes) -> tuple[float, int]:
    """Seconds to the first SSE event, and the tokens the engine says it generated."""
    # A fresh connection per request, whichever the target: llama-server closes connections
    # after a streamed answer without saying so, so a kept-alive one may fail (engine_headers).
    host, port = target.url.removeprefix("http://").rsplit(":", 1)
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: Bearer {target.key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    request = head.encode() + body
    started = time.perf_counter()
    loop = asyncio.get_running_loop()
    _, stream = await loop.create_connection(lambda: _Stream(request, started), host, int(port))
    await stream.done
    if not stream.head.startswith(b"HTTP/1.1 200"):
        raise SystemExit(f"{target.name} answered {stream.head!r}")
    found = PREDICTED.findall(stream.tail)
    return stream.first, int(found[-1]) if found else 0


async def batch(target: Target, streams: int, max_tokens: int) -> None:
    question = [{"role": "user", "content": "Count to a thousand."}]
    request = {
        "model": SEAT,
        "stream": True,
        "max_tokens": max_tokens,
        "ignore_eos": True,
        "temperature": 0.0,
        "messages": question,
    }
    body = json.dumps(request).encode()
    started = time.perf_counter()
    results = await asyncio.gather(*(one_stream(target, body) for _ in range(streams)))
    wall = time.perf_counter() - started
    target.ttft.setdefault(streams, []).extend(first for first, _ in results)
    target.rates.setdefault(streams, []).append(sum(tokens for _, tokens in results) / wall)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def engine_of(hub: subprocess.Popen[bytes]) -> tuple[int, str]:
    for child in psutil.Process(hub.pid).children(recursive=True):
        if "llama-server" in child.name():
            argv = child.cmdline()
            return int(argv[argv.index("--port") + 1]), child.environ()["LLAMA_API_KEY"]
    raise SystemExit("the hub's engine was not found")


async def measure(targets: list[Target], levels: list[int], rounds: int, max_tokens: int) -> None:
    for target in targets:  # warm-up: the engine's caches, the hub's first requests
        await batch(target, 4, 8)
        target.ttft.clear()
        target.rates.clear()
    for streams in levels:
        for n in range(rounds):
            order = targets[n % len(targets) :] + targets[: n % len(targets)]
            for target in order:
                await batch(target, streams, max_tokens)


def report(targets: list[Target], levels: list[int]) -> None:
    direct = targets[0]
    print(
        f"{'streams':>7}  {'target':<8} {'TTFT p50':>10} {'TTFT p99':>10} {'tok/s':>9}  "
        f"{'added p50':>10} {'added p99':>10} {'tok/s ratio':>11}"
    )
    for streams in levels:
        base50 = percentile(direct.ttft[streams], 0.5) * 1000
        base99 = percentile(direct.ttft[streams], 0.99) * 1000
        base_rate = statistics.median(direct.rates[streams])
        for target in targets:
            p50 = percentile(target.ttft[streams], 0.5) * 1000
            p99 = percentile(target.ttft[streams], 0.99) * 1000
            rate = statistics.median(target.rates[streams])
            added = f"  {p50 - base50:>+8.2f}ms {p99 - base99:>+8.2f}ms {rate / base_rate:>10.3f}x"
            extra = "" if target is direct else added
            print(f"{streams:>7}  {target.name:<8} {p50:>8.2f}ms {p99:>8.2f}ms {rate:>9.0f}{extra}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="batches per level and target")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--streams", default="1,8,32")
    parser.add_argument(
        "--model",
        choices=sorted(SHAPES),
        default="paced",
        help="paced (default): ~130M parameters, a small model's pace; demo: "
        "thousands of tokens/s, the worst case for a proxy",
    )
    parser.add_argument(
        "--engine-threads",
        type=int,
        default=0,
        help="the engine's threads (0: all cores, a seat's default)",
    )
    args = parser.parse_args()
    levels = [int(level) for level in args.streams.split(",")]
    with tempfile.TemporaryDirectory() as temp:
        folder = DataFolder(Path(temp) / "stick")
        folder.root.mkdir()
        folder.prepare()
        write_demo_model(
            folder.models / f"{SEAT}.gguf", seed=1, context_length=16384, shape=SHAPES[args.model]
        )
        slots = max(levels)
        # Every stream gets a slot of its own, so the engine never queues one behind another.
        seat = SeatConfig(
            SEAT,
            f"{SEAT}.gguf",
            ctx_size=args.max_tokens + 128,
            threads=args.engine_threads,
            slots=slots,
        )
        save_config(folder, HubConfig(seats=(seat,)))
        with running_hub(folder.root) as hub:
            engine_port, key = engine_of(hub.process)
            targets = [
                Target("direct", f"http://127.0.0.1:{engine_port}", key),
                Target("council", hub.url, key),
            ]
            # The hub needs no key on its localhost listener; sending the engine's does no harm.
            with running_nginx(Path(temp), NGINX_CONF, engine_port=engine_port) as nginx:
                if nginx is not None:
                    targets.append(Target("nginx", f"http://127.0.0.1:{nginx}", key))
                threads = args.engine_threads or os.cpu_count()
                print(
                    f"{args.rounds} batches per level and target, {args.max_tokens} tokens a "
                    f"stream, {args.model} model, {threads} engine threads on "
                    f"{os.cpu_count()} cores"
                    f"{'' if nginx else ' (nginx not installed: no reference)'}"
                )
                asyncio.run(measure(targets, levels, args.rounds, args.max_tokens))
                report(targets, levels)


if __name__ == "__main__":
    main()
