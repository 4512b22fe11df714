"""Which GGUF of a repository to pull: split sets grouped, quantizations named, fit marked.

A repository usually holds one model in many quantizations (`Model-Q4_K_M.gguf`,
`Model-Q8_0.gguf`, …), some cut into split sets (`Model-Q8_0-00001-of-00002.gguf`), often with
a vision projector (`mmproj-…gguf`) that is no model of its own. Each candidate is a whole set
with its summed size; its memory is the estimate council makes before starting a seat
(`engine/memory.py`: weights, the KV cache at the default context, the runtime allowance), with
the KV cost per token read from the model's header (all quantizations of one model share it).

Marks: "fits" within 80% of the memory available (room left for the browser and the rest of
the laptop), "tight" within all of it, "too big" beyond. With no choice given, the largest
candidate that fits is pulled; nothing that is too big is pulled without `--force`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from council.engine.memory import estimate
from council.errors import BadRequest, NotFound
from council.models.catalog import SPLIT_NAME
from council.pull.hf import RemoteFile, Repo
from council.settings import CONTEXT_SIZE
from council.units import human_size

HEADROOM = 0.8
FITS, TIGHT, TOO_BIG = "fits", "tight", "too big"

# Quantization names as llama.cpp's quantize writes them into file names (Q4_K_M, IQ3_XS, Q8_0,
# F16, BF16, TQ1_0, MXFP4…), between separators.
QUANT = re.compile(
    r"(?:^|(?<=[-_.]))(?P<quant>I?Q[1-8](?:_[0-9A-Z]{1,4}){0,3}|B?F16|F32|TQ[12]_0|MXFP4(?:_MOE)?)"
    r"(?=[-_.]|$)",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Candidate:
    """One pullable model: a GGUF file, or a split set in shard order."""

    files: tuple[RemoteFile, ...]
    quant: str | None
    companions: tuple[str, ...] = ()  # vision projectors beside it

    @property
    def name(self) -> str:
        return self.files[0].path

    @property
    def size(self) -> int:
        return sum(item.size for item in self.files)

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "quant": self.quant,
            "size": self.size,
            "files": [item.to_dict() for item in self.files],
            "companions": list(self.companions),
        }


@dataclass(frozen=True, slots=True)
class Fit:
    candidate: Candidate
    memory: int | None  # bytes, the seat estimate; None when the header could not be read
    mark: str
    chosen: bool = False

    def to_dict(self) -> dict[str, object]:
        return {**self.candidate.to_dict(), "memory": self.memory, "fit": self.mark}


@dataclass(frozen=True, slots=True)
class Plan:
    repo: Repo
    fits: tuple[Fit, ...]
    available: int
    kv_bytes_per_token: int | None
    chosen: Fit | None = None
    notes: tuple[str, ...] = field(default=())
    budget: str = "memory available here"

    def to_dict(self) -> dict[str, object]:
        return {
            "repo": self.repo.repo,
            "revision": self.repo.revision,
            "commit": self.repo.commit,
            "available": self.available,
            "candidates": [fit.to_dict() for fit in self.fits],
            "chosen": self.chosen.candidate.name if self.chosen else None,
            "notes": list(self.notes),
        }


def quant_of(path: str) -> str | None:
    stem = PurePosixPath(path).name
    match = SPLIT_NAME.match(stem)
    stem = match["prefix"] if match else stem.removesuffix(".gguf").removesuffix(".GGUF")
    found = [m["quant"] for m in QUANT.finditer(stem)]
    return found[-1].upper() if found else None


def is_projector(path: str) -> bool:
    return "mmproj" in PurePosixPath(path).name.lower()


# A file name the stick can hold everywhere and the catalog lists (no dot first, no odd bytes);
# the repository's folders are not kept: a pull lands in models/<repo-name>/ by name alone.
SAFE_NAME = re.compile(r"^[A-Za-z0-9][\w.+-]{0,200}\.gguf$", re.IGNORECASE)


def candidates(repo: Repo) -> list[Candidate]:
    """The repository's models, each split set once, smallest first; projectors attached."""
    ggufs = [
        item
        for item in repo.files
        if SAFE_NAME.match(PurePosixPath(item.path).name)
        and ".." not in PurePosixPath(item.path).parts
    ]
    projectors = tuple(item.path for item in ggufs if is_projector(item.path))
    sets: dict[str, list[tuple[int, RemoteFile]]] = {}
    singles: list[RemoteFile] = []
    for item in ggufs:
        if is_projector(item.path):
            continue
        match = SPLIT_NAME.match(PurePosixPath(item.path).name)
        if match:
            key = str(PurePosixPath(item.path).with_name(f"{match['prefix']}-of-{match['count']}"))
            sets.setdefault(key, []).append((int(match["no"]), item))
        else:
            singles.append(item)
    found = [Candidate((item,), quant_of(item.path), projectors) for item in singles]
    for shards in sets.values():
        ordered = tuple(item for _, item in sorted(shards, key=lambda pair: pair[0]))
        count = int(SPLIT_NAME.match(PurePosixPath(ordered[0].path).name)["count"])  # type: ignore[index]
        if len(ordered) == count and sorted(no for no, _ in shards) == list(range(1, count + 1)):
            found.append(Candidate(ordered, quant_of(ordered[0].path), projectors))
    return sorted(found, key=lambda c: (c.size, c.name))


def mark(memory: int | None, size: int, available: int) -> str:
    need = memory if memory is not None else size
    if need <= available * HEADROOM:
        return FITS
    return TIGHT if need <= available else TOO_BIG


def seat_memory(size: int, kv_bytes_per_token: int | None) -> int:
    return estimate("pull", size, kv_bytes_per_token, CONTEXT_SIZE).total


def plan(
    repo: Repo,
    available: int,
    kv_bytes_per_token: int | None,
    *,
    quant: str | None = None,
    file: str | None = None,
    budget: str = "memory available here",
) -> Plan:
    """Mark every candidate and choose one: `file` exactly, else `quant`, else the largest that
    fits. Raises NotFound when nothing matches; a choice that is too big is left to the caller."""
    found = candidates(repo)
    if not found:
        raise NotFound(f"{repo.repo} has no GGUF files at {repo.revision}")
    fits = [
        Fit(c, memory, mark(memory, c.size, available))
        for c in found
        for memory in [seat_memory(c.size, kv_bytes_per_token)]
    ]
    chosen = _choose(fits, repo, quant, file)
    notes = []
    if kv_bytes_per_token is None:
        notes.append("the KV cache is not counted: the model's header could not be read")
    fits = [Fit(f.candidate, f.memory, f.mark, f is chosen) for f in fits]
    picked = next((f for f in fits if f.chosen), None)
    return Plan(repo, tuple(fits), available, kv_bytes_per_token, picked, tuple(notes), budget)


def _choose(fits: Sequence[Fit], repo: Repo, quant: str | None, file: str | None) -> Fit | None:
    if file is not None:
        for fit in fits:
            if file in (item.path for item in fit.candidate.files):
                return fit
        projector = next((p for p in fits[0].candidate.companions if p == file), None)
        if projector:
            raise BadRequest(f"{file} is a vision projector, not a model council can seat")
        raise NotFound(f"{repo.repo} has no GGUF file {file!r} (the table lists what it has)")
    if quant is not None:
        wanted = quant.upper()
        matching = [fit for fit in fits if fit.candidate.quant == wanted]
        if not matching:
            have = sorted({f.candidate.quant for f in fits if f.candidate.quant})
            raise NotFound(
                f"{repo.repo} has no {wanted} file; it has "
                f"{', '.join(have) or 'no named quantizations'}"
            )
        fitting = [fit for fit in matching if fit.mark == FITS]
        return fitting[-1] if fitting else matching[0]
    fitting = [fit for fit in fits if fit.mark == FITS]
    return fitting[-1] if fitting else None


HEADERS = ("FILE", "QUANT", "SIZE", "MEMORY", "FIT")


def render_plan(plan: Plan) -> str:
    """The table a pull chose from, the chosen row marked with `>`."""
    rows = [
        (
            ("> " if fit.chosen else "  ")
            + fit.candidate.name
            + (
                f" (+{len(fit.candidate.files) - 1} shards)" if len(fit.candidate.files) > 1 else ""
            ),
            fit.candidate.quant or "?",
            human_size(fit.candidate.size),
            human_size(fit.memory) if fit.memory is not None else "?",
            fit.mark,
        )
        for fit in plan.fits
    ]
    table = [("  " + HEADERS[0], *HEADERS[1:]), *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(HEADERS))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in table
    ]
    lines.append(
        f"{plan.budget}: {human_size(plan.available)} (fits = within {HEADROOM:.0%} of it)"
    )
    companions = plan.fits[0].candidate.companions if plan.fits else ()
    if companions:
        lines.append(
            f"vision projectors (not pulled: council seats are text-only): {', '.join(companions)}"
        )
    lines += [f"note: {note}" for note in plan.notes]
    return "\n".join(lines)
