"""One supervised llama-server: spawn, wait for health, restart on crash, stop cleanly.

Each child gets a random per-run API key (passed in its environment, never on the command line
where `ps` would show it), binds a free loopback port, and writes its log to `<data>/logs/`.
It runs in its own process group so council can stop it and anything it spawned as one, and on
Linux it asks the kernel for SIGKILL when council dies (PR_SET_PDEATHSIG), so even `kill -9` of
council leaves no orphaned engine holding gigabytes of RAM.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import enum
import functools
import os
import re
import secrets
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from council.engine.crashes import as_signal, describe_exit, is_retried

STARTUP_TIMEOUT = 600.0  # a large model on a slow stick can take minutes to map
STOP_GRACE = 5.0
# Liveness of an engine that is up: llama-server answers /health from its HTTP threads even
# while it generates, so silence means it is hung (stopped, wedged, swapped out), not busy.
LIVENESS_INTERVAL = 2.0  # seconds between probes
LIVENESS_TIMEOUT = 4.0  # a probe unanswered this long is a miss
LIVENESS_MISSES = 3  # misses in a row before the engine is killed and started again
LOG_LIMIT = 8 * 1024 * 1024  # a stick is small: keep one previous log per seat, not all of them
BACKOFF = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
CRASH_WINDOW = 120.0
MAX_CRASHES_IN_WINDOW = 5
_BIND_FAILURE = "couldn't bind"
_SELF_EXPLAINING = {-int(signal.SIGILL), -int(signal.SIGKILL), -int(signal.SIGBUS)}
_REASON_PATTERNS = (
    re.compile(r"error loading model[^:]*:\s*(.+)", re.IGNORECASE),
    re.compile(r"(?:error|failed)[^\n]*", re.IGNORECASE),
)


class SeatState(enum.StrEnum):
    STARTING = "starting"
    HEALTHY = "healthy"
    UNRESPONSIVE = "unresponsive"  # up, but not answering /health: takes no prompts
    RESTARTING = "restarting"
    FAILED = "failed"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class EngineSpec:
    name: str
    binary: Path
    model: Path
    log: Path
    ctx_size: int  # per slot
    threads: int
    slots: int = 1
    extra_args: tuple[str, ...] = ()
    origin: str = "project build"  # where the binary came from: the crash advice depends on it
    memory_estimate: int | None = None  # bytes, to say whether a SIGKILL was for lack of memory


EventSink = Callable[[str, str, str], None]  # (seat name, event kind, message)


@dataclass(slots=True)
class _Run:
    process: asyncio.subprocess.Process
    port: int
    log_offset: int
    started: float = field(default_factory=time.monotonic)
    # One wait for the exit, made once and waited on with timeouts, never cancelled: asyncio
    # keeps every `process.wait()` future until the process exits, cancelled or not, so a fresh
    # one per liveness tick would grow the hub's memory for as long as the engine lives.
    exited: asyncio.Task[int] = field(init=False)

    def __post_init__(self) -> None:
        self.exited = asyncio.ensure_future(self.process.wait())

    async def exit_within(self, timeout: float) -> bool:
        """Wait up to `timeout` s for the process to exit; whether it has."""
        await asyncio.wait({self.exited}, timeout=timeout)
        return self.exited.done()


class EngineProcess:
    def __init__(self, spec: EngineSpec, on_event: EventSink | None = None) -> None:
        self.spec = spec
        self.api_key = secrets.token_urlsafe(32)
        self.state = SeatState.STARTING
        self.reason: str | None = None
        self.restarts = 0
        self.port: int | None = None
        self.pid: int | None = None
        self._on_event = on_event or (lambda name, kind, message: None)
        self._stopping = asyncio.Event()
        self._healthy = asyncio.Event()
        self._settled = asyncio.Event()
        self.spawned = asyncio.Event()  # set once the first process exists (or never will)
        self._crashes: list[float] = []
        self._run: _Run | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fresh(self) -> EngineProcess:
        """A new, unstarted process of the same seat: what a restart runs (a new key, a new
        port, no crash history)."""
        return EngineProcess(self.spec, self._on_event)

    async def wait_settled(self) -> None:
        """Return once the first start has ended healthy or failed."""
        await self._settled.wait()

    async def supervise(self, client: httpx.AsyncClient) -> None:
        """Keep the engine running until stop(); the task ends when the seat stops or fails."""
        try:
            await self._supervise(client)
        except Exception as exc:  # a bug here must show on the seat, not vanish with the task
            self._fail(f"council could not supervise this engine: {exc!r}")
            await self._terminate()
            raise
        finally:
            self.spawned.set()

    async def _supervise(self, client: httpx.AsyncClient) -> None:
        run = await self._spawn()
        while not self._stopping.is_set():
            if run.process.returncode is not None:  # a crash or failed start: go again
                run = await self._spawn()
            if not await self._wait_healthy(run, client):
                if self._stopping.is_set():
                    break
                reason = self._failure_reason(run)
                if _BIND_FAILURE in reason and run.process.returncode is not None:
                    continue  # someone took the port between our probe and its bind
                if (
                    not self._healthy.is_set()
                    or not is_retried(run.process.returncode)
                    or not await self._crashed(reason)
                ):
                    self._fail(reason)
                    break
                continue
            self._set(SeatState.HEALTHY, None, "healthy", f"answering on port {run.port}")
            self._healthy.set()
            self._settled.set()
            hung = await self._watch(run, client)
            if self._stopping.is_set():
                break
            reason = hung or self._failure_reason(run, exited=True)
            retried = hung is not None or is_retried(run.process.returncode)
            if not retried or not await self._crashed(reason):
                self._fail(reason)
                break
        await self._terminate()
        if self.state is not SeatState.FAILED:
            self._set(SeatState.STOPPED, None, "stopped", "stopped")
        self._settled.set()

    async def stop(self) -> None:
        self._stopping.set()
        await self._terminate()

    async def _spawn(self) -> _Run:
        port = free_port()
        self.port = port
        self.spec.log.parent.mkdir(parents=True, exist_ok=True)
        _rotate(self.spec.log)
        with open(self.spec.log, "ab") as log:
            offset = log.tell()
            log.write(
                f"\n=== council: starting seat {self.spec.name} on port {port} ===\n".encode()
            )
            log.flush()
            process = await asyncio.create_subprocess_exec(
                *engine_argv(self.spec, port),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                env=self._env(),
                start_new_session=True,
                preexec_fn=_die_with_parent() if sys.platform == "linux" else None,
            )
        self.pid = process.pid
        self.spawned.set()
        self._on_event(self.spec.name, "spawned", f"pid {process.pid}, port {port}")
        self._run = _Run(process, port, offset)
        return self._run

    def _env(self) -> dict[str, str]:
        return {**engine_environment(), "LLAMA_API_KEY": self.api_key}

    async def _wait_healthy(self, run: _Run, client: httpx.AsyncClient) -> bool:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        delay = 0.01
        url = f"http://127.0.0.1:{run.port}/health"
        while time.monotonic() < deadline and not self._stopping.is_set():
            if run.process.returncode is not None:
                return False
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code == 200:
                    return True
            await run.exit_within(delay)
            # Poll briskly at first (small models load in milliseconds), then back off.
            if time.monotonic() - run.started > 2:
                delay = min(delay * 1.5, 0.25)
        if not self._stopping.is_set():
            await self._terminate()
            self._append_log(run, f"no healthy answer within {STARTUP_TIMEOUT:.0f} s")
        return False

    async def _watch(self, run: _Run, client: httpx.AsyncClient) -> str | None:
        """Wait while the engine runs, probing its /health; return when it exits or we stop
        (None), or once it is hung: then it has been killed, and the reason is returned."""
        url = f"http://127.0.0.1:{run.port}/health"
        misses = 0
        while not await self._exited_or_stopped(run, LIVENESS_INTERVAL):
            try:
                await client.get(url, timeout=LIVENESS_TIMEOUT)
            except httpx.HTTPError:
                misses += 1
            else:  # any answer is life: the HTTP threads are running
                if misses and self.state is SeatState.UNRESPONSIVE:
                    self._set(SeatState.HEALTHY, None, "healthy", "answering again")
                misses = 0
                continue
            if run.process.returncode is not None or self._stopping.is_set():
                return None
            silence = f"no answer to /health within {LIVENESS_TIMEOUT:g} s"
            if misses == 1:
                self._set(SeatState.UNRESPONSIVE, silence, "unresponsive", silence)
            if misses >= LIVENESS_MISSES:
                reason = f"hung: {silence}, {misses} times in a row; killed"
                _signal_group(run.process, graceful=False)  # a stopped process ignores SIGTERM
                await run.process.wait()
                self._append_log(run, reason)
                return reason
        return None

    async def _exited_or_stopped(self, run: _Run, timeout: float) -> bool:
        """Wait up to `timeout` s; True once the process has exited or we were asked to stop."""
        stopping = asyncio.ensure_future(self._stopping.wait())  # Event.wait cleans up on cancel
        await asyncio.wait(
            {run.exited, stopping}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        stopping.cancel()
        return run.process.returncode is not None or self._stopping.is_set()

    async def _crashed(self, reason: str) -> bool:
        """Record a crash; sleep the backoff and return True if another start is allowed."""
        now = time.monotonic()
        self._crashes = [t for t in self._crashes if now - t < CRASH_WINDOW] + [now]
        if len(self._crashes) > MAX_CRASHES_IN_WINDOW:
            return False
        delay = BACKOFF[min(len(self._crashes), len(BACKOFF)) - 1]
        self.restarts += 1
        self._set(SeatState.RESTARTING, reason, "crashed", f"{reason}; restarting in {delay:g} s")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=delay)
        return not self._stopping.is_set()

    def _fail(self, reason: str) -> None:
        self._set(SeatState.FAILED, reason, "failed", reason)
        self._settled.set()

    def _set(self, state: SeatState, reason: str | None, kind: str, message: str) -> None:
        self.state = state
        self.reason = reason
        self._on_event(self.spec.name, kind, message)

    async def _terminate(self) -> None:
        run = self._run
        if run is None or run.process.returncode is not None:
            return
        _signal_group(run.process, graceful=True)
        if not await run.exit_within(STOP_GRACE):
            _signal_group(run.process, graceful=False)
            await run.exited

    def _failure_reason(self, run: _Run, *, exited: bool = False) -> str:
        """llama-server's own words; after a crash, how it ended comes first."""
        reason = failure_reason(_read_from(self.spec.log, run.log_offset))
        # The data folder moves between laptops: keep its absolute path out of stored reasons.
        reason = reason.replace(str(self.spec.model), self.spec.model.name)
        ending = self._describe_exit(run.process.returncode)
        if as_signal(run.process.returncode) in _SELF_EXPLAINING:
            return ending  # the signal says more than the last lines of a log cut short
        if exited:
            return f"{ending}; {reason}" if reason else ending
        return reason or ending

    def _describe_exit(self, code: int | None) -> str:
        memory = None
        if self.spec.memory_estimate is not None:
            from council.engine.memory import available_memory

            memory = (self.spec.memory_estimate, available_memory())
        return describe_exit(code, origin=self.spec.origin, memory=memory)

    def _append_log(self, run: _Run, line: str) -> None:
        with open(self.spec.log, "a", encoding="utf-8") as log:
            log.write(f"=== council: {line} ===\n")


def engine_environment() -> dict[str, str]:
    """The user's environment less LLAMA_ARG_* and API keys: council decides how its engines
    listen, and nothing inherited from the shell may widen that."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("LLAMA_ARG_", "LLAMA_API"))}


def engine_argv(spec: EngineSpec, port: int) -> list[str]:
    """llama-server's command line for a seat; the API key travels in the environment."""
    return [
        str(spec.binary),
        "--model",
        str(spec.model),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        # One slot per concurrent request, each with the whole ctx_size (not a shared cache that
        # a crowd of prompts overflows); requests beyond the slots wait in the engine's queue.
        "--parallel",
        str(spec.slots),
        "--no-kv-unified",
        "--ctx-size",
        str(spec.ctx_size * spec.slots),
        "--threads",
        str(spec.threads),
        "--alias",
        spec.name,
        "--no-webui",
        "--offline",
        *spec.extra_args,
    ]


def failure_reason(log_text: str) -> str:
    """Pick llama-server's own words for why it stopped, from the log of one run."""
    lines = [line.strip() for line in log_text.splitlines() if line.strip()]
    for pattern in _REASON_PATTERNS:
        for line in lines:
            match = pattern.search(line)
            if match and "exiting due to" not in line:
                return (match.group(1) if match.groups() else match.group(0)).strip()
    return ""


ENGINE_KEEPALIVE = 2.0  # seconds; llama-server (cpp-httplib) closes idle connections at 5


def engine_headers(key: str, *, stream: bool) -> dict[str, str]:
    """The headers of a request to one of our engines.

    A streamed answer gets a connection of its own (`Connection: close`): llama-server closes
    the connection after a streamed response without announcing it, so a client that kept it
    would, now and then, send its next request into a closing socket and fail. Measured on this
    build: 100 of 300 back-to-back streamed requests on one kept-alive client failed; none with
    `Connection: close`. Non-streamed answers keep their connections alive.
    """
    headers = {"authorization": f"Bearer {key}"}
    if stream:
        headers["connection"] = "close"
    return headers


def loopback_client() -> httpx.AsyncClient:
    """A client for engines on 127.0.0.1: plain HTTP, so no TLS context (building one costs
    tens of milliseconds per client), and no proxy from the environment ever sees engine traffic.

    Idle connections are dropped after 2 s, before llama-server's own 5 s keep-alive timeout:
    with equal timeouts the client could send a request on a connection the engine is closing.
    """
    limits = httpx.Limits(
        max_connections=None, max_keepalive_connections=64, keepalive_expiry=ENGINE_KEEPALIVE
    )
    return httpx.AsyncClient(timeout=2.0, trust_env=False, verify=False, limits=limits)  # noqa: S501


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _read_from(path: Path, offset: int) -> str:
    try:
        with open(path, "rb") as log:
            log.seek(offset)
            return log.read(256 * 1024).decode("utf-8", errors="replace")
    except OSError:
        return ""


def _rotate(log: Path) -> None:
    with contextlib.suppress(OSError):
        if log.stat().st_size > LOG_LIMIT:
            os.replace(log, log.with_name(log.name + ".1"))


def _signal_group(process: asyncio.subprocess.Process, *, graceful: bool) -> None:
    """Signal the engine's whole process group where there is one (POSIX), else the process."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if hasattr(os, "killpg"):
            os.killpg(process.pid, signal.SIGTERM if graceful else signal.SIGKILL)
        elif graceful:
            process.terminate()
        else:
            process.kill()


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _die_with_parent() -> Callable[[], None]:
    """A preexec hook asking Linux to SIGKILL the child when council's thread exits."""
    prctl = _libc().prctl
    parent = os.getpid()
    pr_set_pdeathsig = 1

    def hook() -> None:
        prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:  # council died before prctl took effect
            os._exit(1)

    return hook
