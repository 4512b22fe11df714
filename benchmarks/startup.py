"""Time from `council up` to every seat healthy, next to llama-server alone, in one run.

For each seat count (1 and 3), the same demo models, context and threads are started twice,
alternating, several rounds:
  direct   - llama-server processes spawned straight from this script, polled on /health;
  council  - `council up` in a fresh Python process, polled on /api/health until "ok".
council's overhead is the difference of the medians; the ratio is council / direct.

    .venv/bin/python benchmarks/startup.py [--rounds 7]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this folder would come first on sys.path, where council.py is a benchmark:
# put the repository there instead, so `council` is the package and `benchmarks.hubs` resolves.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable

import httpx
from benchmarks.hubs import free_port, stop

from council.config import HubConfig, SeatConfig, save_config
from council.datafolder import DataFolder
from council.engine.binary import EngineBinary, find_llama_server
from council.engine.process import EngineSpec, engine_argv
from council.models.demo import write_demo_model

POLL = 0.005


def wait_until(url: str, ready: Callable[[httpx.Response], bool], deadline: float = 120) -> None:
    end = time.monotonic() + deadline
    with httpx.Client(timeout=1) as client:
        while time.monotonic() < end:
            try:
                if ready(client.get(url)):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(POLL)
    raise SystemExit(f"{url} not ready within {deadline} s")


def time_direct(binary: Path, models: list[Path], threads: int) -> float:
    started = time.monotonic()
    processes = []
    for model in models:
        port = free_port()
        spec = EngineSpec(
            model.stem,
            binary,
            model,
            Path(os.devnull),
            2048,
            threads,
            extra_args=EngineBinary(binary, "benchmark").runtime_args,
        )
        argv = engine_argv(spec, port)  # exactly the command line council gives its engines
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        processes.append((process, port))
    for _, port in processes:
        wait_until(f"http://127.0.0.1:{port}/health", lambda r: r.status_code == 200)
    elapsed = time.monotonic() - started
    for process, _ in processes:
        stop(process)
    return elapsed


def time_council(data: Path, binary: Path) -> float:
    port = free_port()
    env = {**os.environ, "COUNCIL_LLAMA_SERVER": str(binary)}
    argv = [
        sys.executable,
        "-m",
        "council",
        "up",
        "--no-browser",
        "--no-owner-auth",  # as benchmarks/hubs.py says why
        "--port",
        str(port),
        "--data",
        str(data),
    ]
    started = time.monotonic()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    wait_until(
        f"http://127.0.0.1:{port}/api/health",
        lambda r: r.status_code == 200 and r.json()["status"] == "ok",
    )
    elapsed = time.monotonic() - started
    stop(process)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as temp:
        print(
            f"{'seats':>5}  {'direct (median)':>16}  {'council (median)':>17}  "
            f"{'ratio':>6}  {'overhead':>9}"
        )
        for seats in (1, 3):
            folder = DataFolder(Path(temp) / f"stick-{seats}")
            folder.root.mkdir()
            folder.prepare()
            binary = find_llama_server(folder).path
            names = [f"bench-{i}" for i in range(1, seats + 1)]
            models = [
                write_demo_model(folder.models / f"{n}.gguf", seed=i) for i, n in enumerate(names)
            ]
            save_config(folder, HubConfig(seats=tuple(SeatConfig(n, f"{n}.gguf") for n in names)))
            threads = max(1, cores // seats)
            direct, council = [], []
            for _ in range(args.rounds):
                direct.append(time_direct(binary, models, threads))
                council.append(time_council(folder.root, binary))
            d, c = statistics.median(direct), statistics.median(council)
            print(f"{seats:>5}  {d:>14.3f} s  {c:>15.3f} s  {c / d:>6.2f}  {c - d:>7.3f} s")


if __name__ == "__main__":
    main()
