"""`council models show` and `council models rm`: one catalog model found by name, described
or deleted with everything that belongs to it (its shards, their `.source.json` sidecars, and
the folder a pull made for it once that is empty)."""

from __future__ import annotations

import contextlib
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from council.errors import BadRequest, Conflict, NotFound
from council.models.catalog import ModelInfo, scan
from council.models.sources import SUFFIX, Source, read_source, sidecar_of


@dataclass(frozen=True, slots=True)
class Found:
    info: ModelInfo
    files: tuple[Path, ...]  # the model's files: one, or a split set's shards

    @property
    def source(self) -> Source | None:
        return read_source(self.files[0])


def find(models_dir: Path, name: str) -> Found:
    """A model by its catalog path, its file name, or the folder holding only it."""
    name = name.strip().strip("/")
    listed = scan(models_dir)
    exact = [m for m in listed if m.path == name]
    by_file = [m for m in listed if PurePosixPath(m.path).name in (name, f"{name}.gguf")]
    by_folder = [m for m in listed if str(PurePosixPath(m.path).parent) == name]
    for matches in (exact, by_file, by_folder):
        if len(matches) == 1:
            info = matches[0]
            files = tuple(models_dir / path for path in (info.shards or (info.path,)))
            return Found(info, files)
        if len(matches) > 1:
            raise BadRequest(
                f"{name!r} could be {', '.join(m.path for m in matches)}: give the whole path"
            )
    raise NotFound(f"no model {name!r} in {models_dir} (see `council models list`)")


def remove(models_dir: Path, found: Found, seated: Collection[str]) -> list[Path]:
    """Delete the model's files and sidecars; refuse while a seat uses it. Returns what went."""
    users = sorted(seated)
    if users:
        raise Conflict(
            f"{found.info.path} is seated ({', '.join(users)}): remove "
            f"{'that seat' if len(users) == 1 else 'those seats'} first"
        )
    removed = []
    # the first shard first: the catalog stops listing the set before its other files go
    for path in found.files:
        for item in (path, sidecar_of(path)):
            if item.exists():
                item.unlink()
                removed.append(item)
    folder = found.files[0].parent
    if folder != models_dir and folder.is_relative_to(models_dir):
        with contextlib.suppress(OSError):  # not empty: other files stay, and so does it
            folder.rmdir()
    return removed


def details(found: Found) -> dict[str, object]:
    """What `council models show` prints: the header's facts and where the model came from."""
    source = found.source
    return {
        **found.info.to_dict(),
        "files": [str(path) for path in found.files],
        "origin": source.to_dict() if source is not None else None,
    }


__all__ = ["SUFFIX", "Found", "details", "find", "remove"]
