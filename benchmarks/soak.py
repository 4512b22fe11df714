"""A soak: N people using one hub at once for a set time, on the demo seats.

Each simulated user loops until the time is up, in turn: a council round in a new conversation,
a follow-up in that conversation, a streamed `/v1` chat completion to one seat, and a read of
the conversation list. Every request is timed from its start to its last byte (a round to its
`done` event); a request counts as an error when its HTTP status is not a success, when a round
ends other than `done` or says `error`, or when the connection fails, each by kind.

The hub's own memory (RSS of the `council up` process, engines not included) is read at the
start, after `--warmup` seconds (caches, pools and SQLite's page cache have filled by then) and
at the end; the growth per round after warm-up is the figure to watch for leaks. Under 8 users
the hub levels off within about three minutes (measured: flat from 180 s to 300 s), hence the
default warm-up of half a 5-minute run.

    .venv/bin/python benchmarks/soak.py [--users 8] [--duration 300] [--warmup 150]
        [--max-tokens 16]
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
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import httpx
import psutil
from benchmarks.hubs import running_hub

from council.datafolder import DataFolder
from council.defaults import DEMO_SEATS

KINDS = ("round", "follow-up", "v1 stream", "list")
SAMPLE_EVERY = 30.0  # seconds between readings of the hub's RSS


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter[str] = field(default_factory=Counter)
    rounds: int = 0
    rounds_after_warmup: int = 0
    warm: bool = False

    def count(self, kind: str, began: float, error: str | None) -> None:
        self.latencies[kind].append(time.monotonic() - began)
        if error is not None:
            self.errors[f"{kind}: {error}"] += 1
        elif kind in {"round", "follow-up"}:
            self.rounds += 1
            self.rounds_after_warmup += self.warm


async def council_round(
    client: httpx.AsyncClient, conversation: str | None, question: str, max_tokens: int
) -> tuple[str | None, str | None]:
    """(conversation id, error kind or None) of one round read to its end."""
    path = f"/api/conversations/{conversation}/messages" if conversation else "/api/messages"
    body = {"question": question, "max_tokens": max_tokens}
    async with client.stream("POST", path, json=body) as response:
        if response.status_code != 200:
            await response.aread()
            return conversation, f"HTTP {response.status_code}"
        conversation = response.headers.get("x-council-conversation", conversation)
        kind, status, said_error = "", None, False
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:") and kind == "done":
                status = json.loads(line[5:])["status"]
            elif kind == "error":
                said_error = True
    if status != "done":
        return conversation, f"round {status or 'unfinished'}"
    return conversation, "error event" if said_error else None


async def v1_stream(client: httpx.AsyncClient, seat: str, max_tokens: int) -> str | None:
    body = {
        "model": seat,
        "messages": [{"role": "user", "content": "Say something."}],
        "max_tokens": max_tokens,
        "stream": True,
    }
    async with client.stream("POST", "/v1/chat/completions", json=body) as response:
        if response.status_code != 200:
            await response.aread()
            return f"HTTP {response.status_code}"
        finished = False
        async for line in response.aiter_lines():
            if line.startswith("data:") and '"error"' in line:
                return "error in stream"
            finished = finished or line.strip() == "data: [DONE]"
    return None if finished else "stream cut short"


async def user(number: int, url: str, end: float, max_tokens: int, tally: Tally) -> None:
    seats = [name for name, _ in DEMO_SEATS]
    async with httpx.AsyncClient(base_url=url, timeout=120, trust_env=False) as client:
        turn = 0
        while time.monotonic() < end:
            turn += 1
            began = time.monotonic()
            try:
                conversation, error = await council_round(
                    client,
                    None,
                    f"User {number}, question {turn}: why is the sky blue?",
                    max_tokens,
                )
                tally.count("round", began, error)
                if conversation and time.monotonic() < end:
                    began = time.monotonic()
                    _, error = await council_round(
                        client, conversation, "And at sunset?", max_tokens
                    )
                    tally.count("follow-up", began, error)
                began = time.monotonic()
                error = await v1_stream(client, seats[(number + turn) % len(seats)], max_tokens)
                tally.count("v1 stream", began, error)
                began = time.monotonic()
                listed = await client.get("/api/conversations")
                tally.count(
                    "list", began, None if listed.is_success else f"HTTP {listed.status_code}"
                )
            except httpx.HTTPError as exc:
                tally.count("connection", began, type(exc).__name__)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def soak(url: str, pid: int, args: argparse.Namespace) -> None:
    users, duration, warmup, max_tokens = args.users, args.duration, args.warmup, args.max_tokens
    hub = psutil.Process(pid)
    tally = Tally()
    started = time.monotonic()
    rss_start = hub.memory_info().rss
    end = started + duration
    workers = [asyncio.create_task(user(n, url, end, max_tokens, tally)) for n in range(users)]
    samples: list[tuple[float, int, int]] = []  # (seconds, rounds so far, RSS)

    async def sample() -> None:
        while True:
            await asyncio.sleep(SAMPLE_EVERY)
            samples.append((time.monotonic() - started, tally.rounds, hub.memory_info().rss))

    sampler = asyncio.create_task(sample())
    await asyncio.sleep(min(warmup, duration))
    tally.warm = True
    rss_warm = hub.memory_info().rss
    await asyncio.gather(*workers)
    sampler.cancel()
    rss_end = hub.memory_info().rss
    elapsed = time.monotonic() - started

    total = sum(len(values) for values in tally.latencies.values())
    errors = sum(tally.errors.values())
    print(f"soak: {users} users for {elapsed:.0f} s on the demo seats, max_tokens {max_tokens}")
    print(f"requests {total}, errors {errors}")
    print(f"{'kind':<12}{'n':>7}{'p50 ms':>10}{'p99 ms':>10}")
    for kind in (*KINDS, "connection"):
        values = tally.latencies.get(kind)
        if values:
            p50, p99 = percentile(values, 0.5) * 1000, percentile(values, 0.99) * 1000
            print(f"{kind:<12}{len(values):>7}{p50:>10.0f}{p99:>10.0f}")
    for kind, count in sorted(tally.errors.items()):
        print(f"  error  {kind}: {count}")
    rounds = tally.rounds_after_warmup
    growth = (rss_end - rss_warm) / rounds if rounds else float("nan")
    print(
        f"hub RSS: start {rss_start / 1e6:.1f} MB, after {warmup:.0f} s warm-up "
        f"{rss_warm / 1e6:.1f} MB, end {rss_end / 1e6:.1f} MB"
    )
    print("hub RSS over time: " + ", ".join(f"{t:.0f} s {r / 1e6:.1f} MB" for t, _, r in samples))
    if len(samples) >= 4:  # the second half alone: a cache that filled early is not a leak
        (_, rounds_mid, rss_mid), (_, rounds_last, rss_last) = (
            samples[len(samples) // 2],
            samples[-1],
        )
        late = (rss_last - rss_mid) / max(1, rounds_last - rounds_mid)
        print(f"RSS growth over the second half: {late:+.0f} bytes/round")
    print(
        f"RSS growth after warm-up: {rss_end - rss_warm:+d} bytes over {rounds} rounds "
        f"= {growth:+.0f} bytes/round"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--duration", type=float, default=300.0, help="seconds")
    parser.add_argument("--warmup", type=float, default=150.0, help="seconds")
    parser.add_argument("--max-tokens", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="council-soak-") as root:
        folder = DataFolder(Path(root))
        folder.prepare()  # an empty stick: council up gives it the three demo seats
        with running_hub(folder.root) as hub:
            asyncio.run(soak(hub.url, hub.process.pid, args))


if __name__ == "__main__":
    main()
