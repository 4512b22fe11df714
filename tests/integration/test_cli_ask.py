"""`council ask`, `history` and `export` in a terminal, with and without a running hub."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable

import httpx

from council.datafolder import DataFolder, running_hub
from council.engine.binary import EngineBinary
from tests.hubs import HubProcess, run_council

StartHub = Callable[..., HubProcess]


def council(engine: EngineBinary, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COUNCIL_LLAMA_SERVER": str(engine.path)}
    return run_council(*args, env=env, timeout=180)


def test_ask_without_a_hub_runs_the_seats_for_the_command_and_stores_the_round(
    engine_binary: EngineBinary, isolated_data: DataFolder
) -> None:
    result = council(engine_binary, "ask", "What is a council?", "--max-tokens", "8")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("council · synthesize · seats: demo-1, demo-2, demo-3 · chair: demo-1")
    for section in (
        "── answers",
        "▌ demo-2 (8 tokens",
        "── reviews",
        "ranks: demo-",  # noise holds no ranking: the grammar's follow-up gives one
        "(asked for under a grammar)",
        "── aggregate ranking",
        "── final answer: demo-1",
    ):
        assert section in out
    conversation = out.strip().splitlines()[-1].split()[1]

    history = json.loads(council(engine_binary, "history", "--json").stdout)
    assert [(c["id"], c["title"], c["messages"]) for c in history] == [
        (conversation, "What is a council?", 1)
    ]
    markdown = council(engine_binary, "export", conversation[:6]).stdout
    assert markdown.startswith("# What is a council?")
    assert running_hub(isolated_data) is None  # the command's own hub is gone again


def test_ask_uses_the_hub_that_is_running_and_follows_up_a_conversation(
    engine_binary: EngineBinary, start_hub: StartHub
) -> None:
    hub = start_hub()
    hub.wait_ok()
    first = council(engine_binary, "ask", "Name a planet.", "--max-tokens", "6", "--json")
    assert first.returncode == 0, first.stderr
    message = json.loads(first.stdout)
    assert message["status"] == "done"
    assert message["question"] == "Name a planet."
    conversation = message["conversation_id"]

    follow = council(
        engine_binary,
        "ask",
        "Another?",
        "--max-tokens",
        "6",
        "--mode",
        "moa",
        "--chair",
        "demo-2",
        "--conversation",
        conversation[:8],
        "--json",
    )
    assert follow.returncode == 0, follow.stderr
    assert json.loads(follow.stdout)["result"]["chair"] == "demo-2"
    stored = httpx.get(f"{hub.url}/api/conversations/{conversation}").json()
    assert [m["question"] for m in stored["messages"]] == ["Name a planet.", "Another?"]


def test_ask_with_bad_input_is_one_line_and_a_failure(
    engine_binary: EngineBinary, start_hub: StartHub
) -> None:
    start_hub().wait_ok()
    unknown = council(engine_binary, "ask", "hi", "--seat", "nobody")
    assert unknown.returncode == 1
    assert unknown.stderr.strip().startswith("Error: unknown seat 'nobody'")
    assert len(unknown.stderr.strip().splitlines()) == 1
    empty = council(engine_binary, "ask", " ")
    assert empty.returncode == 1
    assert empty.stderr.strip() == "Error: the question is empty"
    missing = council(engine_binary, "export", "abcdef12")
    assert missing.returncode == 1
    assert missing.stderr.strip() == "Error: no conversation 'abcdef12'"
    refused = [
        ("--chair", "nobody"),
        ("--extractor", "bogus", "--mode", "vote"),
        ("--extractor", "regex:(", "--mode", "vote"),
    ]
    for options in refused:
        assert council(engine_binary, "ask", "hi", *options).returncode == 1, options
    # Nothing is stored for a refused question: no empty conversation in the history.
    assert json.loads(council(engine_binary, "history", "--json").stdout) == []


def test_ask_against_a_hub_killed_mid_round_prints_one_line_and_fails(
    engine_binary: EngineBinary, isolated_data: DataFolder, start_hub: StartHub
) -> None:
    from tests.integration.test_council import long_context_seats

    long_context_seats(isolated_data)
    hub = start_hub()
    hub.wait_ok()
    hub.engines()  # remember their PIDs, so teardown can make sure they are gone
    env = {**os.environ, "COUNCIL_LLAMA_SERVER": str(engine_binary.path)}
    asking = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "council",
            "ask",
            "Go on.",
            "--seat",
            "slow",
            "--chair",
            "slow",
            "--max-tokens",
            "30000",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert asking.stdout is not None
        header = asking.stdout.readline()  # printed when the round has started
        assert header.startswith("council · synthesize · seats: slow")
        hub.process.kill()
        _, stderr = asking.communicate(timeout=60)
    finally:
        if asking.poll() is None:
            asking.kill()
    assert asking.returncode == 1
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines() == [
        f"Error: the hub at {hub.url} closed the connection before the answer was complete "
        "(did it stop? `council history` shows what was kept)"
    ]
