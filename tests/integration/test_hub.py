"""`council up` on generated demo models, with the real llama-server."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
import pytest

from council.config import HubConfig, SeatConfig, save_config
from council.datafolder import DataFolder
from council.defaults import demo_seats
from council.models.demo import write_demo_model
from tests.hubs import HubProcess, engine_endpoint, gone

StartHub = Callable[..., HubProcess]
CHAT = {"messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 8}


def ask(engine: psutil.Process) -> httpx.Response:
    url, key = engine_endpoint(engine)
    return httpx.post(
        f"{url}/v1/chat/completions",
        json=CHAT,
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
    )


def test_three_demo_seats_are_healthy_and_each_engine_answers(start_hub: StartHub) -> None:
    hub = start_hub()
    health = hub.wait_ok()
    assert [seat["name"] for seat in health["seats"]] == ["demo-1", "demo-2", "demo-3"]
    assert all(seat["state"] == "healthy" and seat["demo"] for seat in health["seats"])
    assert "add real models" in health["demo_hint"]

    engines = hub.engines()
    assert len(engines) == 3
    reply = ask(engines[0])
    assert reply.status_code == 200, reply.text
    assert reply.json()["choices"][0]["message"]["role"] == "assistant"
    assert reply.json()["usage"]["completion_tokens"] > 0


def test_engines_refuse_requests_without_the_per_run_key(hub: HubProcess) -> None:
    engine = hub.engines()[0]
    url, key = engine_endpoint(engine)
    assert httpx.post(f"{url}/v1/chat/completions", json=CHAT, timeout=30).status_code == 401
    assert key not in " ".join(engine.cmdline())
    assert all(conn.laddr.ip == "127.0.0.1" for conn in engine.net_connections("tcp"))


def test_a_killed_engine_is_restarted_and_answers_again(hub: HubProcess) -> None:
    victim = hub.engines()[1]
    os.kill(victim.pid, signal.SIGKILL)

    health = hub.wait_for(
        lambda h: h["status"] == "ok" and h["seats"][1]["restarts"] >= 1, timeout=30
    )
    assert health["seats"][1]["name"] == "demo-2"
    replacement = next(e for e in hub.engines() if e.pid != victim.pid and "demo-2" in e.cmdline())
    assert ask(replacement).status_code == 200
    assert "killed by SIGKILL" in hub.text()


def test_sigkill_of_council_leaves_no_llama_server_behind(hub: HubProcess) -> None:
    pids = [engine.pid for engine in hub.engines()]
    assert len(pids) == 3
    os.kill(hub.process.pid, signal.SIGKILL)
    hub.process.wait()

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not all(gone(pid) for pid in pids):
        time.sleep(0.05)
    assert [pid for pid in pids if not gone(pid)] == []


def test_sigterm_stops_council_and_every_engine(hub: HubProcess) -> None:
    pids = [engine.pid for engine in hub.engines()]
    assert hub.stop() == 0
    assert all(gone(pid) for pid in pids)
    assert "council stopped" in hub.text()


def test_a_relocated_data_folder_still_works(
    start_hub: StartHub, isolated_data: DataFolder, tmp_path: Path
) -> None:
    first = start_hub(isolated_data.root)
    first.wait_ok()
    assert first.stop() == 0

    moved = tmp_path / "another-laptop" / "stick"
    moved.parent.mkdir()
    shutil.move(isolated_data.root, moved)
    for state in (moved / "config.toml", moved / "council.db"):
        assert str(isolated_data.root).encode() not in state.read_bytes()

    second = start_hub(moved)
    health = second.wait_ok()
    assert [seat["model"] for seat in health["seats"]] == [
        "demo/demo-1.gguf",
        "demo/demo-2.gguf",
        "demo/demo-3.gguf",
    ]
    assert ask(second.engines()[0]).status_code == 200


def test_a_model_that_fails_to_load_fails_only_its_seat(
    start_hub: StartHub, isolated_data: DataFolder
) -> None:
    good = write_demo_model(isolated_data.models / "good.gguf", seed=5)
    data = good.read_bytes()
    (isolated_data.models / "broken.gguf").write_bytes(data[: len(data) // 2])
    save_config(
        isolated_data,
        HubConfig(seats=(SeatConfig("good", "good.gguf"), SeatConfig("broken", "broken.gguf"))),
    )
    hub = start_hub()
    health = hub.wait_for(lambda h: h["status"] == "degraded")
    good_seat, broken_seat = health["seats"]
    assert good_seat["state"] == "healthy"
    assert broken_seat["state"] == "failed"
    assert "corrupted or incomplete" in broken_seat["reason"]
    assert ask(hub.engines()[0]).status_code == 200


def test_a_missing_model_file_fails_its_seat_with_the_path(
    start_hub: StartHub, isolated_data: DataFolder
) -> None:
    write_demo_model(isolated_data.models / "here.gguf", seed=1)
    save_config(
        isolated_data,
        HubConfig(seats=(SeatConfig("here", "here.gguf"), SeatConfig("gone", "gone.gguf"))),
    )
    hub = start_hub()
    health = hub.wait_for(
        lambda h: h["status"] == "degraded" and h["seats"][0]["state"] == "healthy"
    )
    assert health["seats"][1] == {
        "name": "gone",
        "kind": "local",
        "model": "gone.gguf",
        "state": "failed",
        "demo": False,
        "reason": "model file not found: models/gone.gguf",
        "restarts": 0,
    }


def run_council(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "council", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def test_an_explicit_port_in_use_is_an_error_naming_the_port(isolated_data: DataFolder) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_council("up", "--no-browser", "--port", str(port))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"Error: port {port} on 127.0.0.1 is already in use: stop what uses it, "
        "or choose another with --port"
    ]
    assert "spawned" not in (isolated_data.logs / "council.log").read_text()


def test_a_busy_default_port_picks_another(start_hub: StartHub, isolated_data: DataFolder) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        save_config(isolated_data, HubConfig(port=taken, seats=demo_seats()))
        hub = start_hub(default_port=True)
        assert hub.url.startswith("http://127.0.0.1:")
        assert hub.url != f"http://127.0.0.1:{taken}"
        assert hub.wait_ok()["status"] == "ok"


def test_seats_that_do_not_fit_in_memory_are_refused_with_the_numbers(
    isolated_data: DataFolder,
) -> None:
    write_demo_model(isolated_data.models / "small.gguf", seed=1)
    save_config(
        isolated_data,
        HubConfig(
            seats=(
                SeatConfig("small", "small.gguf"),
                SeatConfig("huge", "small.gguf", ctx_size=2**30),
            )
        ),
    )
    result = run_council("up", "--no-browser")
    assert result.returncode == 1
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1
    assert "huge" in message
    assert "KV cache" in message
    assert "ctx 1073741824" in message
    assert "spawned" not in (isolated_data.logs / "council.log").read_text()


def read_only_mount_script(folder: str, then: str) -> list[str]:
    """A private mount namespace where `folder` is read-only, as on a locked or full stick."""
    mount = f"mount --bind {folder} {folder} && mount -o remount,bind,ro {folder}"
    return ["unshare", "-m", "sh", "-c", f"{mount} && {then}"]


def test_a_read_only_data_folder_is_reported_before_any_engine_starts(
    isolated_data: DataFolder, tmp_path: Path
) -> None:
    probe = (
        subprocess.run(
            read_only_mount_script(str(tmp_path), "true"), capture_output=True, check=False
        )
        if shutil.which("unshare")
        else None
    )
    if probe is None or probe.returncode != 0:
        pytest.skip("mounting a folder read-only needs root and unshare")
    root = str(isolated_data.root)
    command = f"exec {sys.executable} -m council up --no-browser --data {root}"
    result = subprocess.run(
        read_only_mount_script(root, command),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"Error: data folder {root} is not writable (Read-only file system): "
        "is the stick read-only or full?"
    )
    assert not (isolated_data.logs / "council.log").exists()


def test_a_missing_engine_binary_says_how_to_get_one(tmp_path: Path) -> None:
    result = run_council("up", "--no-browser", "--llama-server", str(tmp_path / "nope"))
    assert result.returncode == 1
    assert "is not an executable file" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
