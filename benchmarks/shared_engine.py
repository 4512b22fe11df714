"""Seats of one model in one engine, measured: the answer stage of three starter seats as
three engines splitting the cores (how council ran them before), as one shared engine, and
one seat answering alone; then how many reviews yield a ranking with and without the grammar.

Engines: council's own Fleet (engine/fleet.py) on the starter model (SmolLM2-135M-Instruct,
models/starter.py), in a temporary stick. (a) three seats whose extra_args differ (a `--seed`
each), so each gets an engine and a third of the cores, as every seat did before sharing;
(b) the same three seats with equal settings, which share one engine (`--parallel` 3 x slots);
(c) one seat alone with all the cores. Each round sends the same chat request (same prompt,
max_tokens, temperature 0, end of text ignored so every answer is max_tokens long) to each
seat at once and times the stage until the last answer. Reported: the median wall time of
each, the ratios (a)/(c) and (b)/(c) (target (b)/(c) <= 1.5), and the engines' total RSS
after answering, (a) against (b) (target: (b) at most half of (a)).

Rankings: a hub (`council up`, starter seats) runs `--rounds` synthesize rounds; every review
records how its ranking was had (`ranking_by`): "text" (the text parser read the model's own
block: what council had before grammars) or "grammar" (the follow-up under a grammar, asked
only when the text parser found none). Reported: the share of reviews with a ranking from the
text alone (before) and from both (after; target 100%).

    .venv/bin/python benchmarks/shared_engine.py [--stage-rounds 3] [--max-tokens 64]
        [--rounds 10] [--round-tokens 48] [--model GGUF] [--engine-args "--flash-attn on"]

`--model` times the answer stage on another model (the rankings stay the starter's), and
`--engine-args` adds llama-server flags to every engine: how the shared engine's cost against
one seat alone moves with the model's size and the engine's settings.
"""

from __future__ import annotations

import sys
from pathlib import Path

if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import asyncio
import json
import os
import shlex
import shutil
import statistics
import tempfile
import time
from collections import Counter

import httpx
import psutil
from benchmarks.hubs import running_hub

from council.config import SeatConfig
from council.datafolder import DataFolder
from council.engine.binary import find_llama_server
from council.engine.fleet import Fleet, plan_seats
from council.engine.process import engine_headers
from council.models import starter

PROMPT = "Write a short story about a lighthouse keeper who finds a message in a bottle."
QUESTIONS = (
    "Why is the sky blue?",
    "What causes the seasons on Earth?",
    "How do bees make honey?",
    "Why do cats purr?",
    "What is the tallest mountain in the world?",
    "How does a rainbow form?",
    "Why is the sea salty?",
    "What do plants need to grow?",
    "How far away is the Moon?",
    "Why do leaves change colour in autumn?",
)
MB = 1024 * 1024


def _seats(
    model: str, shared: bool, count: int, engine_args: tuple[str, ...] = ()
) -> list[SeatConfig]:
    return [
        SeatConfig(
            f"seat-{n}",
            model,
            extra_args=(*engine_args, *(() if shared else ("--seed", str(n)))),
            temperature=0.0,
            slots=1,  # as council seats the starter (defaults.py)
        )
        for n in range(1, count + 1)
    ]


async def _answer(client: httpx.AsyncClient, fleet: Fleet, seat: str, tokens: int) -> int:
    endpoint = fleet.target(seat)
    body = {
        "model": seat,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": tokens,
        "temperature": 0,
        "ignore_eos": True,
    }
    response = await client.post(
        f"{endpoint.url}/v1/chat/completions",
        json=body,
        headers=engine_headers(endpoint.key, stream=False),
        timeout=600,
    )
    response.raise_for_status()
    return int(response.json()["usage"]["completion_tokens"])


async def _stage(
    folder: DataFolder, seats: list[SeatConfig], rounds: int, tokens: int
) -> dict[str, float]:
    binary = find_llama_server(folder)
    fleet = Fleet(folder, binary, plan_seats(folder, seats))
    fleet.start()
    try:
        await fleet.wait_settled()
        if fleet.status() != "ok":
            raise SystemExit(f"the engines did not start: {fleet.seats()}")
        async with httpx.AsyncClient(trust_env=False) as client:
            await asyncio.gather(*(_answer(client, fleet, s.name, 4) for s in seats))  # warm
            walls = []
            for _ in range(rounds):
                started = time.perf_counter()
                written = await asyncio.gather(
                    *(_answer(client, fleet, s.name, tokens) for s in seats)
                )
                walls.append(time.perf_counter() - started)
                assert all(n == tokens for n in written), written
        pids = {e.pid for e in fleet.engines.values() if e.pid is not None}
        rss = sum(psutil.Process(pid).memory_info().rss for pid in pids)
        return {"wall": statistics.median(walls), "rss": rss, "engines": len(pids)}
    finally:
        await fleet.stop()


def _rankings(data: Path, rounds: int, tokens: int) -> Counter[str]:
    found: Counter[str] = Counter()
    with (
        running_hub(data, deadline=300) as hub,
        httpx.Client(trust_env=False, timeout=600) as client,
    ):
        for number in range(rounds):
            question = QUESTIONS[number % len(QUESTIONS)]
            conversation = client.post(f"{hub.url}/api/conversations", json={}).json()["id"]
            url = f"{hub.url}/api/conversations/{conversation}/messages"
            kind = ""
            with client.stream("POST", url, json={"question": question, "max_tokens": tokens}) as r:
                for line in r.iter_lines():
                    if line.startswith("event:"):
                        kind = line[6:].strip()
                    elif line.startswith("data:") and kind == "review_done":
                        review = json.loads(line[5:])
                        found[review.get("ranking_by") or "none"] += 1
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage-rounds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--round-tokens", type=int, default=48)
    parser.add_argument(
        "--model", type=Path, help="another GGUF for the answer stage (default: the starter)"
    )
    parser.add_argument(
        "--engine-args", default="", help="more llama-server flags for every engine, quoted"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="council-shared-") as tmp:
        folder = DataFolder(Path(tmp) / "stick")
        folder.root.mkdir()
        folder.prepare()
        if args.model:
            model = args.model.name
            shutil.copyfile(args.model, folder.models / model)
        else:
            model = starter.seat_starter(folder.models)
        extra = tuple(shlex.split(args.engine_args))
        print(f"starter model: models/{model}; {os.cpu_count()} cores")
        print(f"answer stage: {args.max_tokens} tokens per seat, median of {args.stage_rounds}")
        separate = asyncio.run(
            _stage(folder, _seats(model, False, 3, extra), args.stage_rounds, args.max_tokens)
        )
        shared = asyncio.run(
            _stage(folder, _seats(model, True, 3, extra), args.stage_rounds, args.max_tokens)
        )
        alone = asyncio.run(
            _stage(folder, _seats(model, True, 1, extra), args.stage_rounds, args.max_tokens)
        )
        rows = (
            ("(a) three engines", separate),
            ("(b) one shared engine", shared),
            ("(c) one seat alone", alone),
        )
        for label, row in rows:
            ratio = row["wall"] / alone["wall"]
            print(
                f"  {label:<22} {row['wall']:6.2f} s  x{ratio:.2f} of (c)  "
                f"{int(row['engines'])} engine(s)  RSS {row['rss'] / MB:7.1f} MiB"
            )
        print(f"  (b)/(c) wall {shared['wall'] / alone['wall']:.2f} (target <= 1.5)")
        print(f"  (b)/(a) RSS  {shared['rss'] / separate['rss']:.2f} (target <= 0.5)")

        if not args.rounds:
            return
        stick = Path(tmp) / "hub-stick"  # an empty stick: council seats the starter three times
        stick.mkdir()
        found = _rankings(stick, args.rounds, args.round_tokens)
        total = sum(found.values())
        text, grammar = found["text"], found["grammar"]
        print(f"rankings: {args.rounds} rounds, {total} reviews, {args.round_tokens} tokens each")
        for label, parsed in (
            ("before (text parser only)", text),
            ("after (grammar)", text + grammar),
        ):
            print(f"  {label:<26} {parsed}/{total} = {100 * parsed / max(1, total):.0f}%")


if __name__ == "__main__":
    main()
