"""Evaluation runs in council.db: created with their items in one transaction, answers stored
one by one as they come (so an interrupted run resumes where it stopped), read back whole."""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
from dataclasses import dataclass
from typing import Any

from council.errors import BadRequest, NotFound
from council.evaluation.tasks import Item
from council.timestamps import stamp


@dataclass(frozen=True, slots=True)
class Answer:
    system: str
    item_no: int
    raw: str | None
    extracted: str | None
    score: float
    tokens: int
    wall_ms: int
    details: dict[str, Any]

    @property
    def correct(self) -> bool:
        return self.score >= 1.0


@dataclass(frozen=True, slots=True)
class Run:
    id: str
    created_at: str
    finished_at: str | None
    task: str
    spec: dict[str, Any]
    status: str  # running | done
    items: tuple[Item, ...]
    answers: tuple[Answer, ...]


def spec_key(spec: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:32]


def unfinished(db: sqlite3.Connection, spec: dict[str, Any]) -> str | None:
    row = db.execute(
        "SELECT id FROM eval_runs WHERE spec_key = ? AND status = 'running' "
        "ORDER BY created_at DESC LIMIT 1",
        (spec_key(spec),),
    ).fetchone()
    return str(row[0]) if row else None


def create_run(
    db: sqlite3.Connection, task: str, spec: dict[str, Any], items: tuple[Item, ...]
) -> str:
    run_id = secrets.token_hex(4)
    with db:
        db.execute("BEGIN")
        db.execute(
            "INSERT INTO eval_runs (id, created_at, task, spec, spec_key, status) "
            "VALUES (?, ?, ?, ?, ?, 'running')",
            (run_id, stamp(), task, json.dumps(spec), spec_key(spec)),
        )
        db.executemany(
            "INSERT INTO eval_items (run_id, item_no, question, gold, entry) "
            "VALUES (?, ?, ?, ?, ?)",
            [(run_id, i.number, i.question, i.gold, json.dumps(i.entry)) for i in items],
        )
    return run_id


def store_answer(db: sqlite3.Connection, run_id: str, answer: Answer) -> None:
    db.execute(
        "INSERT OR REPLACE INTO eval_answers (run_id, item_no, system, raw, extracted, score, "
        "correct, tokens, wall_ms, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            run_id,
            answer.item_no,
            answer.system,
            answer.raw,
            answer.extracted,
            answer.score,
            int(answer.correct),
            answer.tokens,
            answer.wall_ms,
            json.dumps(answer.details),
        ),
    )


def finish_run(db: sqlite3.Connection, run_id: str) -> None:
    db.execute(
        "UPDATE eval_runs SET status = 'done', finished_at = ? WHERE id = ?", (stamp(), run_id)
    )


def resolve_run(db: sqlite3.Connection, prefix: str) -> str:
    prefix = prefix.strip()
    if len(prefix) < 4:
        raise BadRequest("give at least 4 characters of the run's id")
    rows = db.execute(
        "SELECT id FROM eval_runs WHERE id LIKE ? ESCAPE '\\'", (_like(prefix) + "%",)
    ).fetchall()
    if not rows:
        raise NotFound(f"no evaluation run {prefix!r} (see `council eval list`)")
    if len(rows) > 1:
        raise BadRequest(f"{prefix!r} could be {', '.join(r[0] for r in rows)}")
    return str(rows[0][0])


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def load_run(db: sqlite3.Connection, run_id: str) -> Run:
    row = db.execute(
        "SELECT id, created_at, finished_at, task, spec, status FROM eval_runs WHERE id = ?",
        (run_id,),
    ).fetchone()
    if row is None:
        raise NotFound(f"no evaluation run {run_id!r}")
    items = tuple(
        Item(no, question, gold, json.loads(entry))
        for no, question, gold, entry in db.execute(
            "SELECT item_no, question, gold, entry FROM eval_items WHERE run_id = ? "
            "ORDER BY item_no",
            (run_id,),
        )
    )
    answers = tuple(
        Answer(system, no, raw, extracted, score, tokens, wall_ms, json.loads(details))
        for no, system, raw, extracted, score, tokens, wall_ms, details in db.execute(
            "SELECT item_no, system, raw, extracted, score, tokens, wall_ms, details "
            "FROM eval_answers WHERE run_id = ? ORDER BY rowid",
            (run_id,),
        )
    )
    return Run(row[0], row[1], row[2], row[3], json.loads(row[4]), row[5], items, answers)


def list_runs(db: sqlite3.Connection) -> list[dict[str, Any]]:
    rows = db.execute(
        "SELECT r.id, r.created_at, r.finished_at, r.task, r.status, r.spec, "
        "(SELECT COUNT(*) FROM eval_items i WHERE i.run_id = r.id), "
        "(SELECT COUNT(*) FROM eval_answers a WHERE a.run_id = r.id) "
        "FROM eval_runs r ORDER BY r.created_at DESC"
    ).fetchall()
    return [
        {
            "id": run_id,
            "created_at": created,
            "finished_at": finished,
            "task": task,
            "status": status,
            "systems": json.loads(spec).get("systems", []),
            "items": items,
            "answers": answers,
        }
        for run_id, created, finished, task, status, spec, items, answers in rows
    ]
