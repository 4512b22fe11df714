"""Where a pulled model came from: a small JSON sidecar beside each file `council models pull`
moved into the models folder.

`name.gguf.source.json` records the repository, the commit it was pulled at, the file's path in
the repository, its SHA-256 (checked against the repository's LFS digest before the move) and
the size and `mtime_ns` the file had once in place. The catalog shows the origin; the digest
table (`digests.py`) takes the SHA-256 from here instead of reading the file again, but only
while the size and `mtime_ns` still match: a file replaced or edited by hand is hashed anew.
The sidecar is not a `.gguf`, so the catalog never lists it as a model.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from council.atomicfile import atomic_write_json

SUFFIX = ".source.json"


@dataclass(frozen=True, slots=True)
class Source:
    repo: str
    revision: str  # the commit the file was pulled at
    file: str  # the path inside the repository
    sha256: str
    size: int
    mtime_ns: int
    endpoint: str
    pulled_at: str

    @property
    def label(self) -> str:
        return f"{self.repo}@{self.revision[:7]}"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def sidecar_of(path: Path) -> Path:
    return path.with_name(path.name + SUFFIX)


def write_source(path: Path, source: Source) -> None:
    atomic_write_json(sidecar_of(path), source.to_dict())


def read_source(path: Path, stat: os.stat_result | None = None) -> Source | None:
    """The sidecar of `path` if there is one that still describes the file as it is now."""
    try:
        raw = json.loads(sidecar_of(path).read_text(encoding="utf-8"))
        source = Source(**{field.name: raw[field.name] for field in fields(Source)})
        stat = path.stat() if stat is None else stat
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if (source.size, source.mtime_ns) != (stat.st_size, stat.st_mtime_ns):
        return None
    return source
