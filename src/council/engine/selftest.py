"""Does this llama-server run quantized models on this CPU? Ask it, with real weights.

A binary can start, answer `/health` and still die on the first quantized matrix product: the
kernels that trap (AMX tiles, the AVX2/AVX-512 repacked GEMMs) are only reached by certain
formats and shapes. So the self-test writes demo models that take those paths: every matrix is
32-row aligned with rows of 256 values (what ggml's AMX and repack buffers require, see
`ggml-cpu/amx/amx.cpp` and `repack.cpp`), in each of Q4_0, Q4_1, Q8_0, Q4_K and Q6_K. It sends
each a prompt long enough to be processed as a batch (the tile kernels only run for more than
one row) three times with pauses between, on every core, because the trap seen here comes when
a thread uses tiles it configured earlier; and it has a few tokens generated each time.

A death by signal is a CPU problem the build can work around; any other failure is reported
as it is. Results are plain dicts in the build manifest or in the per-machine cache.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import statistics
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from council.engine.cpu import cpu_fingerprint
from council.engine.crashes import as_signal
from council.engine.process import engine_environment, failure_reason, free_port
from council.timestamps import stamp

FORMATS = ("Q4_0", "Q4_1", "Q8_0", "Q4_K", "Q6_K")
ROUNDS = 3
PAUSE = 0.2  # seconds between rounds: time for the threads to be switched out
PREDICT = 4
START_TIMEOUT = 60.0
REQUEST_TIMEOUT = 60.0
# 160 bytes: with the demo's byte vocabulary, a 161-token batch (several 32-row tiles).
PROMPT = ("The council reads the question, and each seat writes its answer in plain words; " * 2)[
    :160
]
_BACKEND_LINE = re.compile(r"loaded CPU backend from (\S+)")


@dataclass(frozen=True, slots=True)
class FormatResult:
    format: str
    ok: bool
    reason: str = ""
    signal: str | None = None  # e.g. "SIGILL" when the engine was killed by one

    @property
    def crashed(self) -> bool:
        return self.signal is not None


@dataclass(frozen=True, slots=True)
class SelfTest:
    ok: bool
    args: tuple[str, ...]
    formats: tuple[FormatResult, ...]
    cpu: str = field(default_factory=cpu_fingerprint)
    date: str = field(default_factory=stamp)
    cpu_backend: str | None = None  # the ggml-cpu variant a portable build loaded

    @property
    def crashed(self) -> FormatResult | None:
        return next((item for item in self.formats if item.crashed), None)

    @property
    def failure(self) -> FormatResult | None:
        return next((item for item in self.formats if not item.ok), None)

    def summary(self) -> str:
        if self.ok:
            return f"passed ({', '.join(item.format for item in self.formats)})"
        failed = self.failure
        assert failed is not None  # noqa: S101 - not ok means one failed
        return f"failed on {failed.format}: {failed.reason}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["args"] = list(self.args)
        data["formats"] = [asdict(item) for item in self.formats]
        return data

    @classmethod
    def from_dict(cls, data: object) -> SelfTest | None:
        if not isinstance(data, dict):
            return None
        try:
            formats = tuple(FormatResult(**item) for item in data["formats"])
            return cls(
                ok=bool(data["ok"]),
                args=tuple(data["args"]),
                formats=formats,
                cpu=str(data["cpu"]),
                date=str(data["date"]),
                cpu_backend=data.get("cpu_backend"),
            )
        except (KeyError, TypeError, ValueError):
            return None


def write_models(folder: Path, formats: Sequence[str] = FORMATS) -> dict[str, Path]:
    """One self-test model per format (about 1 MB each), written once per folder."""
    from council.models.demo import DemoShape, write_demo_model

    shape = DemoShape(
        embedding_length=256, block_count=2, feed_forward_length=512, head_count=4, head_count_kv=2
    )
    folder.mkdir(parents=True, exist_ok=True)
    models = {}
    for name in formats:
        path = folder / f"selftest-v1-{name}.gguf"  # a new shape gets a new version
        if not path.is_file():
            write_demo_model(
                path, name=f"selftest {name}", shape=shape, quantization=name, context_length=512
            )
        models[name] = path
    return models


def run_selftest(
    binary: Path, args: Sequence[str] = (), *, models: dict[str, Path] | None = None
) -> SelfTest:
    """Run `binary` on each self-test model; the first crash by signal ends the test."""
    launch = _Launch(binary, tuple(args))
    with tempfile.TemporaryDirectory(prefix="council-selftest-") as temp:
        models = models or write_models(Path(temp))
        results: list[FormatResult] = []
        backend: str | None = None
        for name, model in models.items():
            log = Path(temp) / f"{name}.log"
            result = _run_one(launch, model, name, log)
            backend = backend or _loaded_backend(log)
            results.append(result)
            if result.crashed:
                break
    ok = len(results) == len(models) and all(item.ok for item in results)
    return SelfTest(ok=ok, args=tuple(args), formats=tuple(results), cpu_backend=backend)


def measure_speed(binary: Path, args: Sequence[str] = (), *, model: Path, rounds: int = 3) -> float:
    """Tokens per second (prompt and generated together), median of `rounds` requests."""
    launch = _Launch(binary, tuple(args))
    with (
        tempfile.TemporaryDirectory(prefix="council-speed-") as temp,
        _serving(launch, model, Path(temp) / "speed.log") as (base, _),
    ):
        speeds = []
        for _ in range(rounds):
            started = time.perf_counter()
            answer = _complete(base, n_predict=32)
            elapsed = time.perf_counter() - started
            tokens = int(answer.get("tokens_evaluated", 0)) + int(answer.get("tokens_predicted", 0))
            speeds.append(tokens / elapsed)
    return statistics.median(speeds)


@dataclass(frozen=True, slots=True)
class _Launch:
    binary: Path
    args: tuple[str, ...]

    def argv(self, model: Path, port: int) -> list[str]:
        threads = os.cpu_count() or 1  # every core: each thread configures its own tiles
        # A build with loadable CPU variants names the one it loaded only at verbosity 4.
        variants = any(self.binary.parent.glob("*ggml-cpu-*"))
        verbose = ["--log-verbosity", "4"] if variants else []
        return [
            str(self.binary),
            "--model",
            str(model),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--ctx-size",
            "512",
            "--parallel",
            "1",
            "--threads",
            str(threads),
            "--no-webui",
            "--offline",
            *verbose,
            *self.args,
        ]


def _run_one(launch: _Launch, model: Path, name: str, log: Path) -> FormatResult:
    try:
        with _serving(launch, model, log) as (base, process):
            for round_ in range(ROUNDS):
                if round_:
                    time.sleep(PAUSE)
                answer = _complete(base, n_predict=PREDICT)
                if int(answer.get("tokens_predicted", 0)) < 1:
                    return FormatResult(name, ok=False, reason="it generated no tokens")
            process.send_signal(signal.SIGTERM)  # a clean exit, so a crash on the way out shows
            code = process.wait(timeout=10)
            if code < 0 and code != -signal.SIGTERM:
                return _died(name, code, log)
    except _EngineDied as died:
        return _died(name, died.code, log)
    except (httpx.HTTPError, subprocess.TimeoutExpired, TimeoutError, OSError) as exc:
        return FormatResult(name, ok=False, reason=f"{type(exc).__name__}: {exc}")
    return FormatResult(name, ok=True)


class _EngineDied(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


def _died(name: str, code: int, log: Path) -> FormatResult:
    code = as_signal(code) or code
    if code < 0:
        try:
            signame = signal.Signals(-code).name
        except ValueError:
            signame = f"signal {-code}"
        return FormatResult(name, ok=False, reason=f"killed by signal {signame}", signal=signame)
    said = failure_reason(_read(log))
    reason = f"exited with code {code}" + (f": {said}" if said else "")
    return FormatResult(name, ok=False, reason=reason)


@contextlib.contextmanager
def _serving(launch: _Launch, model: Path, log: Path) -> Any:
    port = free_port()
    with open(log, "wb") as out:
        process = subprocess.Popen(
            launch.argv(model, port),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=engine_environment(),
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, process)
        yield base, process
    except (httpx.HTTPError, OSError):
        code = _exit_code(process)
        if code is not None:
            raise _EngineDied(code) from None
        raise
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def _wait_healthy(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise _EngineDied(process.returncode)
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return
        time.sleep(0.05)
    raise TimeoutError(f"no healthy answer within {START_TIMEOUT:.0f} s")


def _complete(base: str, *, n_predict: int) -> dict[str, Any]:
    body = {
        "prompt": PROMPT,
        "n_predict": n_predict,
        "cache_prompt": False,
        "temperature": 0.0,
        "seed": 1,
    }
    response = httpx.post(f"{base}/completion", json=body, timeout=REQUEST_TIMEOUT)
    response.raise_for_status()
    answer: dict[str, Any] = response.json()
    return answer


def _exit_code(process: subprocess.Popen[bytes]) -> int | None:
    """The engine's exit status if it is dying or dead (a crash closes the socket first)."""
    with contextlib.suppress(subprocess.TimeoutExpired):
        return process.wait(timeout=5)
    return None


def _loaded_backend(log: Path) -> str | None:
    match = _BACKEND_LINE.search(_read(log))
    return Path(match.group(1)).name if match else None


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
