"""A peer's seats in this hub's council: two real hubs on one machine (the peer's LAN listener
on 127.0.0.2), a round that mixes local and peer seats, the peer going away mid-round and
coming back."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from council.config import HubConfig, save_config
from council.datafolder import DataFolder
from council.defaults import demo_seats
from council.engine.binary import EngineBinary
from tests.hubs import HubProcess, ask_round, free_port, new_conversation, run_council

StartHub = Callable[..., HubProcess]
PEER_HOST = "127.0.0.2"


def council(engine: EngineBinary, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COUNCIL_LLAMA_SERVER": str(engine.path)}
    return run_council(*args, env=env, timeout=120)


@pytest.fixture
def peer_folder(tmp_path: Path) -> DataFolder:
    folder = DataFolder(tmp_path / "peer-stick")
    folder.root.mkdir()
    folder.prepare()
    save_config(folder, HubConfig(seats=demo_seats()))
    return folder


def start_peer(start_hub: StartHub, folder: DataFolder, port: int) -> HubProcess:
    hub = start_hub(folder.root, "--lan", "--lan-host", PEER_HOST, "--lan-port", str(port))
    hub.wait_ok()
    return hub


def peer_rows(health: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {seat["name"]: seat for seat in health["seats"] if seat["kind"] == "peer"}


def seats_ready(health: dict[str, Any]) -> bool:
    rows = peer_rows(health)
    return len(rows) == 3 and all(row["state"] == "ready" for row in rows.values())


def test_a_peers_seats_answer_in_this_hubs_rounds_and_come_back_after_it_went_away(
    engine_binary: EngineBinary, start_hub: StartHub, peer_folder: DataFolder
) -> None:
    hub = start_hub()
    hub.wait_ok()
    port = free_port()
    peer = start_peer(start_hub, peer_folder, port)
    made = json.loads(council(engine_binary, "pair", "--data", str(peer.data), "--json").stdout)
    added = council(engine_binary, "peers", "add", made["url"], "--name", "kitchen")
    assert added.returncode == 0, added.stderr  # through the running hub: no restart
    health = hub.wait_for(seats_ready)
    assert sorted(peer_rows(health)) == ["kitchen/demo-1", "kitchen/demo-2", "kitchen/demo-3"]
    listed = json.loads(council(engine_binary, "seats", "list", "--json").stdout)["seats"]
    row = next(seat for seat in listed if seat["name"] == "kitchen/demo-2")
    assert (row["kind"], row["model"], row["peer"]) == ("peer", "demo-2", "kitchen")
    assert row["latency_ms"] > 0

    models = [m["id"] for m in httpx.get(f"{hub.url}/v1/models", timeout=10).json()["data"]]
    assert {"kitchen/demo-1", "kitchen/demo-2", "kitchen/demo-3"} <= set(models)
    body = {"model": "kitchen/demo-2", "messages": [{"role": "user", "content": "Hi"}]}
    whole = httpx.post(f"{hub.url}/v1/chat/completions", json={**body, "max_tokens": 4}, timeout=60)
    assert whole.status_code == 200, whole.text
    assert whole.json()["model"] == "demo-2"  # the peer answered, under its own name
    with httpx.stream(
        "POST",
        f"{hub.url}/v1/chat/completions",
        json={**body, "max_tokens": 4, "stream": True},
        timeout=60,
    ) as streamed:
        lines = [line for line in streamed.iter_lines() if line.startswith("data:")]
    assert lines[-1] == "data: [DONE]"

    seats = ["demo-1", "kitchen/demo-1", "kitchen/demo-2"]
    conversation = new_conversation(hub)
    events = ask_round(hub, conversation, "Who answers?", seats=seats, max_tokens=6)
    done = {data["seat"]: data for kind, data in events if kind == "seat_done"}
    assert {"kitchen/demo-1", "kitchen/demo-2"} <= set(done)
    assert events[-1][1]["status"] == "done"

    # The peer goes away in the middle of a round: its engines frozen, then the hub killed.
    for engine in peer.engines():
        os.kill(engine.pid, signal.SIGSTOP)
    finished: list[list[tuple[str, dict[str, Any]]]] = []
    asking = threading.Thread(
        target=lambda: finished.append(
            ask_round(hub, conversation, "And now?", seats=seats, max_tokens=6)
        )
    )
    asking.start()
    deadline = time.monotonic() + 30
    while not httpx.get(f"{hub.url}/api/status", timeout=5).json()["rounds"]:
        assert time.monotonic() < deadline, "the round did not start"
        time.sleep(0.05)
    time.sleep(0.5)  # the peer's seats have been asked by now, and wait on its frozen engines
    os.kill(peer.process.pid, signal.SIGKILL)
    peer.process.wait(10)
    for engine_pid in peer.spawned:
        with contextlib.suppress(psutil.Error):
            psutil.Process(engine_pid).kill()
    asking.join(120)
    [events] = finished
    failed = {data["seat"]: data for kind, data in events if kind == "seat_error"}
    assert {"kitchen/demo-1", "kitchen/demo-2"} <= set(failed)
    assert events[-1][1]["status"] == "done"  # demo-1 answered and chaired
    down = hub.wait_for(lambda h: peer_rows(h)["kitchen/demo-1"]["state"] == "unreachable")
    assert "cannot reach peer kitchen" in peer_rows(down)["kitchen/demo-1"]["reason"]
    refused = ask_round(hub, conversation, "Still there?", seats=seats, max_tokens=6)
    reasons = [data["error"] for kind, data in refused if kind == "seat_error"]
    assert any("peer kitchen is unreachable" in reason for reason in reasons), refused

    # Back on the same stick and port: the same CA, the same token; its seats answer again.
    start_peer(start_hub, peer_folder, port)
    hub.wait_for(seats_ready)
    again = ask_round(hub, conversation, "Back?", seats=seats, max_tokens=6)
    assert {"kitchen/demo-1", "kitchen/demo-2"} <= {
        data["seat"] for kind, data in again if kind == "seat_done"
    }
    [row] = json.loads(council(engine_binary, "peers", "list", "--json").stdout)
    assert (row["name"], row["state"], row["seats"]) == (
        "kitchen",
        "reachable",
        ["demo-1", "demo-2", "demo-3"],
    )
    assert council(engine_binary, "peers", "remove", "kitchen", "--yes").returncode == 0
    assert peer_rows(hub.wait_for(lambda h: not peer_rows(h))) == {}
