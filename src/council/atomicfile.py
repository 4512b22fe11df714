"""Writing a file so that a pulled stick leaves either the old file or the new one, whole.

The data goes to a temporary file beside the target (same folder, so the rename cannot cross
file systems), created exclusively with its final mode (a key is never readable by others,
not even for a moment), synced, then renamed over the target; the folder is synced too where
the platform allows, so the rename itself survives a power cut.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path


def write_temp(path: Path, data: bytes, mode: int = 0o644) -> Path:
    """A synced temporary file beside `path` holding `data`; the caller renames it."""
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    descriptor = os.open(temp, flags, mode)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return temp


def atomic_write(path: Path, data: bytes | str, mode: int = 0o644) -> None:
    """Replace `path` with `data` (text is written as UTF-8) in one rename."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    temp = write_temp(path, raw, mode)
    try:
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    sync_directory(path.parent)


def atomic_write_json(path: Path, data: object, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(data, indent=2) + "\n", mode)


def sync_directory(folder: Path) -> None:
    """Make renames in `folder` durable where the platform allows syncing a directory."""
    if os.name == "nt":
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    except OSError:
        pass  # some file systems refuse to sync a directory; the data itself is synced
    finally:
        os.close(descriptor)
