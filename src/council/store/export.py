"""A stored conversation as a file a person keeps: JSON to re-import, Markdown to read."""

from __future__ import annotations

from typing import Any

FORMAT = "council-conversation"
VERSION = 1


def to_json_document(conversation: dict[str, Any]) -> dict[str, Any]:
    return {"format": FORMAT, "version": VERSION, **conversation}


def from_json_document(document: Any) -> dict[str, Any]:
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ValueError("not a council conversation export (no 'format': 'council-conversation')")
    if document.get("version") != VERSION:
        raise ValueError(f"unsupported export version {document.get('version')!r}")
    return document


def to_markdown(conversation: dict[str, Any]) -> str:
    lines = [
        f"# {conversation['title']}",
        "",
        f"_council conversation {conversation['id']}, started {conversation['created_at']}_",
        "",
    ]
    for message in conversation["messages"]:
        lines += _message(message)
    return "\n".join(lines).rstrip() + "\n"


def _message(message: dict[str, Any]) -> list[str]:
    options, result = message["options"], message["result"]
    lines = [f"## {message['position']}. {_one_line(message['question'])}", ""]
    lines += [f"> {line}" if line else ">" for line in message["question"].splitlines()] + [""]
    lines += [
        f"Mode: **{message['mode']}** · seats: {', '.join(options.get('seats', []))} · "
        f"chair: {result.get('chair') or options.get('chair') or '-'} · "
        f"status: {message['status']}",
        "",
    ]
    for stage, heading in (("answer", "Answers"), ("review", "Reviews")):
        outputs = [o for o in message["outputs"] if o["stage"] == stage]
        if outputs:
            lines += [f"### {heading}", ""]
            for output in outputs:
                lines += _output(output)
    if standings := result.get("standings"):
        lines += [
            "### Aggregate ranking",
            "",
            "| Seat | Mean rank | Borda | Rankings | Controversy |",
            "|---|---|---|---|---|",
        ]
        for s in standings:
            lines.append(
                f"| {s['seat']} | {_num(s['mean_rank'])} | {_num(s['borda'])} | "
                f"{s['votes']} | {_num(s['controversy'])} |"
            )
        lines.append("")
    if tally := result.get("tally"):
        counts = ", ".join(f"{answer}: {n}" for answer, n in tally["counts"].items())
        lines += [
            "### Vote",
            "",
            f"Tally: {counts or 'no readable answers'}; decided by {result.get('decided_by', '-')}",
            "",
        ]
    for note in result.get("notes", []):
        lines += [f"_Note: {note}_", ""]
    if message["answer"] is not None:
        lines += ["### Final answer", "", message["answer"], ""]
    if message["error"]:
        lines += [f"_{message['status']}: {message['error']}_", ""]
    return lines


def _output(output: dict[str, Any]) -> list[str]:
    seconds = output["wall_ms"] / 1000
    header = f"#### {output['seat']}"
    if output["layer"]:
        header += f" (layer {output['layer']})"
    header += f" — {output['completion_tokens']} tokens, {seconds:.1f} s"
    if output["status"] != "done":
        header += f" — {output['status']}: {output['error']}"
    lines = [header, "", output["content"] or "_(nothing)_", ""]
    details = output["details"]
    if output["stage"] == "review":
        if details.get("ranking"):
            order = ", ".join(f"{n}. {seat}" for n, seat in enumerate(details["ranking"], 1))
            by = " (asked for under a grammar)" if details.get("ranking_by") == "grammar" else ""
            lines += [f"Parsed ranking{by}: {order}", ""]
        else:
            lines += [f"Ranking unparsed: {details.get('problem') or 'no ranking'}", ""]
    return lines


def _one_line(text: str, limit: int = 80) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
