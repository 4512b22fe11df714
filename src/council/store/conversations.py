"""Conversations on the stick: questions, every stage output per seat, and the final answers.

Each write that a person would miss is its own committed transaction: the message row when a
round starts, each seat's output as soon as it is finished, the final answer at the end. A pulled
stick therefore loses at most what was still being generated, and the next hub marks such a
message `interrupted` rather than leaving it "running" forever.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

from council.errors import NotFound
from council.store.db import resolve_prefix
from council.timestamps import stamp
from council.types import MessageStatus, StageOutput

TITLE_LENGTH = 80


def new_id() -> str:
    return secrets.token_hex(8)


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One atomic, durable write: all of it is on the stick, or none of it."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def title_from(question: str) -> str:
    line = " ".join(question.split())
    return line if len(line) <= TITLE_LENGTH else line[: TITLE_LENGTH - 1].rstrip() + "…"


def create_conversation(db: sqlite3.Connection, title: str, device_id: str | None = None) -> str:
    """A new conversation, the owner's or (`device_id`) a paired device's."""
    conversation_id, at = new_id(), stamp()
    with transaction(db):
        db.execute(
            "INSERT INTO conversations (id, title, created_at, updated_at, device_id)"
            " VALUES (?, ?, ?, ?, ?)",
            (conversation_id, title_from(title), at, at, device_id),
        )
    return conversation_id


def resolve_id(db: sqlite3.Connection, prefix: str) -> str:
    """A full conversation id from a unique prefix."""
    return resolve_prefix(db, "conversations", prefix, "conversation")


def list_conversations(
    db: sqlite3.Connection,
    search: str | None = None,
    limit: int = 200,
    *,
    device_id: str | None = None,
) -> list[dict[str, Any]]:
    """Newest first; with `device_id`, only that device's (the owner, None, sees every one)."""
    query = """
        SELECT c.id, c.title, c.created_at, c.updated_at, COUNT(m.id)
        FROM conversations c LEFT JOIN messages m ON m.conversation_id = c.id
        WHERE 1
    """
    params: list[Any] = []
    if device_id is not None:
        query += " AND c.device_id = ?"
        params.append(device_id)
    if search:
        pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query += """
        AND (c.title LIKE ? ESCAPE '\\' OR c.id IN (
            SELECT conversation_id FROM messages
            WHERE question LIKE ? ESCAPE '\\' OR answer LIKE ? ESCAPE '\\'))
        """
        params += [pattern, pattern, pattern]
    query += " GROUP BY c.id ORDER BY c.updated_at DESC LIMIT ?"
    params.append(limit)
    keys = ("id", "title", "created_at", "updated_at", "messages")
    return [dict(zip(keys, row, strict=True)) for row in db.execute(query, params)]


def require_conversation(
    db: sqlite3.Connection, conversation_id: str, device_id: str | None = None
) -> None:
    """NotFound unless the conversation exists and, with `device_id`, is that device's: another's
    conversation is "no conversation" to a device, so it cannot even learn which ids exist."""
    if not is_visible(db, conversation_id, device_id):
        raise NotFound(f"no conversation {conversation_id!r}")


def is_visible(db: sqlite3.Connection, conversation_id: str, device_id: str | None) -> bool:
    """Whether the conversation exists for the owner (None) or is the device's own."""
    row = db.execute(
        "SELECT device_id FROM conversations WHERE id = ?", (conversation_id,)
    ).fetchone()
    return row is not None and (device_id is None or row[0] == device_id)


def rename_conversation(db: sqlite3.Connection, conversation_id: str, title: str) -> None:
    with transaction(db):
        updated = db.execute(
            "UPDATE conversations SET title = ?, updated_at = ? WHERE id = ?",
            (title_from(title), stamp(), conversation_id),
        ).rowcount
    if not updated:
        raise NotFound(f"no conversation {conversation_id!r}")


def delete_conversation(db: sqlite3.Connection, conversation_id: str) -> None:
    with transaction(db):
        deleted = db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,)).rowcount
    if not deleted:
        raise NotFound(f"no conversation {conversation_id!r}")


def start_message(
    db: sqlite3.Connection,
    conversation_id: str,
    question: str,
    mode: str,
    options: dict[str, Any],
) -> str:
    message_id, at = new_id(), stamp()
    with transaction(db):
        require_conversation(db, conversation_id)
        (position,) = db.execute(
            "SELECT COALESCE(MAX(position), 0) + 1 FROM messages WHERE conversation_id = ?",
            (conversation_id,),
        ).fetchone()
        db.execute(
            """INSERT INTO messages (id, conversation_id, position, question, mode, options,
                                     status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
            (
                message_id,
                conversation_id,
                position,
                question,
                mode,
                json.dumps(options),
                MessageStatus.RUNNING.value,
                at,
            ),
        )
        # An untitled conversation is named after its first question.
        db.execute(
            """UPDATE conversations SET updated_at = ?,
                   title = CASE WHEN title = '' THEN ? ELSE title END WHERE id = ?""",
            (at, title_from(question), conversation_id),
        )
    return message_id


def seed_history(
    db: sqlite3.Connection, conversation_id: str, pairs: Sequence[tuple[str, str]]
) -> None:
    """Earlier turns a client sends along (the /v1 surface), stored as answered messages so
    the round sees them as history; marked as coming from the client, not the council."""
    if not pairs:
        return
    at = stamp()
    with transaction(db):
        for position, (question, answer) in enumerate(pairs, 1):
            db.execute(
                """INSERT INTO messages (id, conversation_id, position, question, mode, options,
                       status, answer, result, created_at, finished_at)
                   VALUES (?, ?, ?, ?, 'history', '{}', ?, ?, ?, ?, ?)""",
                (
                    new_id(),
                    conversation_id,
                    position,
                    question,
                    MessageStatus.DONE.value,
                    answer,
                    json.dumps({"source": "client"}),
                    at,
                    at,
                ),
            )


def add_output(db: sqlite3.Connection, message_id: str, output: StageOutput) -> None:
    usage = output.usage
    with transaction(db):
        db.execute(
            """INSERT INTO outputs (message_id, stage, layer, seat, status, content, error,
                   details, prompt_tokens, completion_tokens, prompt_ms, generation_ms, wall_ms,
                   started_at, finished_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (
                message_id,
                output.stage.value,
                output.layer,
                output.seat,
                output.status.value,
                output.content,
                output.error,
                json.dumps(output.details),
                usage.prompt_tokens,
                usage.completion_tokens,
                usage.prompt_ms,
                usage.generation_ms,
                usage.wall_ms,
                output.started_at or stamp(),
                output.finished_at or stamp(),
            ),
        )


def finish_message(
    db: sqlite3.Connection,
    message_id: str,
    status: MessageStatus,
    *,
    answer: str | None,
    result: dict[str, Any],
    error: str | None = None,
) -> None:
    with transaction(db):
        db.execute(
            """UPDATE messages SET status = ?, answer = ?, result = ?, error = ?, finished_at = ?
               WHERE id = ?""",
            (status.value, answer, json.dumps(result), error, stamp(), message_id),
        )


def mark_interrupted(db: sqlite3.Connection) -> int:
    """Messages still 'running' belong to a hub that is gone: say so, once, at start-up."""
    with transaction(db):
        return db.execute(
            "UPDATE messages SET status = ?, error = ?, finished_at = ? WHERE status = ?",
            (
                MessageStatus.INTERRUPTED.value,
                "the hub stopped before this answer was finished",
                stamp(),
                MessageStatus.RUNNING.value,
            ),
        ).rowcount


def history(db: sqlite3.Connection, conversation_id: str) -> list[tuple[str, str]]:
    """Earlier questions with their final answers, oldest first, for follow-up questions."""
    rows = db.execute(
        """SELECT question, answer FROM messages
           WHERE conversation_id = ? AND status = ? AND answer IS NOT NULL ORDER BY position""",
        (conversation_id, MessageStatus.DONE.value),
    )
    return [(str(question), str(answer)) for question, answer in rows]


def last_speeds(db: sqlite3.Connection) -> dict[str, float]:
    """Each seat's generation speed (tokens/s) in its most recent finished output."""
    rows = db.execute(
        """SELECT seat, completion_tokens, generation_ms FROM outputs
           WHERE id IN (SELECT MAX(id) FROM outputs
                        WHERE status = 'done' AND generation_ms > 0 GROUP BY seat)"""
    )
    return {seat: tokens / (ms / 1000) for seat, tokens, ms in rows}


def get_conversation(db: sqlite3.Connection, conversation_id: str) -> dict[str, Any]:
    row = db.execute(
        "SELECT id, title, created_at, updated_at FROM conversations WHERE id = ?",
        (conversation_id,),
    ).fetchone()
    if row is None:
        raise NotFound(f"no conversation {conversation_id!r}")
    conversation = dict(zip(("id", "title", "created_at", "updated_at"), row, strict=True))
    messages = []
    for message in db.execute(
        """SELECT id, position, question, mode, options, status, answer, result, error,
                  created_at, finished_at FROM messages WHERE conversation_id = ?
           ORDER BY position""",
        (conversation_id,),
    ).fetchall():
        keys = (
            "id",
            "position",
            "question",
            "mode",
            "options",
            "status",
            "answer",
            "result",
            "error",
            "created_at",
            "finished_at",
        )
        item = dict(zip(keys, message, strict=True))
        item["options"] = json.loads(item["options"])
        item["result"] = json.loads(item["result"])
        item["outputs"] = _outputs(db, item["id"])
        messages.append(item)
    conversation["messages"] = messages
    return conversation


def _outputs(db: sqlite3.Connection, message_id: str) -> list[dict[str, Any]]:
    keys = (
        "stage",
        "layer",
        "seat",
        "status",
        "content",
        "error",
        "details",
        "prompt_tokens",
        "completion_tokens",
        "prompt_ms",
        "generation_ms",
        "wall_ms",
        "started_at",
        "finished_at",
    )
    rows = db.execute(
        f"SELECT {', '.join(keys)} FROM outputs WHERE message_id = ? ORDER BY id",  # noqa: S608
        (message_id,),
    ).fetchall()
    outputs = []
    for row in rows:
        item = dict(zip(keys, row, strict=True))
        item["details"] = json.loads(item["details"])
        outputs.append(item)
    return outputs


def import_conversation(db: sqlite3.Connection, data: dict[str, Any]) -> str:
    """Store an exported conversation (JSON export) under a new id; all of it or nothing."""
    try:
        conversation_id = new_id()
        with transaction(db):
            db.execute(
                "INSERT INTO conversations (id, title, created_at, updated_at) VALUES (?,?,?,?)",
                (
                    conversation_id,
                    str(data["title"]),
                    str(data["created_at"]),
                    str(data["updated_at"]),
                ),
            )
            for message in data["messages"]:
                message_id = new_id()
                db.execute(
                    """INSERT INTO messages (id, conversation_id, position, question, mode,
                           options, status, answer, result, error, created_at, finished_at)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    (
                        message_id,
                        conversation_id,
                        int(message["position"]),
                        str(message["question"]),
                        str(message["mode"]),
                        json.dumps(message["options"]),
                        str(message["status"]),
                        message["answer"],
                        json.dumps(message["result"]),
                        message["error"],
                        message["created_at"],
                        message["finished_at"],
                    ),
                )
                for output in message["outputs"]:
                    _insert_output_row(db, message_id, output)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a council conversation export: missing or bad {exc}") from None
    return conversation_id


def _insert_output_row(db: sqlite3.Connection, message_id: str, output: dict[str, Any]) -> None:
    db.execute(
        """INSERT INTO outputs (message_id, stage, layer, seat, status, content, error, details,
               prompt_tokens, completion_tokens, prompt_ms, generation_ms, wall_ms,
               started_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        (
            message_id,
            str(output["stage"]),
            int(output["layer"]),
            str(output["seat"]),
            str(output["status"]),
            str(output["content"]),
            output["error"],
            json.dumps(output["details"]),
            int(output["prompt_tokens"]),
            int(output["completion_tokens"]),
            float(output["prompt_ms"]),
            float(output["generation_ms"]),
            float(output["wall_ms"]),
            str(output["started_at"]),
            str(output["finished_at"]),
        ),
    )


def output_dict(output: StageOutput) -> dict[str, Any]:
    """The same shape `get_conversation` returns for an output, for events and exports."""
    item = asdict(output)
    usage = item.pop("usage")
    item.update(usage)
    item["stage"] = output.stage.value
    item["status"] = output.status.value
    return item
