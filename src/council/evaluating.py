"""The library side of `council eval` (beside asking.py, which is `council ask`'s): build the
task, find or create the run, answer through the hub, report. The evaluation package itself
(tasks, runner, figures, records) never imports the client, so the hub's server can read runs.

The hub is the one on the stick, or one started for the evaluation (like `council ask`). Every
input is checked before a run is created, so a refused command stores nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from council.client import hub_for
from council.datafolder import resolve_data_folder
from council.errors import BadRequest
from council.evaluation import records
from council.evaluation.records import Answer
from council.evaluation.report import results
from council.evaluation.runner import Evaluation, Progress, check_names, plan_systems
from council.evaluation.tasks import Task, jsonl_task, reasoning_gym_task
from council.store import db as store_db

UNUSABLE = ("failed", "stopped", "disabled")


@dataclass(frozen=True, slots=True)
class EvalRequest:
    task: str | None = None  # a reasoning-gym task name
    file: Path | None = None  # or a JSONL of questions
    extractor: str = "exact"
    size: int = 20
    seed: int = 0
    systems: tuple[str, ...] = ()
    max_tokens: int = 256


def build_task(request: EvalRequest) -> tuple[Task, dict[str, Any]]:
    """The task and what identifies it in a run's spec (a file by its content)."""
    if (request.task is None) == (request.file is None):
        raise BadRequest("say what to ask: --task NAME (reasoning-gym) or --file QUESTIONS.jsonl")
    if request.file is not None:
        task = jsonl_task(request.file, request.extractor, request.size)
        digest = hashlib.sha256(request.file.read_bytes()).hexdigest()
        return task, {
            "file": str(request.file),
            "file_sha256": digest,
            "extractor": request.extractor,
            "size": len(task.items),
        }
    assert request.task is not None  # noqa: S101 - checked above
    task = reasoning_gym_task(request.task, request.size, request.seed)
    return task, {"task": request.task, "size": request.size, "seed": request.seed}


async def evaluate(
    data: Path | None,
    request: EvalRequest,
    llama_server: Path | None,
    *,
    progress: Progress,
    say: Any,
) -> dict[str, Any]:
    folder = resolve_data_folder(data)
    folder.prepare()
    if not 1 <= request.max_tokens <= 32768:
        raise BadRequest("--max-tokens must be 1 to 32768")
    task, identity = build_task(request)  # bad input stops here: nothing stored
    check_names(request.systems)
    async with hub_for(folder, llama_server) as hub:
        rows = await hub.seats()
        defaults = await hub.defaults()
        usable = [
            r["name"] for r in rows if r.get("state") not in UNUSABLE and r.get("enabled", True)
        ]
        council = [s for s in (defaults.get("seats") or usable) if s in usable] or usable
        plan = plan_systems(council, request.systems, request.max_tokens)
        spec = {
            **identity,
            "systems": list(plan.systems),
            "seats": list(plan.seats),
            "max_tokens": plan.max_tokens,
            "exclude_self": defaults.get("exclude_self", True),
        }
        db = store_db.connect(folder.database)
        try:
            run_id = records.unfinished(db, spec)
            if run_id is None:
                run_id = records.create_run(db, task.name, spec, task.items)
                stored: tuple[Answer, ...] = ()
            else:
                stored = records.load_run(db, run_id).answers
                say(f"resuming run {run_id}: {len(stored)} answers already stored")

            def store(answer: Answer) -> None:
                records.store_answer(db, run_id, answer)

            evaluation = Evaluation(
                hub, task=task, plan=plan, stored=stored, store=store, progress=progress
            )
            await evaluation.run()
            records.finish_run(db, run_id)
            return results(records.load_run(db, run_id))
        finally:
            db.close()


def show(data: Path | None, run: str) -> dict[str, Any]:
    with _store(data) as db:
        return results(records.load_run(db, records.resolve_run(db, run)))


def list_runs(data: Path | None) -> list[dict[str, Any]]:
    with _store(data) as db:
        return records.list_runs(db)


def _store(data: Path | None) -> Any:
    from council.asking import open_store

    return open_store(data)
