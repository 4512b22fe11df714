"""The real `council up` CLI as tests start it, and the means to look at its engines.

Every process a test starts is tracked by PID and killed by PID at teardown; nothing is ever
stopped by name.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from council.engine.binary import EngineBinary
from tests import owner


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class HubProcess:
    """`council up` as a person starts it, plus the means to look at its engines."""

    def __init__(self, data: Path, port: int | None, extra: list[str], env: dict[str, str]) -> None:
        self.data = data
        self._url = f"http://127.0.0.1:{port}" if port else ""
        if port:
            owner.register(port, data)
        self.output = data.parent / f"council-{port or free_port()}.out"
        port_args = ["--port", str(port)] if port else []
        command = [
            sys.executable,
            "-m",
            "council",
            "up",
            "--no-browser",
            *port_args,
            "--data",
            str(data),
            *extra,
        ]
        with open(self.output, "wb") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        self.spawned: set[int] = set()

    @property
    def url(self) -> str:
        """Without --port, the URL is the one council prints once it serves."""
        deadline = time.monotonic() + 30
        while not self._url and time.monotonic() < deadline:
            for line in self.text().splitlines():
                if line.startswith("council is serving "):
                    self._url = line.split()[3]
                    owner.register(int(self._url.rsplit(":", 1)[1]), self.data)
            time.sleep(0.02)
        return self._url

    def health(self) -> dict[str, Any]:
        response = httpx.get(f"{self.url}/api/health", timeout=5)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 60
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"council exited early:\n{self.text()}")
            with contextlib.suppress(httpx.HTTPError):
                last = self.health()
                if predicate(last):
                    return last
            time.sleep(0.05)
        pytest.fail(f"timed out; last health: {last}\n{self.text()}")

    def wait_serving(self, timeout: float = 60) -> dict[str, Any]:
        return self.wait_for(lambda health: True, timeout)

    def wait_ok(self, timeout: float = 60) -> dict[str, Any]:
        return self.wait_for(lambda health: health["status"] == "ok", timeout)

    def engines(self) -> list[psutil.Process]:
        children = psutil.Process(self.process.pid).children(recursive=True)
        engines = [child for child in children if "llama-server" in child.name()]
        self.spawned.update(engine.pid for engine in engines)
        return engines

    @property
    def owner_token(self) -> str:
        """What a script or an OpenAI client on the laptop sends as its API key."""
        token = owner.token_for(int(self.url.rsplit(":", 1)[1]))
        assert token is not None, "the hub has not written owner.token"
        return token

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def kill_everything(self) -> None:
        self.stop()
        for pid in self.spawned:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def engines_frozen(hub: HubProcess) -> Iterator[None]:
    """Every engine SIGSTOPped: whatever a seat was asked stays open until they thaw."""
    engines = hub.engines()
    for engine in engines:
        os.kill(engine.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for engine in engines:
            os.kill(engine.pid, signal.SIGCONT)


def engine_endpoint(engine: psutil.Process) -> tuple[str, str]:
    """The loopback URL and per-run API key of an engine, read the way only root/owner can."""
    argv = engine.cmdline()
    port = argv[argv.index("--port") + 1]
    key = engine.environ()["LLAMA_API_KEY"]
    return f"http://127.0.0.1:{port}", key


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def sse_events(lines: Any) -> Any:
    """(type, data) pairs from an iterator of SSE lines."""
    kind = ""
    for line in lines:
        if line.startswith("event:"):
            kind = line[6:].strip()
        elif line.startswith("data:") and kind:
            yield kind, json.loads(line[5:])
            kind = ""


def ask_round(
    hub: HubProcess, conversation_id: str, question: str, **options: Any
) -> list[tuple[str, dict[str, Any]]]:
    """Run a council round to the end and return every event it streamed."""
    body = {"question": question, **options}
    url = f"{hub.url}/api/conversations/{conversation_id}/messages"
    with httpx.stream("POST", url, json=body, timeout=120) as response:
        assert response.status_code == 200, response.read()
        return list(sse_events(response.iter_lines()))


def new_conversation(hub: HubProcess, title: str = "") -> str:
    response = httpx.post(f"{hub.url}/api/conversations", json={"title": title}, timeout=10)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@contextlib.contextmanager
def llama_server(binary: Path, model: Path, *args: str) -> Iterator[str]:
    """llama-server alone on `model` (256-token context, one thread), healthy; its base URL.
    It gets the switches its build's self-test chose, as council's engines do. Killed by its PID
    on the way out."""
    port = free_port()
    server = subprocess.Popen(
        [
            str(binary),
            "-m",
            str(model),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "-c",
            "256",
            "-t",
            "1",
            *EngineBinary(binary, "test").runtime_args,
            *args,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        status = 0
        while status != 200 and time.monotonic() < deadline:
            assert server.poll() is None, "llama-server exited"
            with contextlib.suppress(httpx.HTTPError):
                status = httpx.get(f"{base}/health", timeout=2).status_code
            time.sleep(0.1)
        assert status == 200, "llama-server did not become healthy"
        yield base
    finally:
        server.kill()
        server.wait()


def run_council(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`python -m council ARGS`, as a person types it: output captured, the exit code kept."""
    return subprocess.run(
        [sys.executable, "-m", "council", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
    )
