"""`council seats`: live through a running hub on the demo seats, and offline by editing
config.toml (comments kept)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from council.config import load_config
from council.datafolder import DataFolder
from council.engine.binary import EngineBinary
from tests.gguf_files import write_model
from tests.hubs import HubProcess, run_council

StartHub = Callable[..., HubProcess]


def council(
    engine: EngineBinary, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COUNCIL_LLAMA_SERVER": str(engine.path)}
    if stdin is None:
        return run_council(*args, env=env, timeout=120)
    return subprocess.run(
        [sys.executable, "-m", "council", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def refused(result: subprocess.CompletedProcess[str], words: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert words in lines[0], lines[0]


def listed(engine: EngineBinary) -> dict[str, Any]:
    result = council(engine, "seats", "list", "--json")
    assert result.returncode == 0, result.stderr
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer


def seat_names(folder: DataFolder) -> list[tuple[str, bool]]:
    return [(seat.name, seat.enabled) for seat in load_config(folder).seats]


def test_without_a_hub_seats_edits_config_toml_and_keeps_its_comments(
    engine_binary: EngineBinary, isolated_data: DataFolder
) -> None:
    config = isolated_data.config_file
    config.write_text("# my council: keep this line\n" + config.read_text())
    text = council(engine_binary, "seats", "list").stdout
    assert text.splitlines()[0].split() == ["SEAT", "KIND", "MODEL", "STATE", "CTX", "TOK/S"]
    assert "demo-1  local" in text
    assert text.strip().endswith(
        "(no hub is running: this is what config.toml and remotes.toml say)"
    )

    assert council(engine_binary, "models", "demo", "--name", "spare").returncode == 0
    added = council(engine_binary, "seats", "add", "spare.gguf", "--name", "extra", "--ctx", "256")
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == (
        "added seat extra (demo/spare.gguf) to config.toml: it starts with the next `./council up`"
    )
    extra = load_config(isolated_data).seats[-1]
    assert (extra.name, extra.model, extra.ctx_size) == ("extra", "demo/spare.gguf", 256)
    assert config.read_text().startswith("# my council: keep this line\n")

    assert council(engine_binary, "seats", "disable", "extra").returncode == 0
    assert ("extra", False) in seat_names(isolated_data)
    assert listed(engine_binary)["seats"][-1]["state"] == "disabled"
    assert council(engine_binary, "seats", "enable", "extra").returncode == 0
    assert ("extra", True) in seat_names(isolated_data)

    refused(council(engine_binary, "seats", "rm", "extra", stdin="n\n"), "nothing removed")
    assert ("extra", True) in seat_names(isolated_data)
    removed = council(engine_binary, "seats", "rm", "extra", "--yes")
    assert removed.returncode == 0, removed.stderr
    assert [name for name, _ in seat_names(isolated_data)] == ["demo-1", "demo-2", "demo-3"]
    assert config.read_text().startswith("# my council: keep this line\n")


def test_seats_refuses_a_taken_name_a_missing_model_and_a_base_model_in_one_line(
    engine_binary: EngineBinary, isolated_data: DataFolder
) -> None:
    assert council(engine_binary, "models", "demo", "--name", "spare").returncode == 0
    before = isolated_data.config_file.read_text()
    refused(
        council(engine_binary, "seats", "add", "demo/spare.gguf", "--name", "demo-2"),
        "there is already a seat called 'demo-2'",
    )
    refused(council(engine_binary, "seats", "add", "nothing-here"), "no model 'nothing-here'")
    (isolated_data.models / "base").mkdir()
    write_model(isolated_data.models / "base" / "base.gguf")  # no chat template
    refused(
        council(engine_binary, "seats", "add", "base/base.gguf"),
        "base/base.gguf is a base model (it has no chat template)",
    )
    refused(council(engine_binary, "seats", "rm", "ghost", "--yes"), "no seat 'ghost'")
    refused(council(engine_binary, "seats", "disable", "ghost"), "no seat 'ghost'")
    assert isolated_data.config_file.read_text() == before  # a refusal changes nothing


def wait_for_seat(
    hub: HubProcess, name: str, present: bool = True, state: str = "healthy"
) -> dict[str, Any]:
    def seen(health: dict[str, Any]) -> bool:
        rows = [seat for seat in health["seats"] if seat["name"] == name]
        return bool(rows and rows[0]["state"] == state) if present else not rows

    return hub.wait_for(seen)


def test_with_a_hub_seats_change_the_council_at_once(
    engine_binary: EngineBinary, start_hub: StartHub, isolated_data: DataFolder
) -> None:
    hub = start_hub()
    hub.wait_ok()
    added = council(engine_binary, "seats", "add", "demo/demo-1.gguf", "--name", "extra")
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith("added seat extra (demo/demo-1.gguf): its engine is starting")
    wait_for_seat(hub, "extra")
    seats = listed(engine_binary)
    assert seats["live"] is True
    assert [seat["name"] for seat in seats["seats"]] == ["demo-1", "demo-2", "demo-3", "extra"]
    refused(
        council(engine_binary, "seats", "add", "demo/demo-1.gguf", "--name", "extra"),
        "there is already a seat called 'extra'",
    )

    assert council(engine_binary, "seats", "disable", "extra").stdout.strip() == (
        "seat extra disabled in the running hub"
    )
    wait_for_seat(hub, "extra", present=False)
    assert ("extra", False) in seat_names(isolated_data)
    assert listed(engine_binary)["seats"][-1] == {
        "name": "extra",
        "kind": "local",
        "model": "demo/demo-1.gguf",
        "state": "disabled",
        "enabled": False,
    }
    assert council(engine_binary, "seats", "enable", "extra").returncode == 0
    wait_for_seat(hub, "extra")

    before = json.loads(council(engine_binary, "status", "--json").stdout)
    old = next(s["engine_pid"] for s in before["seats"] if s["name"] == "demo-2")
    restarted = council(engine_binary, "seats", "restart", "demo-2")
    assert restarted.returncode == 0, restarted.stderr
    assert restarted.stdout.startswith("restarting seat demo-2")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = json.loads(council(engine_binary, "status", "--json").stdout)
        row = next(s for s in now["seats"] if s["name"] == "demo-2")
        if row["state"] == "healthy" and row["engine_pid"] not in {None, old}:
            break
        time.sleep(0.2)
    assert row["state"] == "healthy"
    assert row["engine_pid"] != old

    removed = council(engine_binary, "seats", "rm", "extra", "--yes")
    assert removed.stdout.strip() == "removed seat extra"
    wait_for_seat(hub, "extra", present=False)
    assert [name for name, _ in seat_names(isolated_data)] == ["demo-1", "demo-2", "demo-3"]
