"""Engines a killed hub left behind: stopped when they still run, ignored once they are zombies."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from council.engine import orphans


@pytest.fixture
def fake_engine(tmp_path: Path) -> Path:
    """A program whose process name is llama-server, as the kernel reports it."""
    path = tmp_path / "llama-server"
    shutil.copy(shutil.which("sleep") or "/bin/sleep", path)
    return path


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait()


def test_a_recorded_engine_still_running_is_stopped(
    fake_engine: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    engine = subprocess.Popen([str(fake_engine), "60"])
    started.append(engine)
    recorded = orphans.describe(engine.pid)
    assert recorded is not None

    assert orphans.reap([recorded]) == [engine.pid]
    engine.wait(timeout=5)  # returns at once: it was stopped (and reaped by reap's wait)
    assert not psutil.pid_exists(engine.pid)


def test_a_zombie_engine_is_gone_not_left_running(
    fake_engine: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    # The engine's parent execs into a program that never waits for children, as a container's
    # PID 1 does for the engines a kill -9'd hub leaves: the engine exits and stays a zombie.
    parent = subprocess.Popen(["sh", "-c", f"{fake_engine} 0 & exec sleep 60"])
    started.append(parent)
    zombie = _zombie_child_of(parent.pid)
    recorded = {"pid": zombie.pid, "created": zombie.create_time()}

    began = time.monotonic()
    assert orphans.reap([recorded], timeout=5) == []
    assert time.monotonic() - began < 4  # not waited on until the timeout


def test_a_reused_pid_is_left_alone(
    fake_engine: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    engine = subprocess.Popen([str(fake_engine), "60"])
    started.append(engine)
    recorded = {"pid": engine.pid, "created": psutil.Process(engine.pid).create_time() - 100.0}

    assert orphans.reap([recorded]) == []
    assert engine.poll() is None


def _zombie_child_of(pid: int) -> psutil.Process:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for child in psutil.Process(pid).children():
            if child.status() == psutil.STATUS_ZOMBIE:
                return child
        time.sleep(0.02)
    raise AssertionError("the fake engine did not become a zombie")
