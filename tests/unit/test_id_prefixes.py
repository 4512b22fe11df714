"""What the terminal is told about an id it was given short, and about a search that finds
nothing: the store's answers and the CLI's lines."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor

import pytest
from click.testing import CliRunner

from council.cli import cli
from council.datafolder import DataFolder
from council.errors import BadRequest, NotFound
from council.store import conversations
from council.store.db import connect
from council.store.devices import get_device, insert_device, rename_device, resolve_device_id
from council.timestamps import stamp

TOO_SHORT = "is too short: give at least 4 characters of the id"


@pytest.fixture
def db(isolated_data: DataFolder) -> sqlite3.Connection:
    return connect(isolated_data.database)


def a_device(db: sqlite3.Connection) -> str:
    with conversations.transaction(db):
        device = insert_device(
            db, name="Pixel", token_hash="0" * 64, address="10.0.0.2", at=stamp()
        )
    return device.id


@pytest.mark.parametrize("prefix", ["", "a", "ab", "abc"])
def test_a_prefix_under_four_characters_is_refused_as_too_short(
    db: sqlite3.Connection, prefix: str
) -> None:
    conversations.create_conversation(db, "x")
    a_device(db)
    with pytest.raises(BadRequest) as conversation:
        conversations.resolve_id(db, prefix)
    assert str(conversation.value) == f"{prefix!r} {TOO_SHORT}"
    with pytest.raises(BadRequest) as device:
        resolve_device_id(db, prefix)
    assert str(device.value) == f"{prefix!r} {TOO_SHORT}"
    assert device.value.status == 400


def test_four_characters_and_full_ids_still_resolve(db: sqlite3.Connection) -> None:
    conversation = conversations.create_conversation(db, "x")
    device = a_device(db)
    for prefix in (conversation[:4], conversation):
        assert conversations.resolve_id(db, prefix) == conversation
    for prefix in (device[:4], device):
        assert resolve_device_id(db, prefix) == device
    assert get_device(db, device).name == "Pixel"  # what the API's PATCH and DELETE go through
    assert rename_device(db, device, "Anna's Pixel").name == "Anna's Pixel"
    with pytest.raises(NotFound, match=r"^no conversation 'ffffffff'$"):
        conversations.resolve_id(db, "ffffffff")
    with pytest.raises(NotFound, match=r"^no device 'ffffffff'$"):
        resolve_device_id(db, "ffffffff")


def test_the_cli_says_a_prefix_is_too_short_in_one_line(db: sqlite3.Connection) -> None:
    conversation = conversations.create_conversation(db, "x")
    device = a_device(db)
    runner = CliRunner()
    for prefix, args in (
        (conversation[:2], ["export", conversation[:2]]),
        ("ab", ["ask", "hello", "--conversation", "ab"]),
        (device[:3], ["devices", "revoke", device[:3]]),
        (device[:1], ["devices", "rename", device[:1], "New name"]),
    ):
        # On a thread: `ask` runs an event loop, and the browser tests keep one on this thread.
        with ThreadPoolExecutor(max_workers=1) as pool:
            result = pool.submit(runner.invoke, cli, args).result()
        assert result.exit_code == 1, args
        assert result.stderr == f"Error: {prefix!r} {TOO_SHORT}\n"
        assert result.stdout == ""


def test_history_says_when_a_search_matches_nothing(db: sqlite3.Connection) -> None:
    runner = CliRunner()
    empty = runner.invoke(cli, ["history"])
    assert empty.exit_code == 0
    assert empty.stdout.startswith("no conversations yet")
    conversations.create_conversation(db, "About planets")
    none = runner.invoke(cli, ["history", "--search", "comets"])
    assert none.exit_code == 0
    assert none.stdout == "no conversations match 'comets'\n"
    found = runner.invoke(cli, ["history", "--search", "planet"])
    assert "About planets" in found.stdout
    assert "no conversations" not in found.stdout
