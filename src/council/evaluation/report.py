"""A run's figures, as `--json` prints them (every number recomputable from its `items`) and as
the table `council eval` and `council eval show` print."""

from __future__ import annotations

import zlib
from typing import Any

from council.evaluation.records import Answer, Run
from council.evaluation.stats import accuracy, bootstrap_ci, position_bias, self_preference


def results(run: Run) -> dict[str, Any]:
    systems: list[str] = list(run.spec.get("systems", []))
    by_system: dict[str, list[Answer]] = {system: [] for system in systems}
    for answer in run.answers:
        by_system.setdefault(answer.system, []).append(answer)
    seed = zlib.crc32(run.id.encode())  # the same interval each time the run is shown
    rows = []
    for system, answers in by_system.items():
        correct = [a.correct for a in answers]
        interval = bootstrap_ci(correct, seed=seed)
        rows.append(
            {
                "system": system,
                "n": len(answers),
                "correct": sum(correct),
                "accuracy": accuracy(correct),
                "ci95": list(interval) if interval else None,
                "tokens": sum(a.tokens for a in answers),
                "wall_s": round(sum(a.wall_ms for a in answers) / 1000, 3),
            }
        )
    reviews = [
        review for a in by_system.get("synthesize", []) for review in a.details.get("reviews", [])
    ]
    bias: dict[str, Any] = {"position": position_bias(reviews).to_dict()}
    if run.spec.get("exclude_self") is False:
        bias["self_preference"] = self_preference(reviews).to_dict()
    answers_of: dict[int, dict[str, Any]] = {item.number: {} for item in run.items}
    for answer in run.answers:
        answers_of.setdefault(answer.item_no, {})[answer.system] = {
            "raw": answer.raw,
            "extracted": answer.extracted,
            "correct": answer.correct,
            "score": answer.score,
            "tokens": answer.tokens,
            "wall_ms": answer.wall_ms,
            "error": answer.details.get("error"),
        }
    return {
        "run": run.id,
        "task": run.task,
        "status": run.status,
        "created_at": run.created_at,
        "finished_at": run.finished_at,
        "spec": run.spec,
        "results": rows,
        "bias": bias,
        "items": [
            {
                "id": item.number,
                "question": item.question,
                "gold": item.gold,
                "answers": answers_of.get(item.number, {}),
            }
            for item in run.items
        ],
    }


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def render(report: dict[str, Any]) -> str:
    head = (
        f"run {report['run']} · {report['task']} · {len(report['items'])} items · "
        f"{report['status']}"
    )
    table = [("SYSTEM", "N", "CORRECT", "ACCURACY", "95% CI", "TOKENS", "WALL")]
    for row in report["results"]:
        low_high = row["ci95"]
        table.append(
            (
                row["system"],
                str(row["n"]),
                str(row["correct"]),
                percent(row["accuracy"]),
                f"{percent(low_high[0])} to {percent(low_high[1])}" if low_high else "-",
                f"{row['tokens']:,}",
                f"{row['wall_s']:.1f} s",
            )
        )
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    lines = [head, ""]
    lines += [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in table
    ]
    position = report["bias"]["position"]
    if position["n"]:
        lines.append(
            f"\nposition bias (synthesize): {percent(position['rate'])} of {position['n']} "
            f"rankings put the first-shown answer first (chance {percent(position['chance'])})"
        )
    own = report["bias"].get("self_preference")
    if own and own["n"]:
        lines.append(
            f"self-preference: {percent(own['rate'])} of {own['n']} rankings put the "
            f"reviewer's own answer first (chance {percent(own['chance'])})"
        )
    return "\n".join(lines)


def render_runs(runs: list[dict[str, Any]]) -> str:
    if not runs:
        return "no evaluation runs yet (run `council eval --task basic_arithmetic --size 10`)"
    table = [("RUN", "CREATED", "TASK", "ITEMS", "ANSWERS", "STATUS")]
    table += [
        (
            r["id"],
            r["created_at"][:16].replace("T", " "),
            r["task"],
            str(r["items"]),
            str(r["answers"]),
            r["status"],
        )
        for r in runs
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in table
    )
