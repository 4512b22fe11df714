"""`council chat` in a real terminal (a pseudo-terminal), against the demo seats: questions that
follow up one another, Ctrl-C that stops a round and not the chat, slash commands, and the hub
the chat starts for itself when none runs."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pexpect

from council.chatting import PROMPT
from council.datafolder import DataFolder, running_hub
from council.engine.binary import EngineBinary
from council.security.owner import read_token
from council.store import conversations
from council.store import db as store_db
from tests.hubs import HubProcess, engines_frozen

StartHub = Callable[..., HubProcess]


@contextmanager
def chatting(engine: EngineBinary, *args: str) -> Iterator[pexpect.spawn]:
    """`council chat ARGS` in a pseudo-terminal; killed by its PID however the test ends."""
    env = {**os.environ, "COUNCIL_LLAMA_SERVER": str(engine.path)}
    child = pexpect.spawn(
        sys.executable,
        ["-m", "council", "chat", *args],
        env=env,
        encoding="utf-8",
        timeout=120,
        dimensions=(40, 160),
    )
    try:
        yield child
    finally:
        child.close(force=True)


def ask(child: pexpect.spawn, question: str) -> str:
    """Type a question and wait for the next prompt; what the round printed."""
    child.sendline(question)
    child.expect_exact(PROMPT)
    return str(child.before)


def quit_chat(child: pexpect.spawn) -> None:
    child.sendline("/quit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert "Traceback" not in str(child.before)


def stored(folder: DataFolder) -> list[dict[str, Any]]:
    """The stored conversations, newest first, once no round is running any more."""
    deadline = time.monotonic() + 20
    while True:
        db = store_db.connect(folder.database)
        try:
            found = [
                conversations.get_conversation(db, item["id"])
                for item in conversations.list_conversations(db)
            ]
        finally:
            db.close()
        settled = all(m["status"] != "running" for c in found for m in c["messages"])
        if settled or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_chat_follows_up_in_one_conversation_and_ctrl_c_stops_only_the_round(
    engine_binary: EngineBinary, isolated_data: DataFolder, start_hub: StartHub
) -> None:
    hub = start_hub()
    hub.wait_ok()
    hub.engines()  # remember their PIDs, so teardown can make sure they are gone
    with chatting(engine_binary, "--max-tokens", "8") as child:
        child.expect_exact(PROMPT)
        first = ask(child, "What is a council?")
        assert "council · synthesize · seats: demo-1, demo-2, demo-3 · chair: demo-1" in first
        assert "── final answer: demo-1" in first
        with engines_frozen(hub):  # the second round cannot end before Ctrl-C reaches it
            child.sendline("And then?")
            child.expect_exact("── answers")
            child.sendintr()
            child.expect_exact("(stopped)")
            child.expect_exact(PROMPT)
        child.sendintr()  # at the prompt: a fresh prompt, as in a shell
        child.expect_exact(PROMPT)
        quit_chat(child)

    [conversation] = stored(isolated_data)
    assert [(m["question"], m["status"]) for m in conversation["messages"]] == [
        ("What is a council?", "done"),
        ("And then?", "cancelled"),
    ]
    prefix = conversation["id"][:6]

    with chatting(engine_binary, "--max-tokens", "8", "--conversation", prefix) as child:
        child.expect_exact(f"(continuing {conversation['id'][:8]})")
        child.expect_exact(PROMPT)
        assert "── final answer" in ask(child, "Once more?")
        assert "new conversation" in ask(child, "/new")
        assert "(conversation " in ask(child, "Something else?")
        child.sendeof()  # Ctrl-D leaves, as /quit does
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0

    assert sorted([m["question"] for m in c["messages"]] for c in stored(isolated_data)) == [
        ["Something else?"],
        ["What is a council?", "And then?", "Once more?"],
    ]


def test_chat_without_a_hub_runs_one_for_the_chat_and_takes_slash_commands(
    engine_binary: EngineBinary, isolated_data: DataFolder
) -> None:
    with chatting(engine_binary, "--max-tokens", "8") as child:
        child.expect_exact("starting the council for this chat")
        child.expect_exact(PROMPT)
        record = running_hub(isolated_data)
        assert record is not None
        # Waiting at the prompt, the chat's own hub still answers (the loop runs on).
        health = httpx.get(
            f"{record['url']}/api/health",
            headers={"authorization": f"Bearer {read_token(isolated_data)}"},
            timeout=10,
        )
        assert health.json()["status"] == "ok"

        assert "unknown command '/shout'" in ask(child, "/shout hello")
        assert "unknown mode 'loud'" in ask(child, "/mode loud")
        assert "mode: vote" in ask(child, "/mode vote")
        voted = ask(child, "Pick a number.")
        assert "council · vote · seats: demo-1, demo-2, demo-3" in voted
        assert "error: unknown seat 'nobody'" in ask(child, "/seats nobody") + ask(child, "Hm?")
        listed = ask(child, "/seats")
        assert "demo-2" in listed
        assert "healthy" in listed
        quit_chat(child)

    assert running_hub(isolated_data) is None  # the chat's own hub is gone again
    [conversation] = stored(isolated_data)
    assert [(m["question"], m["status"], m["mode"]) for m in conversation["messages"]] == [
        ("Pick a number.", "done", "vote")
    ]
