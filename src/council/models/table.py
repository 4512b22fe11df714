"""The human-readable `council models list`: one row per model, reasons for the invalid ones."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from council.models.catalog import ModelInfo
from council.units import human_count, human_size

# A GGUF without a chat template is a base model: as a seat it runs on past every turn.
BASE_MODEL = "base model: not for chat"
HEADERS = ("MODEL", "ARCH", "PARAMS", "QUANT", "CTX", "SIZE", "CHAT", "NOTES")


def render_models(models: Sequence[ModelInfo], models_dir: Path) -> str:
    if not models:
        return (
            f"no GGUF models in {models_dir} (copy .gguf files there, or run `council models demo`)"
        )
    rows = [HEADERS, *(_row(model) for model in models)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADERS) - 1)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True))
        + "  "
        + row[-1]
        for row in rows
    ]
    return "\n".join(line.rstrip() for line in lines)


def _row(model: ModelInfo) -> tuple[str, ...]:
    if not model.valid:
        return (
            model.path,
            "-",
            "-",
            "-",
            "-",
            human_size(model.size_bytes),
            "-",
            f"INVALID: {model.reason}",
        )
    notes = []
    if model.demo:
        notes.append("demo model (random weights: output is noise)")
    elif not model.has_chat_template:
        notes.append(BASE_MODEL)
    if model.shards:
        notes.append(f"{len(model.shards)} shards")
    if model.source:
        notes.append(f"from {model.source}")
    return (
        model.path,
        model.architecture or "?",
        human_count(model.parameters) if model.parameters is not None else "?",
        model.quantization or "?",
        str(model.context_length or "?"),
        human_size(model.size_bytes),
        "yes" if model.has_chat_template else "no",
        ", ".join(notes),
    )
