"""Every timestamp council writes has one shape, whether Python or SQLite wrote it."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from council.store import conversations
from council.store.db import KEEP_ENGINE_EVENTS, connect, engine_events, record_engine_event
from council.timestamps import SQL_NOW, parse, stamp

SHAPE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def test_a_stamp_is_utc_with_milliseconds_and_a_z() -> None:
    moment = datetime(2026, 12, 2, 23, 30, 1, 123456, tzinfo=timezone(timedelta(hours=2)))
    assert stamp(moment) == "2026-12-02T21:30:01.123Z"
    assert parse(stamp(moment)) == moment.replace(microsecond=123000)


def test_sqlite_writes_the_same_shape_and_the_two_sort_together() -> None:
    db = sqlite3.connect(":memory:")
    before = stamp(datetime.now(UTC) - timedelta(seconds=1))
    (from_sql,) = db.execute(f"SELECT {SQL_NOW}").fetchone()
    assert SHAPE.fullmatch(from_sql)
    assert before < from_sql < stamp(datetime.now(UTC) + timedelta(seconds=1))


def test_every_time_the_store_keeps_has_that_shape(tmp_path: Path) -> None:
    db = connect(tmp_path / "council.db")
    conversation = conversations.create_conversation(db, "x")
    conversations.start_message(db, conversation, "q", "synthesize", {})
    record_engine_event(db, "demo-1", "spawned", "pid 1, port 2")
    times = [
        *db.execute("SELECT created_at, updated_at FROM conversations").fetchone(),
        *db.execute("SELECT created_at FROM messages").fetchone(),
        *db.execute("SELECT at FROM engine_events").fetchone(),
        *(row[0] for row in db.execute("SELECT applied FROM _migrations")),
    ]
    assert all(SHAPE.fullmatch(value) for value in times), times


def test_a_seats_engine_events_are_read_newest_last_and_pruned(tmp_path: Path) -> None:
    db = connect(tmp_path / "council.db")
    for n in range(KEEP_ENGINE_EVENTS + 5):
        record_engine_event(db, "loop", "crashed", f"exit {n}")
    record_engine_event(db, "calm", "healthy", "ready")
    kept = db.execute("SELECT count(*) FROM engine_events WHERE seat = 'loop'").fetchone()
    assert kept == (KEEP_ENGINE_EVENTS,)
    latest = engine_events(db, "loop", limit=3)
    assert [event["message"] for event in latest] == [
        f"exit {KEEP_ENGINE_EVENTS + n}" for n in (2, 3, 4)
    ]
    assert [event["kind"] for event in engine_events(db, "calm")] == ["healthy"]
    assert engine_events(db, "nobody") == []
