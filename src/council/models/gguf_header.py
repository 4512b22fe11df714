"""The streaming GGUF header parser behind the catalog: magic, key/values, tensor infos.

Only the header is read, streamed through a small buffer: magic, key/values, tensor infos.
`gguf.GGUFReader` would memory-map the file and build a numpy object for every vocabulary
string and every tensor (seconds for a 150k-token vocabulary, and a reshape error rather than
a reason when data is cut short), so this module parses the header itself with the gguf
package's constants (value types, quantization block sizes, file type names). Large arrays
(the vocabulary, the merges) are skipped, not decoded. Truncation is detected without
touching tensor data: the tensor infos say where the data must end, and the file size says
where it does.

Every problem with a file is raised as `Invalid`, whose message is the catalog's one-line
reason; `read_header` turns I/O and other unexpected errors into one as well.
"""

from __future__ import annotations

import io
import os
import stat
import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from council.models.gguf_constants import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFValueType
from council.units import human_size

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32

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


class Invalid(Exception):
    """A file council cannot use; the message is the catalog's one-line reason."""


class HeaderIncomplete(Invalid):
    """The bytes at hand ended inside the header although the file is longer (a prefix)."""


@dataclass(slots=True)
class Header:
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
            raise Invalid(f"truncated: the file ends inside the header (at byte {self.size})")
        chunk = self._handle.read(max(n - available, _CHUNK))
        self._buf = self._buf[self._pos :] + chunk
        self._base += self._pos
        self._pos = 0
        if len(self._buf) < n:
            raise HeaderIncomplete(
                f"truncated: the file ends inside the header (at byte {self.offset})"
            )

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
            raise Invalid(f"truncated: the file ends inside the header (at byte {self.size})")
        self._handle.seek(target)
        self._buf, self._pos, self._base = b"", 0, target

    def room_for(self, n: int) -> None:
        """Fail now, not after a long loop, when `n` more bytes cannot fit in the file."""
        if self.offset + n > self.size:
            raise Invalid(f"truncated: the file ends inside the header (at byte {self.size})")

    def name(self, what: str) -> str:
        start = self.offset
        length = self.u64()
        if length > _MAX_NAME:
            raise Invalid(f"corrupt GGUF header: the {what} at byte {start} claims {length} bytes")
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
    raise Invalid(f"corrupt GGUF header: unknown value type {vtype} at byte {stream.offset}")


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
        raise Invalid("empty file")
    if stream.size < len(GGUF_MAGIC):
        raise Invalid(f"not a GGUF file (only {stream.size} bytes)")
    magic = stream.take(len(GGUF_MAGIC))
    if magic != GGUF_MAGIC:
        raise Invalid(f"not a GGUF file (bad magic {magic!r})")
    raw_version = stream.take(4)
    version = int.from_bytes(raw_version, "little")
    if version & 0xFFFF == 0:
        # written for a big-endian machine: every number in the file is byte-swapped
        stream.endian = ">"
        version = int.from_bytes(raw_version, "big")
    if version == 1:
        raise Invalid("GGUF version 1 is too old for llama.cpp; convert the model again")
    if version not in SUPPORTED_VERSIONS:
        raise Invalid(f"corrupt GGUF header: unknown GGUF version {version}")
    return stream.u64(), stream.u64()


def _tensor_info(stream: _Stream, header: Header) -> int:
    """Read one tensor info into `header`; return where its data ends (relative offset)."""
    name = stream.name("tensor name")
    n_dims = stream.u32()
    if n_dims > _MAX_DIMS:
        raise Invalid(f"corrupt GGUF header: tensor {name!r} has {n_dims} dimensions")
    dims = stream.u64s(n_dims)
    raw_type = stream.u32()
    offset = stream.u64()
    try:
        ggml_type = GGMLQuantizationType(raw_type)
    except ValueError:
        raise Invalid(
            f"tensor {name!r} has unknown type {raw_type} (newer than council's gguf package?)"
        ) from None
    block, type_size = GGML_QUANT_SIZES[ggml_type]
    elements = 1
    for dim in dims:
        elements *= dim
    if dims and dims[0] % block:
        raise Invalid(f"corrupt GGUF header: tensor {name!r} rows do not fit {block}-blocks")
    header.parameters += elements
    if n_dims >= 2:
        header.matrix_types[ggml_type.name] += elements
    return offset + elements // block * type_size


def _parse(handle: BinaryIO, size: int) -> Header:
    stream = _Stream(handle, size)
    tensor_count, kv_count = _preamble(stream)
    metadata: dict[str, object] = {}
    for _ in range(kv_count):
        key = stream.name("key")
        metadata[key] = _value(stream, stream.u32())

    header = Header(file_size=size, metadata=metadata, tensor_count=tensor_count)
    data_end = max((_tensor_info(stream, header) for _ in range(tensor_count)), default=0)

    alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise Invalid(f"corrupt GGUF header: general.alignment is {alignment!r}")
    expected_end = stream.offset
    if tensor_count:
        expected_end = -(-expected_end // alignment) * alignment + data_end
    if expected_end > size:
        raise Invalid(
            f"truncated: tensor data runs to byte {expected_end} but the file has {size} bytes "
            f"({human_size(expected_end - size)} missing)"
        )
    return header


def read_header(path: Path) -> Header:
    """The parsed header, or Invalid with the reason; broad errors stop here, as reasons."""
    try:
        # Non-blocking, then checked: opening a FIFO named *.gguf the plain way would wait for a
        # writer that never comes (and hold whoever scans the catalog with it).
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            os.close(descriptor)
            raise Invalid("not a regular file (a FIFO or device named .gguf)")
        with os.fdopen(descriptor, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            return _parse(handle, size)
    except Invalid:
        raise
    except PermissionError:
        raise Invalid("unreadable: permission denied") from None
    except IsADirectoryError:
        raise Invalid("not a file (a folder named .gguf)") from None
    except FileNotFoundError:
        raise Invalid("unreadable: the file is gone (or a broken link)") from None
    except OSError as error:
        raise Invalid(f"unreadable: {error.strerror or error}") from None
    except Exception as error:  # anything the gguf constants or struct raise on garbage
        raise Invalid(f"unreadable GGUF ({type(error).__name__}: {error})") from None


def parse_prefix(data: bytes, file_size: int) -> Header:
    """The header of a `file_size`-byte GGUF from its first bytes (a ranged download).

    Raises HeaderIncomplete when the header runs past `data` (ask for more bytes), else Invalid.
    """
    try:
        return _parse(io.BytesIO(data), file_size)
    except Invalid:
        raise
    except Exception as error:
        raise Invalid(f"unreadable GGUF ({type(error).__name__}: {error})") from None


def metadata_int(metadata: dict[str, object], key: str) -> int | None:
    value = metadata.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def metadata_ints(metadata: dict[str, object], key: str) -> list[int] | None:
    """A per-layer value: a scalar, or an array (models with varying heads per layer)."""
    value = metadata.get(key)
    if isinstance(value, tuple) and all(isinstance(v, int) for v in value):
        return [v for v in value if isinstance(v, int)]
    scalar = metadata_int(metadata, key)
    return None if scalar is None else [scalar]


def metadata_str(metadata: dict[str, object], key: str) -> str | None:
    value = metadata.get(key)
    return value if isinstance(value, str) else None
