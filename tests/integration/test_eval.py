"""`council eval` end to end on the starter seats (real text, so tiny runs): every system
answers, the run is stored, listed and shown again, a run killed half-way resumes without
asking again, and bad input stores nothing."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from council.datafolder import DataFolder
from tests.hubs import HubProcess
from tests.hubs import run_council as council

pytestmark = pytest.mark.empty_stick

StartHub = Callable[..., HubProcess]
STARTER_SEATS = ["smollm2-careful", "smollm2-balanced", "smollm2-bold"]


@pytest.fixture
def starter_hub(start_hub: StartHub) -> HubProcess:
    hub = start_hub()
    hub.wait_ok(timeout=180)
    return hub


def answers_stored(folder: DataFolder) -> int:
    with sqlite3.connect(folder.database) as db:
        return int(db.execute("SELECT COUNT(*) FROM eval_answers").fetchone()[0])


def test_a_tiny_run_of_every_system_is_stored_listed_and_shown_again(
    starter_hub: HubProcess, isolated_data: DataFolder
) -> None:
    done = council(
        "eval",
        "--task",
        "basic_arithmetic",
        "--size",
        "1",
        "--max-tokens",
        "16",
        "--json",
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    systems = [row["system"] for row in report["results"]]
    assert systems == [f"seat:{s}" for s in STARTER_SEATS] + [
        "self-consistency",
        "synthesize",
        "moa",
        "vote",
    ]
    (item,) = report["items"]
    assert set(item["answers"]) == set(systems)
    for row in report["results"]:
        answer = item["answers"][row["system"]]
        assert row["n"] == 1
        assert row["correct"] == int(answer["correct"])
        assert row["accuracy"] == float(answer["correct"])
        assert row["ci95"] == [row["accuracy"], row["accuracy"]]  # one item: no spread
        assert row["tokens"] > 0
    assert report["status"] == "done"
    # An evaluation leaves the history as it found it.
    assert httpx.get(f"{starter_hub.url}/api/conversations").json()["conversations"] == []

    listed = council("eval", "list")
    assert report["run"] in listed.stdout
    assert "basic_arithmetic" in listed.stdout
    shown = council("eval", "show", report["run"][:6], "--json")
    assert json.loads(shown.stdout) == report
    table = council("eval", "show", report["run"]).stdout
    assert f"run {report['run']} · basic_arithmetic · 1 items · done" in table
    assert "self-consistency" in table


def test_a_run_killed_half_way_resumes_without_asking_again(
    starter_hub: HubProcess, isolated_data: DataFolder
) -> None:
    command = [
        sys.executable,
        "-m",
        "council",
        "eval",
        "--task",
        "chain_sum",
        "--size",
        "4",
        "--max-tokens",
        "12",
        "--systems",
        "seats",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and process.poll() is None:
            if isolated_data.database.exists() and answers_stored(isolated_data) >= 5:
                break
            time.sleep(0.1)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=10)
    with sqlite3.connect(isolated_data.database) as db:
        before = db.execute(
            "SELECT item_no, system, raw FROM eval_answers ORDER BY rowid"
        ).fetchall()
    assert 5 <= len(before) < 12

    again = council(*command[3:], timeout=600)
    assert again.returncode == 0, again.stderr
    assert f"{len(before)} answers already stored" in again.stderr
    with sqlite3.connect(isolated_data.database) as db:
        after = db.execute(
            "SELECT item_no, system, raw FROM eval_answers ORDER BY rowid"
        ).fetchall()
        runs = db.execute("SELECT status FROM eval_runs").fetchall()
    assert after[: len(before)] == before  # nothing asked again, nothing rewritten
    assert len(after) == 12
    assert runs == [("done",)]


def test_bad_input_is_one_line_and_stores_nothing(
    tmp_path: Path, isolated_data: DataFolder
) -> None:
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"question": "a", "answer": "1"}\n{"question": \n', encoding="utf-8")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    cases = [
        (["--task", "no_such_task"], "no reasoning-gym task 'no_such_task'"),
        (["--file", str(broken), "--extractor", "number"], f"{broken}:2: not JSON"),
        (["--file", str(empty)], f"{empty} holds no questions"),
        (["--task", "basic_arithmetic", "--size", "0"], "--size must be 1 to 1000, not 0"),
        (["--task", "basic_arithmetic", "--systems", "chaos"], "unknown system 'chaos'"),
    ]
    for args, message in cases:
        result = council("eval", *args)
        assert result.returncode != 0, args
        assert "Traceback" not in result.stderr
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, result.stderr
        assert message in lines[0]
    assert "no evaluation runs yet" in council("eval", "list").stdout
