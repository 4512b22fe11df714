"""Opening the database on the stick, and migrating it.

WAL mode with `synchronous=FULL`: a stick can be pulled out at any moment, and a committed row
must survive that. Schema changes are named functions, applied in order and recorded in the
`_migrations` table (the shape of simonw/llm's migrations), so an older stick upgrades itself.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

from council.errors import BadRequest, NotFound, StickFull, StickReadOnly, StoreError
from council.timestamps import SQL_NOW, stamp

Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: list[Migration] = []


def migration(function: Migration) -> Migration:
    MIGRATIONS.append(function)
    return function


@migration
def m001_engine_events(db: sqlite3.Connection) -> None:
    db.execute(
        f"""
        CREATE TABLE engine_events (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL DEFAULT ({SQL_NOW}),
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


@migration
def m003_devices(db: sqlite3.Connection) -> None:
    """Paired phones, the one-time codes that pair them, and an audit trail (hashes only)."""
    db.execute(
        """
        CREATE TABLE devices (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            token_hash TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL,
            last_seen_at TEXT,
            last_address TEXT,
            revoked_at TEXT
        )
        """
    )
    db.execute(
        """
        CREATE TABLE pairing_codes (
            code_hash TEXT PRIMARY KEY,
            name TEXT,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            used_at TEXT,
            needs_confirmation INTEGER NOT NULL DEFAULT 0,
            confirmed_at TEXT,
            comparison TEXT NOT NULL,
            claimed_at TEXT,
            claimed_name TEXT,
            claimed_address TEXT,
            device_id TEXT REFERENCES devices(id) ON DELETE SET NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            event TEXT NOT NULL,
            device_id TEXT,
            address TEXT,
            detail TEXT NOT NULL DEFAULT ''
        )
        """
    )


@migration
def m004_model_digests(db: sqlite3.Connection) -> None:
    """SHA-256 of the model files, so a restart hashes nothing (council.models.digests)."""
    db.execute(
        """
        CREATE TABLE model_digests (
            path TEXT PRIMARY KEY,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            hashed_at TEXT NOT NULL
        )
        """
    )


@migration
def m005_conversation_devices(db: sqlite3.Connection) -> None:
    """Which paired device started a conversation (NULL: the owner): a device sees only its own."""
    db.execute("ALTER TABLE conversations ADD COLUMN device_id TEXT")
    db.execute("CREATE INDEX conversations_by_device ON conversations (device_id)")


@migration
def m006_evaluations(db: sqlite3.Connection) -> None:
    """`council eval`: each run, its items (question and gold answer) and every system's
    answer to each (raw, extracted, scored), so a run is shown, exported and resumed later."""
    db.execute(
        """
        CREATE TABLE eval_runs (
            id TEXT PRIMARY KEY,
            created_at TEXT NOT NULL,
            finished_at TEXT,
            task TEXT NOT NULL,
            spec TEXT NOT NULL,
            spec_key TEXT NOT NULL,
            status TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX eval_runs_by_spec ON eval_runs (spec_key, status)")
    db.execute(
        """
        CREATE TABLE eval_items (
            run_id TEXT NOT NULL REFERENCES eval_runs (id) ON DELETE CASCADE,
            item_no INTEGER NOT NULL,
            question TEXT NOT NULL,
            gold TEXT NOT NULL,
            entry TEXT NOT NULL,
            PRIMARY KEY (run_id, item_no)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE eval_answers (
            run_id TEXT NOT NULL,
            item_no INTEGER NOT NULL,
            system TEXT NOT NULL,
            raw TEXT,
            extracted TEXT,
            score REAL NOT NULL,
            correct INTEGER NOT NULL,
            tokens INTEGER NOT NULL,
            wall_ms INTEGER NOT NULL,
            details TEXT NOT NULL,
            PRIMARY KEY (run_id, item_no, system),
            FOREIGN KEY (run_id, item_no) REFERENCES eval_items (run_id, item_no) ON DELETE CASCADE
        )
        """
    )


CACHE_KIB = 512


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating or upgrading) the store; a file SQLite cannot use is a `StoreError`
    that says what to do, and is never modified."""
    try:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA foreign_keys=ON")
        # 512 KiB of page cache per connection, not SQLite's 2 MB: the hub holds two open for
        # its life, the file is small and the OS caches it anyway (benchmarks/soak.py: the two
        # default caches were most of the hub's growth in its first minutes).
        db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        migrate(db)
    except sqlite3.Error as exc:
        raise store_error(exc, path) from None
    return db


def store_error(exc: sqlite3.Error, path: Path | None = None) -> StoreError:
    """An SQLite error in words a person can act on."""
    name = str(path) if path is not None else "council.db in the data folder"
    text = str(exc)
    if "not a database" in text or "malformed" in text:
        aside = f"mv {path} {path}.damaged" if path is not None else "move it aside"
        return StoreError(
            f"{name} is damaged ({text}): council leaves it as it is; move it aside "
            f"({aside}) and council starts an empty one"
        )
    # These two reach paired phones too (a refused write, /api/health): no path of the laptop's.
    if "full" in text or (_io_error(text) and _medium(path) == "full"):
        return StickFull("the stick is full: council cannot write council.db; free some space")
    if "readonly" in text or "read-only" in text or (_io_error(text) and _medium(path) == "ro"):
        return StickReadOnly("the stick is read-only: council cannot write council.db")
    if _io_error(text):
        return StickReadOnly(f"the stick failed a write ({text}): is it still plugged in?")
    return StoreError(f"cannot use {name}: {text}")


def _io_error(text: str) -> bool:
    return "disk I/O error" in text


def _medium(path: Path | None) -> str | None:
    """What an I/O error means, asked of the filesystem: SQLite says only "disk I/O error"
    when a write meets a medium remounted read-only or one with no room left."""
    if path is None:
        return None
    try:
        stats = os.statvfs(path.parent)
    except OSError:
        return None
    if stats.f_flag & os.ST_RDONLY:
        return "ro"
    if stats.f_bavail == 0:
        return "full"
    # ext4 turns itself read-only after an error on the medium without saying so in the mount
    # flags: a one-byte write tells.
    probe = path.with_name(".council-write-probe")
    try:
        descriptor = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(descriptor, b"x")
        finally:
            os.close(descriptor)
        probe.unlink()
    except OSError as exc:
        return {errno.EROFS: "ro", errno.ENOSPC: "full"}.get(exc.errno or 0)
    return None


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
            db.execute("INSERT INTO _migrations VALUES (?, ?)", (function.__name__, stamp()))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        applied.append(function.__name__)
    return applied


# The fewest characters of an id the CLI takes for it: fewer would often match several ids, or
# the wrong one once more are stored.
MIN_PREFIX = 4


def resolve_prefix(db: sqlite3.Connection, table: str, prefix: str, what: str) -> str:
    """A full hex id in `table` from itself or a unique prefix of at least `MIN_PREFIX`
    characters (the CLI accepts the first few characters of conversation and device ids); a
    shorter one is a `BadRequest` that says so."""
    if table not in {"conversations", "devices"}:
        raise ValueError(f"ids are not resolved in {table}")
    if len(prefix) < MIN_PREFIX:
        raise BadRequest(
            f"{prefix!r} is too short: give at least {MIN_PREFIX} characters of the id"
        )
    if not all(ch in "0123456789abcdef" for ch in prefix):
        raise NotFound(f"no {what} {prefix!r}")
    rows = db.execute(
        f"SELECT id FROM {table} WHERE id >= ? AND id < ? LIMIT 2",  # noqa: S608 - fixed names
        (prefix, prefix + "g"),
    ).fetchall()
    if len(rows) != 1:
        raise NotFound(f"no {what} {prefix!r}" if not rows else f"{prefix!r} matches several")
    return str(rows[0][0])


KEEP_ENGINE_EVENTS = 200  # per seat: an engine in a crash loop cannot fill the stick


def record_engine_event(db: sqlite3.Connection, seat: str, kind: str, message: str) -> None:
    """Note what a seat's engine did (spawned, healthy, crashed, failed, stopped); only the
    newest `KEEP_ENGINE_EVENTS` of each seat are kept."""
    db.execute(
        "INSERT INTO engine_events (seat, kind, message) VALUES (?, ?, ?)", (seat, kind, message)
    )
    db.execute(
        "DELETE FROM engine_events WHERE seat = ? AND id <= "
        "(SELECT id FROM engine_events WHERE seat = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
        (seat, seat, KEEP_ENGINE_EVENTS),
    )


def engine_events(db: sqlite3.Connection, seat: str, limit: int = 20) -> list[dict[str, str]]:
    """The newest `limit` events of a seat's engine, oldest first (`GET /api/seats/{name}`)."""
    rows = db.execute(
        "SELECT at, kind, message FROM engine_events WHERE seat = ? ORDER BY id DESC LIMIT ?",
        (seat, limit),
    ).fetchall()
    return [dict(zip(("at", "kind", "message"), row, strict=True)) for row in reversed(rows)]
