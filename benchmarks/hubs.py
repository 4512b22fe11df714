"""What the benchmarks share: a free loopback port, and a `council up` of their own."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from council.models.demo import DemoShape

# A random-weight model of about 130M parameters (F16), which a laptop's CPU runs at the pace of
# a real small model (the default demo model runs a hundred times faster).
PACED = DemoShape(
    embedding_length=1024, block_count=12, feed_forward_length=2816, head_count=16, head_count_kv=4
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Hub:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def running_hub(data: Path, deadline: float = 120) -> Iterator[Hub]:
    """`council up` on `data` with every seat healthy; stopped (by its PID) on the way out.

    Without the owner check (`--no-owner-auth`): the benchmarks' clients (raw sockets, the
    Playwright tab, the nginx comparisons) speak as any local program does, and the check is one
    SHA-256 of a header per request, nothing a benchmark here could see."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "council",
            "up",
            "--no-browser",
            "--no-owner-auth",
            "--port",
            str(port),
            "--data",
            str(data),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=os.environ,
    )
    try:
        hub = Hub(process, port)
        end = time.monotonic() + deadline
        while True:
            try:
                if httpx.get(f"{hub.url}/api/health", trust_env=False).json()["status"] == "ok":
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > end or process.poll() is not None:
                raise SystemExit("the hub did not become healthy")
            time.sleep(0.05)
        yield hub
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """SIGTERM, then SIGKILL if it has not gone within `timeout` seconds."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def running_nginx(root: Path, config: str, **fields: object) -> Iterator[int | None]:
    """Debian's nginx, the benchmarks' reference, on a free loopback port: `config` is formatted
    with `root` (its own prefix folder), `port` and `fields`. Yields the port, or None when
    nginx is not installed; stopped (by its PID) on the way out."""
    binary = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")  # root's PATH
    if binary is None:
        yield None
        return
    port = free_port()
    (root / "nginx.conf").write_text(config.format(root=root, port=port, **fields))
    process = subprocess.Popen(
        [binary, "-p", str(root), "-c", str(root / "nginx.conf"), "-g", "daemon off;"],
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit("nginx did not start")
            time.sleep(0.05)
        yield port
    finally:
        process.send_signal(signal.SIGQUIT)  # a graceful stop
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
