"""The model catalog: what GGUF files the models folder holds, and whether each can be loaded.

council lists models at startup, so a listing has to be quick and must survive whatever a
person drops into the folder: a half-finished download, a zip renamed to `.gguf`, a shard
without its siblings. Each file therefore becomes a `ModelInfo` with `valid` and a one-line
`reason`, never an exception. Only the header is read, by `council.models.gguf_header`
(which explains why it does not use `gguf.GGUFReader`).

Split models follow `llama-gguf-split`: `name-00001-of-00003.gguf` carries the metadata and
`split.count`; llama.cpp is given the first shard and finds the others by name. The catalog
lists the set once, under the first shard, with sizes and parameter counts summed over all
shards. Files and folders whose names start with a dot are skipped (hidden files, and the
`._name.gguf` AppleDouble litter macOS leaves on FAT/exFAT sticks).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, fields
from pathlib import Path

from council.models.gguf_constants import LlamaFileType
from council.models.gguf_header import (
    Header,
    Invalid,
    metadata_int,
    metadata_ints,
    metadata_str,
    read_header,
)
from council.models.sources import read_source

SPLIT_NAME = re.compile(r"^(?P<prefix>.+)-(?P<no>\d{5})-of-(?P<count>\d{5})\.gguf$")
SPLIT_NAME_FORMAT = "{prefix}-{no:05d}-of-{count:05d}.gguf"


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One entry of the catalog: a model file, or a split set listed under its first shard."""

    path: str
    size_bytes: int
    valid: bool
    reason: str | None
    architecture: str | None = None
    name: str | None = None
    parameters: int | None = None
    quantization: str | None = None
    context_length: int | None = None
    has_chat_template: bool = False
    demo: bool = False
    shards: tuple[str, ...] = ()
    block_count: int | None = None
    kv_bytes_per_token: int | None = None
    source: str | None = None  # `repo@commit` for a model `council models pull` fetched

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {f.name: getattr(self, f.name) for f in fields(self)}
        out["shards"] = list(self.shards)
        return out


def _quantization(metadata: dict[str, object], matrix_types: Counter[str]) -> str | None:
    file_type = metadata_int(metadata, "general.file_type")
    if file_type is not None and file_type != LlamaFileType.GUESSED:
        try:
            name = str(LlamaFileType(file_type).name)
            return name.removeprefix("MOSTLY_").removeprefix("ALL_")
        except ValueError:
            pass
    if matrix_types:
        return matrix_types.most_common(1)[0][0]
    return None


def kv_bytes_per_token(metadata: dict[str, object], arch: str, n_layer: int | None) -> int | None:
    """Bytes of f16 keys and values one token of context costs, from the header's shapes."""
    n_embd = metadata_int(metadata, f"{arch}.embedding_length")
    heads = metadata_ints(metadata, f"{arch}.attention.head_count")
    heads_kv = metadata_ints(metadata, f"{arch}.attention.head_count_kv") or heads
    if not n_layer or not heads or not heads_kv:
        return None
    n_head = next((h for h in heads if h > 0), 0)
    default_head_dim = n_embd // n_head if n_embd and n_head else None
    key_length = metadata_int(metadata, f"{arch}.attention.key_length") or default_head_dim
    value_length = metadata_int(metadata, f"{arch}.attention.value_length") or default_head_dim
    if not key_length or not value_length:
        return None
    per_layer = heads_kv if len(heads_kv) == n_layer else [heads_kv[0]] * n_layer
    total = sum(per_layer) * (key_length + value_length) * 2
    return total or None


def _relative(path: Path, models_dir: Path) -> str:
    try:
        return path.relative_to(models_dir).as_posix()
    except ValueError:
        return path.resolve().relative_to(models_dir.resolve()).as_posix()


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _split_shards(path: Path, count: int) -> list[Path] | None:
    """Shard paths for a first shard named by llama-gguf-split's pattern, else None."""
    match = SPLIT_NAME.match(path.name)
    if match is None or int(match["no"]) != 1 or int(match["count"]) != count:
        return None
    prefix = match["prefix"]
    return [
        path.with_name(SPLIT_NAME_FORMAT.format(prefix=prefix, no=no, count=count))
        for no in range(1, count + 1)
    ]


def _first_shard_of(path: Path) -> Path | None:
    match = SPLIT_NAME.match(path.name)
    if match is None or int(match["no"]) == 1:
        return None
    count = int(match["count"])
    return path.with_name(SPLIT_NAME_FORMAT.format(prefix=match["prefix"], no=1, count=count))


@dataclass(slots=True)
class _Totals:
    """Size, parameters and tensor types of a model summed over its shards."""

    size: int
    parameters: int
    matrix_types: Counter[str]
    shards: tuple[str, ...] = ()
    reason: str | None = None

    def fail(self, reason: str) -> None:
        # the first problem found is the one worth reading
        if self.reason is None:
            self.reason = reason


def _join_shards(totals: _Totals, header: Header, path: Path, models_dir: Path) -> None:
    """Add the other shards of the split set whose first shard is `path` into `totals`."""
    count = metadata_int(header.metadata, "split.count") or 0
    shards = _split_shards(path, count)
    if shards is None:
        totals.fail(
            f"split into {count} files, but the name does not follow "
            f"name-00001-of-{count:05d}.gguf, so llama.cpp cannot find the others"
        )
        return
    totals.shards = tuple(_relative(shard, models_dir) for shard in shards)
    tensor_total = header.tensor_count
    for no, shard in enumerate(shards[1:], start=2):
        if not shard.exists():
            totals.fail(f"missing shard {no} of {count}: {shard.name}")
            continue
        try:
            part = read_header(shard)
        except Invalid as invalid:
            totals.size += _file_size(shard)
            totals.fail(f"shard {no} of {count} ({shard.name}): {invalid}")
            continue
        totals.size += part.file_size
        totals.parameters += part.parameters
        totals.matrix_types.update(part.matrix_types)
        tensor_total += part.tensor_count
        position = (
            metadata_int(part.metadata, "split.no"),
            metadata_int(part.metadata, "split.count"),
        )
        if position != (no - 1, count):
            totals.fail(f"shard {no} of {count} ({shard.name}) belongs to another split")
    declared = metadata_int(header.metadata, "split.tensors.count")
    if declared is not None and declared != tensor_total:
        totals.fail(f"the split declares {declared} tensors but its shards hold {tensor_total}")


def read_model(path: Path, models_dir: Path) -> ModelInfo:
    """Describe one model file (for a split set, its first shard); never raises on bad files.

    `path` must lie inside `models_dir` (ValueError otherwise): `ModelInfo.path` is relative.
    """
    rel = _relative(path, models_dir)
    try:
        header = read_header(path)
    except Invalid as invalid:
        return ModelInfo(path=rel, size_bytes=_file_size(path), valid=False, reason=str(invalid))

    metadata = header.metadata
    totals = _Totals(header.file_size, header.parameters, Counter(header.matrix_types))
    split_count = metadata_int(metadata, "split.count") or 0
    split_no = metadata_int(metadata, "split.no") or 0
    if split_count > 1 and split_no != 0:
        # later shards carry no metadata of their own; llama.cpp is only ever given the first
        first = _first_shard_of(path)
        first_name = first.name if first is not None else "its first shard"
        if first is not None and first.exists():
            reason = f"shard {split_no + 1} of {split_count}: load {first_name} instead"
        else:
            reason = f"shard {split_no + 1} of {split_count} without its first shard {first_name}"
        return ModelInfo(
            path=rel,
            size_bytes=totals.size,
            valid=False,
            reason=reason,
            parameters=header.parameters,
        )
    if split_count > 1:
        _join_shards(totals, header, path, models_dir)
    elif header.tensor_count == 0:
        totals.fail("no tensors (a vocabulary-only or metadata-only file)")

    arch = metadata_str(metadata, "general.architecture")
    if arch is None:
        totals.fail("no general.architecture in the metadata")
    block_count = metadata_int(metadata, f"{arch}.block_count") if arch else None
    template = metadata_str(metadata, "tokenizer.chat_template")
    return ModelInfo(
        path=rel,
        size_bytes=totals.size,
        valid=totals.reason is None,
        reason=totals.reason,
        architecture=arch,
        name=metadata_str(metadata, "general.name"),
        parameters=totals.parameters,
        quantization=_quantization(metadata, totals.matrix_types),
        context_length=(metadata_int(metadata, f"{arch}.context_length") or None) if arch else None,
        has_chat_template=bool(template and template.strip()),
        demo=metadata.get("council.demo") is True,
        shards=totals.shards,
        block_count=block_count,
        kv_bytes_per_token=kv_bytes_per_token(metadata, arch, block_count) if arch else None,
        source=source.label if (source := read_source(path)) is not None else None,
    )


def _gguf_files(models_dir: Path) -> list[Path]:
    found: list[Path] = []
    for root, dirs, files in os.walk(models_dir):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [
            Path(root, name)
            for name in files
            if name.lower().endswith(".gguf") and not name.startswith(".")
        ]
    return found


def scan(models_dir: Path) -> list[ModelInfo]:
    """Every model under `models_dir` (recursive), sorted by path; a missing folder is empty."""
    if not models_dir.is_dir():
        return []
    files = _gguf_files(models_dir)
    later_shards: list[Path] = []
    entries: list[ModelInfo] = []
    for path in files:
        first = _first_shard_of(path)
        if first is not None and first.exists():
            later_shards.append(path)  # listed by its first shard, unless that one disowns it
        else:
            entries.append(read_model(path, models_dir))
    covered = {shard for entry in entries for shard in entry.shards}
    entries += [
        read_model(path, models_dir)
        for path in later_shards
        if _relative(path, models_dir) not in covered
    ]
    return sorted(entries, key=lambda entry: entry.path)
