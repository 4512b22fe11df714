"""The model catalog: what GGUF files the models folder holds, and whether each can be loaded.

council lists models at startup, so a listing has to be quick and must survive whatever a
person drops into the folder: a half-finished download, a zip renamed to `.gguf`, a shard
without its siblings. Each file therefore becomes a `ModelInfo` with `valid` and a one-line
`reason`, never an exception.

Only the header is read, streamed through a small buffer: magic, key/values, tensor infos.
`gguf.GGUFReader` would memory-map the file and build a numpy object for every vocabulary
string and every tensor (seconds for a 150k-token vocabulary, and a reshape error rather than
a reason when data is cut short), so this module parses the header itself with the gguf
package's constants (value types, quantization block sizes, file type names). Large arrays
(the vocabulary, the merges) are skipped, not decoded. Truncation is detected without
touching tensor data: the tensor infos say where the data must end, and the file size says
where it does.

Split models follow `llama-gguf-split`: `name-00001-of-00003.gguf` carries the metadata and
`split.count`; llama.cpp is given the first shard and finds the others by name. The catalog
lists the set once, under the first shard, with sizes and parameter counts summed over all
shards. Files and folders whose names start with a dot are skipped (hidden files, and the
`._name.gguf` AppleDouble litter macOS leaves on FAT/exFAT sticks).
"""

from __future__ import annotations

import os
import re
import struct
from collections import Counter
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import BinaryIO

from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFValueType, LlamaFileType

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32

SPLIT_NAME = re.compile(r"^(?P<prefix>.+)-(?P<no>\d{5})-of-(?P<count>\d{5})\.gguf$")
SPLIT_NAME_FORMAT = "{prefix}-{no:05d}-of-{count:05d}.gguf"

_CHUNK = 1 << 20
_KEEP_ARRAY_ITEMS = 4096  # numeric arrays up to this length are kept (per-layer head counts)
_MAX_NAME = 1 << 16  # a key or tensor name longer than this is garbage, not a name
_MAX_DIMS = 8
_KEEP_STRING_BYTES = 1 << 20  # chat templates are kilobytes; megabytes here are not metadata

_SCALAR_FORMATS: dict[int, str] = {
    GGUFValueType.UINT8: "B",
    GGUFValueType.INT8: "b",
    GGUFValueType.UINT16: "H",
    GGUFValueType.INT16: "h",
    GGUFValueType.UINT32: "I",
    GGUFValueType.INT32: "i",
    GGUFValueType.FLOAT32: "f",
    GGUFValueType.BOOL: "?",
    GGUFValueType.UINT64: "Q",
    GGUFValueType.INT64: "q",
    GGUFValueType.FLOAT64: "d",
}


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

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {f.name: getattr(self, f.name) for f in fields(self)}
        out["shards"] = list(self.shards)
        return out


class _Invalid(Exception):
    """A file council cannot use; the message is the catalog's one-line reason."""


@dataclass(slots=True)
class _Header:
    file_size: int
    metadata: dict[str, object]
    tensor_count: int = 0
    parameters: int = 0
    # elements per tensor type over 2-D+ tensors, to name the quantization when file_type is absent
    matrix_types: Counter[str] = field(default_factory=Counter)


class _Stream:
    """Sequential reads over a file through one buffer, with every read bounds-checked."""

    def __init__(self, handle: BinaryIO, size: int) -> None:
        self._handle = handle
        self.size = size
        self.endian = "<"
        self._buf = b""
        self._pos = 0
        self._base = 0  # file offset of _buf[0]

    @property
    def offset(self) -> int:
        return self._base + self._pos

    def _need(self, n: int) -> None:
        available = len(self._buf) - self._pos
        if available >= n:
            return
        if self.offset + n > self.size:
            raise _Invalid(f"truncated: the file ends inside the header (at byte {self.size})")
        chunk = self._handle.read(max(n - available, _CHUNK))
        self._buf = self._buf[self._pos :] + chunk
        self._base += self._pos
        self._pos = 0
        if len(self._buf) < n:
            raise _Invalid(f"truncated: the file ends inside the header (at byte {self.offset})")

    def take(self, n: int) -> bytes:
        self._need(n)
        out = self._buf[self._pos : self._pos + n]
        self._pos += n
        return out

    def unpack(self, fmt: str, size: int) -> tuple[object, ...]:
        self._need(size)
        values = struct.unpack_from(self.endian + fmt, self._buf, self._pos)
        self._pos += size
        return values

    def u32(self) -> int:
        self._need(4)
        (value,) = struct.unpack_from(self.endian + "I", self._buf, self._pos)
        self._pos += 4
        return int(value)

    def u64(self) -> int:
        self._need(8)
        (value,) = struct.unpack_from(self.endian + "Q", self._buf, self._pos)
        self._pos += 8
        return int(value)

    def u64s(self, count: int) -> list[int]:
        size = 8 * count
        self._need(size)
        values = struct.unpack_from(f"{self.endian}{count}Q", self._buf, self._pos)
        self._pos += size
        return [int(v) for v in values]

    def skip(self, n: int) -> None:
        if self._pos + n <= len(self._buf):
            self._pos += n
            return
        target = self.offset + n
        if target > self.size:
            raise _Invalid(f"truncated: the file ends inside the header (at byte {self.size})")
        self._handle.seek(target)
        self._buf, self._pos, self._base = b"", 0, target

    def room_for(self, n: int) -> None:
        """Fail now, not after a long loop, when `n` more bytes cannot fit in the file."""
        if self.offset + n > self.size:
            raise _Invalid(f"truncated: the file ends inside the header (at byte {self.size})")

    def name(self, what: str) -> str:
        start = self.offset
        length = self.u64()
        if length > _MAX_NAME:
            raise _Invalid(f"corrupt GGUF header: the {what} at byte {start} claims {length} bytes")
        return self.take(length).decode("utf-8", errors="replace")


def _value(stream: _Stream, vtype: int, depth: int = 0) -> object:
    """One metadata value; long strings and arrays are skipped and come back as None."""
    scalar = _SCALAR_FORMATS.get(vtype)
    if scalar is not None:
        return stream.unpack(scalar, struct.calcsize(scalar))[0]
    if vtype == GGUFValueType.STRING:
        length = stream.u64()
        if length > _KEEP_STRING_BYTES:
            stream.skip(length)
            return None
        return stream.take(length).decode("utf-8", errors="replace")
    if vtype == GGUFValueType.ARRAY and depth <= 1:
        return _array(stream, depth)
    raise _Invalid(f"corrupt GGUF header: unknown value type {vtype} at byte {stream.offset}")


def _array(stream: _Stream, depth: int) -> object:
    item_type = stream.u32()
    count = stream.u64()
    item = _SCALAR_FORMATS.get(item_type)
    if item is not None:
        size = struct.calcsize(item)
        if count <= _KEEP_ARRAY_ITEMS:
            return stream.unpack(f"{count}{item}", size * count)
        stream.skip(size * count)
    elif item_type == GGUFValueType.STRING:
        stream.room_for(8 * count)  # each string is at least its 8-byte length
        for _ in range(count):
            stream.skip(stream.u64())
    else:
        stream.room_for(count)
        for _ in range(count):
            _value(stream, item_type, depth + 1)
    return None


def _preamble(stream: _Stream) -> tuple[int, int]:
    """Check magic and version; return (tensor count, key/value count)."""
    if stream.size == 0:
        raise _Invalid("empty file")
    if stream.size < len(GGUF_MAGIC):
        raise _Invalid(f"not a GGUF file (only {stream.size} bytes)")
    magic = stream.take(len(GGUF_MAGIC))
    if magic != GGUF_MAGIC:
        raise _Invalid(f"not a GGUF file (bad magic {magic!r})")
    raw_version = stream.take(4)
    version = int.from_bytes(raw_version, "little")
    if version & 0xFFFF == 0:
        # written for a big-endian machine: every number in the file is byte-swapped
        stream.endian = ">"
        version = int.from_bytes(raw_version, "big")
    if version == 1:
        raise _Invalid("GGUF version 1 is too old for llama.cpp; convert the model again")
    if version not in SUPPORTED_VERSIONS:
        raise _Invalid(f"corrupt GGUF header: unknown GGUF version {version}")
    return stream.u64(), stream.u64()


def _tensor_info(stream: _Stream, header: _Header) -> int:
    """Read one tensor info into `header`; return where its data ends (relative offset)."""
    name = stream.name("tensor name")
    n_dims = stream.u32()
    if n_dims > _MAX_DIMS:
        raise _Invalid(f"corrupt GGUF header: tensor {name!r} has {n_dims} dimensions")
    dims = stream.u64s(n_dims)
    raw_type = stream.u32()
    offset = stream.u64()
    try:
        ggml_type = GGMLQuantizationType(raw_type)
    except ValueError:
        raise _Invalid(
            f"tensor {name!r} has unknown type {raw_type} (newer than council's gguf package?)"
        ) from None
    block, type_size = GGML_QUANT_SIZES[ggml_type]
    elements = 1
    for dim in dims:
        elements *= dim
    if dims and dims[0] % block:
        raise _Invalid(f"corrupt GGUF header: tensor {name!r} rows do not fit {block}-blocks")
    header.parameters += elements
    if n_dims >= 2:
        header.matrix_types[ggml_type.name] += elements
    return offset + elements // block * type_size


def _parse(handle: BinaryIO, size: int) -> _Header:
    stream = _Stream(handle, size)
    tensor_count, kv_count = _preamble(stream)
    metadata: dict[str, object] = {}
    for _ in range(kv_count):
        key = stream.name("key")
        metadata[key] = _value(stream, stream.u32())

    header = _Header(file_size=size, metadata=metadata, tensor_count=tensor_count)
    data_end = max((_tensor_info(stream, header) for _ in range(tensor_count)), default=0)

    alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise _Invalid(f"corrupt GGUF header: general.alignment is {alignment!r}")
    expected_end = stream.offset
    if tensor_count:
        expected_end = -(-expected_end // alignment) * alignment + data_end
    if expected_end > size:
        raise _Invalid(
            f"truncated: tensor data runs to byte {expected_end} but the file has {size} bytes "
            f"({human_size(expected_end - size)} missing)"
        )
    return header


def _read_header(path: Path) -> _Header:
    """The parsed header, or _Invalid with the reason; broad errors stop here, as reasons."""
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            return _parse(handle, size)
    except _Invalid:
        raise
    except PermissionError:
        raise _Invalid("unreadable: permission denied") from None
    except IsADirectoryError:
        raise _Invalid("not a file (a folder named .gguf)") from None
    except FileNotFoundError:
        raise _Invalid("unreadable: the file is gone (or a broken link)") from None
    except OSError as error:
        raise _Invalid(f"unreadable: {error.strerror or error}") from None
    except Exception as error:  # anything the gguf constants or struct raise on garbage
        raise _Invalid(f"unreadable GGUF ({type(error).__name__}: {error})") from None


def _int(metadata: dict[str, object], key: str) -> int | None:
    value = metadata.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def _ints(metadata: dict[str, object], key: str) -> list[int] | None:
    """A per-layer value: a scalar, or an array (models with varying heads per layer)."""
    value = metadata.get(key)
    if isinstance(value, tuple) and all(isinstance(v, int) for v in value):
        return [v for v in value if isinstance(v, int)]
    scalar = _int(metadata, key)
    return None if scalar is None else [scalar]


def _str(metadata: dict[str, object], key: str) -> str | None:
    value = metadata.get(key)
    return value if isinstance(value, str) else None


def _quantization(metadata: dict[str, object], matrix_types: Counter[str]) -> str | None:
    file_type = _int(metadata, "general.file_type")
    if file_type is not None and file_type != LlamaFileType.GUESSED:
        try:
            return LlamaFileType(file_type).name.removeprefix("MOSTLY_").removeprefix("ALL_")
        except ValueError:
            pass
    if matrix_types:
        return matrix_types.most_common(1)[0][0]
    return None


def _kv_bytes_per_token(metadata: dict[str, object], arch: str, n_layer: int | None) -> int | None:
    n_embd = _int(metadata, f"{arch}.embedding_length")
    heads = _ints(metadata, f"{arch}.attention.head_count")
    heads_kv = _ints(metadata, f"{arch}.attention.head_count_kv") or heads
    if not n_layer or not heads or not heads_kv:
        return None
    n_head = next((h for h in heads if h > 0), 0)
    default_head_dim = n_embd // n_head if n_embd and n_head else None
    key_length = _int(metadata, f"{arch}.attention.key_length") or default_head_dim
    value_length = _int(metadata, f"{arch}.attention.value_length") or default_head_dim
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


def _join_shards(totals: _Totals, header: _Header, path: Path, models_dir: Path) -> None:
    """Add the other shards of the split set whose first shard is `path` into `totals`."""
    count = _int(header.metadata, "split.count") or 0
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
            part = _read_header(shard)
        except _Invalid as invalid:
            totals.size += _file_size(shard)
            totals.fail(f"shard {no} of {count} ({shard.name}): {invalid}")
            continue
        totals.size += part.file_size
        totals.parameters += part.parameters
        totals.matrix_types.update(part.matrix_types)
        tensor_total += part.tensor_count
        position = (_int(part.metadata, "split.no"), _int(part.metadata, "split.count"))
        if position != (no - 1, count):
            totals.fail(f"shard {no} of {count} ({shard.name}) belongs to another split")
    declared = _int(header.metadata, "split.tensors.count")
    if declared is not None and declared != tensor_total:
        totals.fail(f"the split declares {declared} tensors but its shards hold {tensor_total}")


def read_model(path: Path, models_dir: Path) -> ModelInfo:
    """Describe one model file (for a split set, its first shard); never raises on bad files.

    `path` must lie inside `models_dir` (ValueError otherwise): `ModelInfo.path` is relative.
    """
    rel = _relative(path, models_dir)
    try:
        header = _read_header(path)
    except _Invalid as invalid:
        return ModelInfo(path=rel, size_bytes=_file_size(path), valid=False, reason=str(invalid))

    metadata = header.metadata
    totals = _Totals(header.file_size, header.parameters, Counter(header.matrix_types))
    split_count = _int(metadata, "split.count") or 0
    split_no = _int(metadata, "split.no") or 0
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

    arch = _str(metadata, "general.architecture")
    if arch is None:
        totals.fail("no general.architecture in the metadata")
    block_count = _int(metadata, f"{arch}.block_count") if arch else None
    template = _str(metadata, "tokenizer.chat_template")
    return ModelInfo(
        path=rel,
        size_bytes=totals.size,
        valid=totals.reason is None,
        reason=totals.reason,
        architecture=arch,
        name=_str(metadata, "general.name"),
        parameters=totals.parameters,
        quantization=_quantization(metadata, totals.matrix_types),
        context_length=(_int(metadata, f"{arch}.context_length") or None) if arch else None,
        has_chat_template=bool(template and template.strip()),
        demo=metadata.get("council.demo") is True,
        shards=totals.shards,
        block_count=block_count,
        kv_bytes_per_token=_kv_bytes_per_token(metadata, arch, block_count) if arch else None,
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


def _scaled(n: int, units: tuple[str, ...], separator: str) -> str:
    if abs(n) < 1000:
        return f"{n}{separator}{units[0]}"
    value = float(n)
    for unit in units[1:]:
        value /= 1000
        if abs(value) < 999.5 or unit == units[-1]:
            text = f"{value:.1f}" if abs(value) < 99.95 else f"{value:.0f}"
            return f"{text.removesuffix('.0')}{separator}{unit}"
    raise AssertionError("unreachable")


def human_size(n: int) -> str:
    """Bytes in decimal units, as disks and model hubs print them: "640 KB", "1.2 GB"."""
    return _scaled(n, ("B", "KB", "MB", "GB", "TB", "PB"), " ")


def human_count(n: int) -> str:
    """A parameter count as model names print it: "412K", "135M", "7.2B"."""
    return _scaled(n, ("", "K", "M", "B", "T"), "")
