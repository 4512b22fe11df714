"""SHA-256 digests of the catalog's files, for the content-addressed `/models/…` URLs.

A model file is served as `/models/<digest>/<name>`: `<digest>` is the first 16 hex characters
(64 bits) of the file's SHA-256 and `<name>` its base name. Sixteen characters keep URLs short
while a collision among the few files on one stick stays out of reach; the full digest is the
response's strong `ETag`, so a browser cache (or wllama's OPFS cache) never mixes two files.

Hashing a model reads every byte (seconds per gigabyte, longer on a slow stick), so it never
happens on a request: the hub starts `ModelFiles.refresh` in the background once it serves, and
a file is offered under `/models` only when its digest is known (until then its URL is null in
`/api/models`, and a listing that finds an unhashed file starts another refresh). Digests are
cached in SQLite (`model_digests`), keyed by the file's path relative to the models folder, its
size and its `mtime_ns`, so a second start hashes nothing and a replaced file is hashed again.
Reads go through a fixed 1 MiB buffer in a worker thread: a file is never held in memory.

A split set is also served whole under its first shard's digest: `/models/<digest of shard
1>/<prefix>-0000N-of-0000M.gguf` for every N, because wllama (like llama.cpp) is given the first
shard's URL and derives the others' by swapping the number in the name. Each shard keeps its
own URL too, and is served under either with its own SHA-256 as ETag. The first shard's header
names the set's shard count and tensor count, so a different set under the same first shard
is out of reach in practice; the ETag tells a cache if a later shard was replaced.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from council.models.catalog import scan
from council.models.sources import read_source
from council.timestamps import stamp

if TYPE_CHECKING:
    from council.store.access import Store

log = logging.getLogger("council")
DIGEST_CHARS = 16  # the URL's share of the SHA-256: 64 bits
BUFFER = 1024 * 1024


class HashingStopped(Exception):
    """The hub is stopping: the file was left half-read and nothing was recorded."""


@dataclass(frozen=True, slots=True)
class FileDigest:
    """One catalog file with its SHA-256, valid while the file's size and mtime_ns match."""

    path: str  # relative to the models folder, with forward slashes
    size: int
    mtime_ns: int
    sha256: str

    @property
    def name(self) -> str:
        return PurePosixPath(self.path).name

    @property
    def url(self) -> str:
        return f"/models/{self.sha256[:DIGEST_CHARS]}/{self.name}"


def sha256_file(path: Path, stop: threading.Event | None = None) -> str:
    """The file's SHA-256, read through one reused buffer (call it in a worker thread)."""
    digest = hashlib.sha256()
    buffer = bytearray(BUFFER)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as file:
        while read := file.readinto(buffer):
            if stop is not None and stop.is_set():
                raise HashingStopped(str(path))
            digest.update(view[:read])  # hashlib releases the GIL for a buffer this large
    return digest.hexdigest()


def catalog_sets(models_dir: Path) -> list[tuple[str, ...]]:
    """The files of each valid catalog model: one file, or a split set's shards in order."""
    return [model.shards or (model.path,) for model in scan(models_dir) if model.valid]


def cached_digests(db: sqlite3.Connection) -> dict[str, FileDigest]:
    rows = db.execute("SELECT path, size, mtime_ns, sha256 FROM model_digests")
    return {row[0]: FileDigest(row[0], row[1], row[2], row[3]) for row in rows}


def remember_digest(db: sqlite3.Connection, digest: FileDigest) -> None:
    db.execute(
        "INSERT OR REPLACE INTO model_digests (path, size, mtime_ns, sha256, hashed_at) "
        "VALUES (?, ?, ?, ?, ?)",
        (digest.path, digest.size, digest.mtime_ns, digest.sha256, stamp()),
    )


class ModelFiles:
    """The catalog's hashed files, by URL; `refresh()` hashes what is new or changed."""

    def __init__(self, db: Store, models_dir: Path) -> None:
        self.db = db
        self.models_dir = models_dir
        self._by_path: dict[str, FileDigest] = {}
        self._by_url: dict[tuple[str, str], FileDigest] = {}
        self._sets: list[tuple[str, ...]] = []  # split sets, first shard first
        self._lock = asyncio.Lock()
        self._stop = threading.Event()
        self._pending: asyncio.Task[None] | None = None
        self.hashed = 0  # files hashed by this process (the rest came from the cache)

    def url_of(self, path: str) -> str | None:
        """The URL of a catalog file (relative path), or None while it is not hashed."""
        known = self._by_path.get(path)
        return known.url if known is not None else None

    def lookup(self, digest: str, name: str) -> tuple[Path, os.stat_result, FileDigest] | None:
        """The file behind `/models/<digest>/<name>`, if it is still the file that was hashed.

        Only keys of the hashed-file table are compared: nothing from the request becomes a path.
        """
        known = self._by_url.get((digest, name))
        if known is None:
            return None
        path = self.models_dir / known.path
        try:
            stat = path.stat()
        except OSError:
            return None
        if (stat.st_size, stat.st_mtime_ns) != (known.size, known.mtime_ns):
            self.refresh_soon()  # changed since it was hashed: hash it again, serve it after
            return None
        return path, stat, known

    def refresh_soon(self) -> None:
        """Start a refresh in the background unless one is already running."""
        if self._pending is None or self._pending.done():
            self._pending = asyncio.get_running_loop().create_task(self.refresh())

    def stop(self) -> None:
        """Make a running refresh give up at its next buffer (the hub is stopping)."""
        self._stop.set()
        if self._pending is not None:
            self._pending.cancel()

    async def refresh(self) -> None:
        """Hash every catalog file whose cached digest is missing or stale; one file at a time."""
        async with self._lock:
            files, self._sets = await asyncio.to_thread(self._stat_catalog)
            cached = await self.db.read(cached_digests)
            found: dict[str, FileDigest] = {}
            for path, (size, mtime_ns) in files.items():
                hit = cached.get(path)
                if hit is not None and (hit.size, hit.mtime_ns) == (size, mtime_ns):
                    found[path] = hit
                elif (pulled := await asyncio.to_thread(read_source, self.models_dir / path)) and (
                    pulled.size,
                    pulled.mtime_ns,
                ) == (size, mtime_ns):
                    # `council models pull` checked this digest against the repository's
                    found[path] = FileDigest(path, size, mtime_ns, pulled.sha256)
                    self.db.submit(remember_digest, found[path])
            self._publish(found)
            for path, (size, mtime_ns) in files.items():
                if path in found:
                    continue
                try:
                    sha = await asyncio.to_thread(sha256_file, self.models_dir / path, self._stop)
                except HashingStopped:
                    return
                except OSError as exc:
                    log.warning("could not hash %s: %s", path, exc)
                    continue
                found[path] = FileDigest(path, size, mtime_ns, sha)
                self.db.submit(remember_digest, found[path])
                self.hashed += 1
                self._publish(found)

    def _stat_catalog(self) -> tuple[dict[str, tuple[int, int]], list[tuple[str, ...]]]:
        """Each catalog file's size and mtime_ns, and the split sets (first shard first)."""
        sets = catalog_sets(self.models_dir)
        stats: dict[str, tuple[int, int]] = {}
        for path in (path for files in sets for path in files):
            try:
                stat = (self.models_dir / path).stat()
            except OSError:
                continue
            stats[path] = (stat.st_size, stat.st_mtime_ns)
        return stats, [files for files in sets if len(files) > 1]

    def _publish(self, found: dict[str, FileDigest]) -> None:
        # New dicts, swapped in whole: a request never sees a half-built table.
        self._by_path = dict(found)
        by_url = {(d.sha256[:DIGEST_CHARS], d.name): d for d in found.values()}
        for shards in self._sets:
            if all(path in found for path in shards):  # a set is offered whole or not at all
                first = found[shards[0]].sha256[:DIGEST_CHARS]
                by_url.update({(first, found[path].name): found[path] for path in shards})
        self._by_url = by_url
