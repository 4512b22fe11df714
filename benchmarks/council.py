"""A council round's wall time next to its critical path, measured in the same run.

The critical path is what the engines could not avoid: for each stage, the slowest seat's own
prompt + generation time as llama-server reports it (`timings`), summed over the stages. The wall
time is what a client sees, from its POST to the `done` event. Their ratio is council's
orchestration overhead: HTTP and SSE, prompt building, token counting, parsing, and committing
each output to SQLite with `synchronous=FULL`.

    .venv/bin/python benchmarks/council.py [--rounds 5] [--max-tokens 512] [--mode synthesize]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this folder would come first on sys.path, where council.py is a benchmark:
# put the repository there instead, so `council` is the package and `benchmarks.hubs` resolves.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import statistics
import tempfile
import time
from collections import defaultdict
from typing import Any

import httpx
from benchmarks.hubs import running_hub

from council.config import HubConfig, SeatConfig, save_config
from council.datafolder import DataFolder
from council.models.demo import write_demo_model
from council.settings import RoundDefaults

SEATS = ("bench-1", "bench-2", "bench-3")


def critical_path_ms(outputs: list[dict[str, Any]]) -> float:
    slowest: dict[tuple[str, int], float] = defaultdict(float)
    for output in outputs:
        engine_ms = output["prompt_ms"] + output["generation_ms"]
        key = (output["stage"], output["layer"])
        slowest[key] = max(slowest[key], engine_ms)
    return sum(slowest.values())


def one_round(
    client: httpx.Client, question: str, mode: str, max_tokens: int
) -> tuple[float, float]:
    conversation = client.post("/api/conversations", json={}).json()["id"]
    body = {"question": question, "mode": mode, "max_tokens": max_tokens, "temperature": 0.0}
    started = time.perf_counter()
    with client.stream("POST", f"/api/conversations/{conversation}/messages", json=body) as reply:
        for line in reply.iter_lines():
            if line == "event: done":
                break
    wall_ms = (time.perf_counter() - started) * 1000
    message = client.get(f"/api/conversations/{conversation}").json()["messages"][0]
    assert message["status"] == "done", message
    return wall_ms, critical_path_ms(message["outputs"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=512)
    parser.add_argument("--mode", default="synthesize", choices=["synthesize", "moa", "vote"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        folder = DataFolder(Path(temp) / "stick")
        folder.root.mkdir()
        folder.prepare()
        for seed, name in enumerate(SEATS, 1):
            write_demo_model(folder.models / f"{name}.gguf", seed=seed, context_length=16384)
        seats = tuple(SeatConfig(name, f"{name}.gguf", ctx_size=16384) for name in SEATS)
        council = RoundDefaults(extractor="regex:(.)")
        save_config(folder, HubConfig(seats=seats, council=council))
        with running_hub(folder.root) as hub:
            # One client for the whole run: its set-up is not the council's time.
            client = httpx.Client(base_url=hub.url, timeout=600, trust_env=False)
            one_round(client, "warm-up", args.mode, 8)
            print(f"mode {args.mode}, 3 seats, max_tokens {args.max_tokens}, {args.rounds} rounds")
            print(f"{'round':>5}  {'wall':>10}  {'critical path':>14}  {'ratio':>6}")
            ratios = []
            for n in range(1, args.rounds + 1):
                wall, critical = one_round(client, f"Question {n}?", args.mode, args.max_tokens)
                ratios.append(wall / critical)
                print(f"{n:>5}  {wall:>8.0f} ms  {critical:>11.0f} ms  {wall / critical:>6.3f}")
            median = statistics.median(ratios)
            print(f"median ratio {median:.3f}: orchestration overhead {100 * (median - 1):.1f}%")


if __name__ == "__main__":
    main()
