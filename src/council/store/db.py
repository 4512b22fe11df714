"""Opening the database on the stick, and migrating it.

WAL mode with `synchronous=FULL`: a stick can be pulled out at any moment, and a committed row
must survive that. Schema changes are named functions, applied in order and recorded in the
`_migrations` table (the shape of simonw/llm's migrations), so an older stick upgrades itself.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: list[Migration] = []


def migration(function: Migration) -> Migration:
    MIGRATIONS.append(function)
    return function


@migration
def m001_engine_events(db: sqlite3.Connection) -> None:
    db.execute(
        """
        CREATE TABLE engine_events (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
            seat TEXT NOT NULL,
            kind TEXT NOT NULL,
            message TEXT NOT NULL
        )
        """
    )


@migration
def m002_conversations(db: sqlite3.Connection) -> None:
    db.execute(
        """
        CREATE TABLE conversations (
            id TEXT PRIMARY KEY,
            title TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE messages (
            id TEXT PRIMARY KEY,
            conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            question TEXT NOT NULL,
            mode TEXT NOT NULL,
            options TEXT NOT NULL,
            status TEXT NOT NULL,
            answer TEXT,
            result TEXT NOT NULL DEFAULT '{}',
            error TEXT,
            created_at TEXT NOT NULL,
            finished_at TEXT,
            UNIQUE (conversation_id, position)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE outputs (
            id INTEGER PRIMARY KEY,
            message_id TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
            stage TEXT NOT NULL,
            layer INTEGER NOT NULL DEFAULT 0,
            seat TEXT NOT NULL,
            status TEXT NOT NULL,
            content TEXT NOT NULL,
            error TEXT,
            details TEXT NOT NULL DEFAULT '{}',
            prompt_tokens INTEGER NOT NULL DEFAULT 0,
            completion_tokens INTEGER NOT NULL DEFAULT 0,
            prompt_ms REAL NOT NULL DEFAULT 0,
            generation_ms REAL NOT NULL DEFAULT 0,
            wall_ms REAL NOT NULL DEFAULT 0,
            started_at TEXT NOT NULL,
            finished_at TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX outputs_by_message ON outputs (message_id)")
    db.execute("CREATE INDEX messages_by_conversation ON messages (conversation_id, position)")


def connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA foreign_keys=ON")
    migrate(db)
    return db


def migrate(db: sqlite3.Connection) -> list[str]:
    """Apply the migrations not yet recorded, each in its own transaction; return their names."""
    db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied TEXT)")
    done = {row[0] for row in db.execute("SELECT name FROM _migrations")}
    applied = []
    for function in MIGRATIONS:
        if function.__name__ in done:
            continue
        db.execute("BEGIN IMMEDIATE")
        try:
            function(db)
            db.execute(
                "INSERT INTO _migrations VALUES (?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
                (function.__name__,),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        applied.append(function.__name__)
    return applied


def record_engine_event(db: sqlite3.Connection, seat: str, kind: str, message: str) -> None:
    db.execute(
        "INSERT INTO engine_events (seat, kind, message) VALUES (?, ?, ?)", (seat, kind, message)
    )


def engine_events(db: sqlite3.Connection, seat: str | None = None) -> list[dict[str, str]]:
    query = "SELECT at, seat, kind, message FROM engine_events"
    rows = (
        db.execute(query + " WHERE seat = ? ORDER BY id", (seat,))
        if seat
        else db.execute(query + " ORDER BY id")
    )
    return [dict(zip(("at", "seat", "kind", "message"), row, strict=True)) for row in rows]
