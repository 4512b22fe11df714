"""Owner-only TOML files holding a list of typed tables: remotes.toml, peers.toml, workers.toml.

Each holds tokens, so it is written atomically with mode 600; each entry is read onto its
dataclass by `config.typed_table` (types and ranges checked, nothing coerced) and then checked
by the caller's own rule (a valid name, not repeated), every failure one ConfigError line that
names the file and the entry.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

import tomlkit

from council.atomicfile import atomic_write
from council.config import typed_table
from council.errors import ConfigError, CouncilError

T = TypeVar("T")


def load_tables(
    path: Path, key: str, kind: type[T], what: str, check: Callable[[T, list[T]], None]
) -> list[T]:
    """`[[key]]` of `path` as `kind`s; `check(item, earlier)` raises for one that may not be
    (a ValueError or a CouncilError: its words go into the ConfigError)."""
    if not path.exists():
        return []
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    entries = raw.get(key, [])
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: {key} must be an array of tables ([[{key}]])")
    found: list[T] = []
    for entry in entries:
        name = entry.get("name") if isinstance(entry, dict) else None
        where = f"{what} {name!r}" if isinstance(name, str) else f"a [[{key}]] entry"
        try:
            item = typed_table(kind, entry, where)  # type: ignore[type-var]
        except ValueError as exc:  # its words name the entry already
            raise ConfigError(f"{path}: {exc}") from None
        try:
            check(item, found)
        except (ValueError, CouncilError) as exc:
            raise ConfigError(f"{path}: {where}: {exc}") from None
        found.append(item)
    return found


def save_tables(path: Path, key: str, header: str, items: Sequence[Any]) -> None:
    """Write `items` as `[[key]]`, owner-only, under a comment saying what the file is."""
    text = f"# {header}\n" + tomlkit.dumps({key: [asdict(item) for item in items]})
    atomic_write(path, text, mode=0o600)
