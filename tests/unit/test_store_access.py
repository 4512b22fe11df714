"""The hub's handle on council.db: queries off the event loop, writes in order and never lost to
a cancelled caller, and a stick's failure reported and recovered from."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from council.errors import StickFull, StickReadOnly, StoreError
from council.store import access
from council.store import conversations as store
from council.store.access import Store
from council.store.db import store_error
from tests.running import run


def titles(db: sqlite3.Connection) -> list[str]:
    return [row[0] for row in db.execute("SELECT title FROM conversations ORDER BY rowid")]


def test_a_write_queued_behind_another_still_lands_when_its_caller_is_cancelled(
    db: Store,
) -> None:
    release = threading.Event()

    def slow(connection: sqlite3.Connection) -> None:
        release.wait(5)

    async def main() -> list[str]:
        blocker = asyncio.ensure_future(db.write(slow))
        queued = asyncio.ensure_future(db.write(store.create_conversation, "kept"))
        await asyncio.sleep(0.05)
        queued.cancel()  # a client went away while its write waited its turn
        release.set()
        await blocker
        await db.write(lambda connection: None)  # writes keep their order: the queue is drained
        return await db.read(titles)

    assert run(main()) == ["kept"]


def test_reads_and_the_loop_go_on_while_a_write_waits_on_the_stick(db: Store) -> None:
    run(db.write(store.create_conversation, "before"))
    release = threading.Event()

    def stalled(connection: sqlite3.Connection) -> None:
        release.wait(5)  # an fsync that does not come back

    async def main() -> tuple[list[str], str | None]:
        writing = asyncio.ensure_future(db.write(stalled))
        await asyncio.sleep(access.STALL + 0.3)  # the loop sleeps and wakes as asked
        seen = await db.read(titles)  # the reader does not queue behind the writer
        problem = db.problem()
        release.set()
        await writing
        return seen, problem

    seen, problem = run(main())
    assert seen == ["before"]
    assert problem is not None
    assert "has not finished a write" in problem
    assert db.problem() is None  # it finished


def test_a_full_stick_is_a_507_that_degrades_the_store_until_a_probe_succeeds(
    db: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(connection: sqlite3.Connection) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    with pytest.raises(StickFull) as raised:
        run(db.write(full))
    assert raised.value.status == 507
    assert db.problem() == str(raised.value)
    assert "the stick is full" in str(raised.value)

    db.defer(store.create_conversation, "kept for later")
    monkeypatch.setattr(access, "PROBE_EVERY", 0.0)
    deadline = time.monotonic() + 5
    while db.problem() is not None and time.monotonic() < deadline:
        time.sleep(0.02)  # each look queues a probe; the stick has room again
    assert db.problem() is None
    assert run(db.read(titles)) == ["kept for later"]  # replayed once the stick recovered


def test_a_failing_write_rolls_back_and_leaves_the_next_one_working(db: Store) -> None:
    def half(connection: sqlite3.Connection) -> None:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute(
            "INSERT INTO conversations (id, title, created_at, updated_at)"
            " VALUES ('x', 'half', '2026-01-01', '2026-01-01')"
        )
        raise sqlite3.OperationalError("attempt to write a readonly database")

    with pytest.raises(StickReadOnly):
        run(db.write(half))
    run(db.write(store.create_conversation, "whole"))
    assert run(db.read(titles)) == ["whole"]


def test_sqlite_errors_become_errors_a_person_can_act_on(tmp_path: Path) -> None:
    path = tmp_path / "council.db"
    assert isinstance(
        store_error(sqlite3.OperationalError("database or disk is full"), path), StickFull
    )
    read_only = store_error(sqlite3.OperationalError("attempt to write a readonly database"), path)
    assert isinstance(read_only, StickReadOnly)
    assert "the stick is read-only" in str(read_only)
    other = store_error(sqlite3.OperationalError("database is locked"), path)
    assert type(other) is StoreError
    assert str(path) in str(other)


def test_a_closed_store_refuses_writes_with_a_clear_error(tmp_path: Path) -> None:
    made = Store(tmp_path / "council.db")
    made.close()
    with pytest.raises(StoreError, match="closed"):
        made.submit(store.create_conversation, "late").result()


def test_a_degraded_store_recovers_on_its_own_while_the_hub_watches_it(
    db: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(connection: sqlite3.Connection) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(access, "PROBE_EVERY", 0.02)

    async def main() -> str | None:
        with pytest.raises(StickFull):
            await db.write(full)
        watching = asyncio.ensure_future(db.watch())
        await asyncio.sleep(0.5)  # nobody writes, nobody asks for health
        watching.cancel()
        return db.problem()

    assert run(main()) is None
