"""One hub per data folder, and engines left behind by a dead hub are cleaned up."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable

import psutil

from council.datafolder import DataFolder
from council.engine.binary import EngineBinary
from council.models.demo import write_demo_model
from tests.hubs import HubProcess, free_port, gone

StartHub = Callable[..., HubProcess]


def test_a_second_hub_on_the_same_stick_is_refused_naming_the_first(
    start_hub: StartHub, isolated_data: DataFolder
) -> None:
    first = start_hub()
    first.wait_ok()
    second = subprocess.run(
        [sys.executable, "-m", "council", "up", "--no-browser", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert second.returncode == 1
    assert second.stderr.strip() == (
        f"Error: council is already running on {isolated_data.root} "
        f"(pid {first.process.pid}): stop it first, or use another data folder"
    )
    assert first.health()["status"] == "ok"


def test_the_lock_is_free_again_after_council_is_killed(start_hub: StartHub) -> None:
    first = start_hub()
    first.wait_ok()
    first.process.kill()
    first.process.wait()
    assert start_hub().wait_ok()["status"] == "ok"


def test_an_engine_left_running_by_a_dead_hub_is_stopped_at_the_next_start(
    start_hub: StartHub, isolated_data: DataFolder, engine_binary: EngineBinary
) -> None:
    model = write_demo_model(isolated_data.models / "left.gguf", seed=9)
    stray = subprocess.Popen(
        [str(engine_binary.path), "-m", str(model), "--port", str(free_port()), "--no-webui"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        created = psutil.Process(stray.pid).create_time()
        (isolated_data.root / "council.lock").write_text(
            json.dumps({"pid": 999999, "engines": [{"pid": stray.pid, "created": created}]})
        )
        hub = start_hub()
        hub.wait_ok()
        stray.wait(timeout=10)
        assert gone(stray.pid)
        assert f"stopped engines a previous council left running: [{stray.pid}]" in hub.text()
    finally:
        stray.kill()
        stray.wait()


def test_a_recorded_pid_that_is_now_another_program_is_left_alone(
    start_hub: StartHub, isolated_data: DataFolder
) -> None:
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (isolated_data.root / "council.lock").write_text(
            json.dumps({"pid": 1, "engines": [{"pid": bystander.pid, "created": 1.0}]})
        )
        start_hub().wait_ok()
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()
