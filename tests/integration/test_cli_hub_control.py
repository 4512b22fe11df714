"""`council status`, `council stop` and `council up --detach`, from another terminal, against a
real hub on the demo seats."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import psutil
import pytest

from council.datafolder import DataFolder, HubLock, running_hub
from council.engine.binary import EngineBinary
from tests.hubs import HubProcess, engines_frozen, free_port, gone, run_council

StartHub = Callable[..., HubProcess]


def council(
    engine: EngineBinary, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COUNCIL_LLAMA_SERVER": str(engine.path)}
    return run_council(*args, env=env, timeout=timeout)


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


def test_without_a_hub_status_stop_and_restart_say_so_and_exit_3(
    engine_binary: EngineBinary, isolated_data: DataFolder
) -> None:
    for args in (("status",), ("stop",), ("seats", "restart", "demo-1")):
        result = council(engine_binary, *args)
        assert result.returncode == 3, (args, result.stdout, result.stderr)
        assert f"council is not running on {isolated_data.root}" in one_line(result.stderr)
    as_json = council(engine_binary, "status", "--json")
    assert as_json.returncode == 3
    assert json.loads(as_json.stdout) == {"running": False, "data": str(isolated_data.root)}


@contextlib.contextmanager
def round_in_flight(hub: HubProcess) -> Iterator[threading.Thread]:
    """A round asked through the API, held open by frozen engines until the block ends."""
    done = threading.Event()

    def ask() -> None:
        body = {"question": "Hold on.", "max_tokens": 4}
        with httpx.stream("POST", f"{hub.url}/api/messages", json=body, timeout=120) as response:
            for _ in response.iter_lines():
                pass
        done.set()

    with engines_frozen(hub):
        thread = threading.Thread(target=ask, daemon=True)
        thread.start()
        yield thread
    assert done.wait(60), "the round did not end once the engines thawed"


def test_status_shows_the_hub_its_engines_and_a_round_that_is_running(
    engine_binary: EngineBinary, start_hub: StartHub
) -> None:
    hub = start_hub()
    hub.wait_ok()
    engines = {engine.pid for engine in hub.engines()}
    with round_in_flight(hub):
        deadline = time.monotonic() + 30
        while True:
            result = council(engine_binary, "status", "--json")
            assert result.returncode == 0, result.stderr
            status = json.loads(result.stdout)
            if status["rounds"] or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert status["running"] is True
        assert status["pid"] == hub.process.pid
        assert status["url"] == hub.url
        [running] = status["rounds"]
        assert running["mode"] == "synthesize"
        assert running["seats"] == ["demo-1", "demo-2", "demo-3"]
        text = council(engine_binary, "status").stdout
        assert "rounds running: 1" in text
        assert f"  {running['message_id'][:8]}  synthesize  demo-1, demo-2, demo-3" in text
    after = json.loads(council(engine_binary, "status", "--json").stdout)
    assert after["rounds"] == []
    seats = {seat["name"]: seat for seat in after["seats"]}
    assert set(seats) == {"demo-1", "demo-2", "demo-3"}
    assert {seat["engine_pid"] for seat in seats.values()} == engines
    for seat in seats.values():
        assert seat["state"] == "healthy"
        assert seat["slots_busy"] == 0  # llama-server's own /slots: nothing is answering now
        assert seat["memory_bytes"] > 1024 * 1024
        assert seat["tokens_per_second"] > 0  # the round that ended gave each a speed
    text = council(engine_binary, "status").stdout
    header, data_line, state = text.splitlines()[:3]
    assert header.startswith(f"council 0.1.0 · pid {hub.process.pid} · up ")
    assert header.endswith(hub.url)
    assert data_line == f"data: {hub.data}"
    assert state == "status: ok"
    row = next(line for line in text.splitlines() if line.startswith("demo-1 "))
    assert f"pid {seats['demo-1']['engine_pid']} :{seats['demo-1']['engine_port']}" in row
    assert "healthy" in row
    assert "devices online: none" in text
    assert "pulls: none" in text


def test_stop_asks_the_hub_to_stop_and_waits_until_it_has(
    engine_binary: EngineBinary, start_hub: StartHub, isolated_data: DataFolder
) -> None:
    hub = start_hub()
    hub.wait_ok()
    engines = [engine.pid for engine in hub.engines()]
    result = council(engine_binary, "stop")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"stopping council (pid {hub.process.pid})…",
        "council stopped",
    ]
    assert hub.process.wait(5) == 0  # a clean stop, not a kill
    assert "council stopped" in hub.text()
    assert running_hub(isolated_data) is None
    assert all(gone(pid) for pid in engines)


def test_stop_kills_a_hub_that_does_not_stop_in_time(
    engine_binary: EngineBinary, start_hub: StartHub, isolated_data: DataFolder
) -> None:
    hub = start_hub()
    hub.wait_ok()
    os.kill(hub.process.pid, signal.SIGSTOP)  # it cannot act on SIGTERM now
    result = council(engine_binary, "stop", "--timeout", "1")
    assert result.returncode == 0, result.stderr
    assert "did not stop within 1 s: killed it" in result.stdout
    assert hub.process.wait(5) == -signal.SIGKILL
    assert running_hub(isolated_data) is None


def test_stop_refuses_a_lock_that_names_a_process_that_is_not_a_hub(
    engine_binary: EngineBinary, isolated_data: DataFolder
) -> None:
    lock = HubLock(isolated_data)
    lock.acquire()  # this test process holds the lock: its pid is in the record
    try:
        lock.record(url="http://127.0.0.1:9")
        result = council(engine_binary, "stop")
        assert result.returncode == 1
        assert "which is not a council hub" in one_line(result.stderr)
        assert "nothing was stopped" in result.stderr
        assert psutil.Process(os.getpid()).is_running()
    finally:
        lock.release()


@pytest.fixture
def detached(isolated_data: DataFolder) -> Iterator[list[int]]:
    """The PIDs of hubs a test detached, killed at the end if a test left one running."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            process = psutil.Process(pid)
            children = process.children(recursive=True)
            for each in (process, *children):
                each.kill()


def test_up_detach_returns_once_the_hub_serves_then_status_and_stop_find_it(
    engine_binary: EngineBinary, isolated_data: DataFolder, detached: list[int]
) -> None:
    port = free_port()
    result = council(engine_binary, "up", "--detach", "--port", str(port), "--no-browser")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    serving = next(line for line in lines if line.startswith("council is serving"))
    assert serving.startswith(f"council is serving http://127.0.0.1:{port} in the background")
    pid = int(serving.rsplit("pid ", 1)[1].rstrip(")"))
    detached.append(pid)
    assert "3 of 3 seats healthy" in lines
    assert any(line.startswith("log in to the page (a one-time link): http") for line in lines)

    status = json.loads(council(engine_binary, "status", "--json").stdout)
    assert status["pid"] == pid
    assert [seat["state"] for seat in status["seats"]] == ["healthy"] * 3
    log = (isolated_data.logs / "council.log").read_text()
    assert f"council is serving http://127.0.0.1:{port}" in log  # its lines go to the log
    assert "login#code=" not in log  # but never a login link: the code is a secret

    stopped = council(engine_binary, "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert gone(pid)
    assert running_hub(isolated_data) is None


def test_up_detach_says_in_one_line_why_the_hub_did_not_start(
    engine_binary: EngineBinary, isolated_data: DataFolder
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = council(engine_binary, "up", "--detach", "--port", str(port), "--no-browser")
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use" in one_line(result.stderr)
    assert running_hub(isolated_data) is None


def test_up_detach_refuses_while_a_hub_runs(
    engine_binary: EngineBinary, start_hub: StartHub
) -> None:
    hub = start_hub()
    hub.wait_serving()
    result = council(engine_binary, "up", "--detach", "--no-browser")
    assert result.returncode == 1
    assert f"council is already running on {hub.data} (pid {hub.process.pid})" in one_line(
        result.stderr
    )
