from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from council.errors import BadRequest, NotFound
from council.store import conversations as store
from council.store.db import connect, migrate
from council.types import MessageStatus, OutputStatus, Stage, StageOutput


@pytest.fixture
def db(tmp_path: Path) -> sqlite3.Connection:
    return connect(tmp_path / "council.db")


def test_the_database_is_durable_and_migrated_once(db: sqlite3.Connection) -> None:
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert db.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    names = [row[0] for row in db.execute("SELECT name FROM _migrations ORDER BY name")]
    assert names == [
        "m001_engine_events",
        "m002_conversations",
        "m003_devices",
        "m004_model_digests",
        "m005_conversation_devices",
        "m006_evaluations",
    ]
    assert migrate(db) == []


def test_an_untitled_conversation_is_named_after_its_first_question(
    db: sqlite3.Connection,
) -> None:
    conversation = store.create_conversation(db, "")
    store.start_message(db, conversation, "  What is   the tallest mountain?\n", "synthesize", {})
    store.start_message(db, conversation, "And the deepest trench?", "synthesize", {})
    assert store.get_conversation(db, conversation)["title"] == "What is the tallest mountain?"


def test_a_round_still_running_when_the_hub_died_is_marked_interrupted(
    db: sqlite3.Connection,
) -> None:
    conversation = store.create_conversation(db, "x")
    running = store.start_message(db, conversation, "q1", "synthesize", {})
    store.add_output(db, running, StageOutput(Stage.ANSWER, "a", "partial", OutputStatus.DONE))
    finished = store.start_message(db, conversation, "q2", "synthesize", {})
    store.finish_message(db, finished, MessageStatus.DONE, answer="fine", result={})

    assert store.mark_interrupted(db) == 1
    messages = store.get_conversation(db, conversation)["messages"]
    assert [m["status"] for m in messages] == ["interrupted", "done"]
    assert messages[0]["outputs"][0]["content"] == "partial"  # committed outputs survive
    assert store.history(db, conversation) == [("q2", "fine")]


def test_a_conversation_id_prefix_must_be_unique(db: sqlite3.Connection) -> None:
    conversation = store.create_conversation(db, "x")
    assert store.resolve_id(db, conversation[:6]) == conversation
    with pytest.raises(NotFound):
        store.resolve_id(db, "zzzz")
    with pytest.raises(BadRequest, match="too short: give at least 4 characters of the id"):
        store.resolve_id(db, conversation[:3])  # too short to be safe


def test_search_treats_wildcards_as_plain_text(db: sqlite3.Connection) -> None:
    percent = store.create_conversation(db, "100% sure")
    store.create_conversation(db, "100 sure")
    assert [c["id"] for c in store.list_conversations(db, "100%")] == [percent]


def test_a_message_for_a_missing_conversation_writes_nothing(db: sqlite3.Connection) -> None:
    with pytest.raises(NotFound):
        store.start_message(db, "0" * 16, "q", "synthesize", {})
    assert db.execute("SELECT COUNT(*) FROM messages").fetchone() == (0,)


def test_deleting_a_conversation_deletes_its_messages_and_outputs(
    db: sqlite3.Connection,
) -> None:
    conversation = store.create_conversation(db, "x")
    message = store.start_message(db, conversation, "q", "synthesize", {})
    store.add_output(db, message, StageOutput(Stage.ANSWER, "a", "text", OutputStatus.DONE))
    store.delete_conversation(db, conversation)
    assert db.execute("SELECT COUNT(*) FROM messages").fetchone() == (0,)
    assert db.execute("SELECT COUNT(*) FROM outputs").fetchone() == (0,)
    with pytest.raises(NotFound):
        store.delete_conversation(db, conversation)


def test_a_device_sees_only_the_conversations_it_started(db: sqlite3.Connection) -> None:
    owners = store.create_conversation(db, "the owner's")
    phones = store.create_conversation(db, "the phone's", "phone-id")
    assert [c["id"] for c in store.list_conversations(db, device_id="phone-id")] == [phones]
    assert {c["id"] for c in store.list_conversations(db)} == {owners, phones}
    assert store.list_conversations(db, "owner", device_id="phone-id") == []
    assert store.is_visible(db, phones, "phone-id")
    assert store.is_visible(db, owners, None)
    assert store.is_visible(db, phones, None)  # the owner sees every conversation
    assert not store.is_visible(db, owners, "phone-id")
    assert not store.is_visible(db, phones, "tablet-id")
    with pytest.raises(NotFound):
        store.require_conversation(db, owners, "phone-id")
