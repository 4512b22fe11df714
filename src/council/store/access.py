"""council.db as the running hub uses it: every query on a thread of its own, never on the loop.

A USB stick can stall an fsync for seconds, fill up, or turn read-only while the hub runs. With
`synchronous=FULL` each commit waits for the stick, so a commit on the event loop froze every
request, `/api/health` and other people's `/v1` streams included (issue 13: 7 s of 8 s frozen).
Here the hub's queries run on two threads, each with its own connection:

- the *writer* (one thread, so writes keep their order and each commit stays its own durable
  transaction: a round's output is on the stick before the round goes on);
- the *reader* (WAL lets it read while the writer waits on the stick), so reads never queue
  behind a stalled commit.

A write that fails because the stick is full or read-only raises the `StoreError` that says so
(507 or 503) and marks the store degraded with that reason, which `/api/health` reports; a write
that takes longer than `STALL` seconds does the same while it lasts. While degraded, a small
real write is tried now and then (`datafolder.WRITE_PROBE` bytes); when one succeeds the store
is healthy again and the writes that were put aside for then (`defer`) are replayed in order.
The CLI, which runs one command and exits, uses the plain functions on a connection of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from council.datafolder import WRITE_PROBE
from council.errors import StickFull, StickReadOnly, StoreError
from council.store.db import connect, store_error

log = logging.getLogger("council")
P = ParamSpec("P")
T = TypeVar("T")

STALL = 2.0  # seconds a write may take before the stick counts as stalled
PROBE_EVERY = 2.0  # seconds between recovery probes while degraded
MAX_DEFERRED = 1000  # writes kept for when the stick recovers; older ones are dropped


class Store:
    """The hub's handle on council.db (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._write_db = connect(path)  # creates and migrates before anything reads
        try:
            self._read_db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._read_db.execute("PRAGMA query_only=ON")
        except sqlite3.Error as exc:
            self._write_db.close()
            raise store_error(exc, path) from None
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="council-db-write")
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="council-db-read")
        self._problem: str | None = None
        self._writing_since: float | None = None
        self._last_probe = 0.0
        self._deferred: deque[Callable[[sqlite3.Connection], object]] = deque(maxlen=MAX_DEFERRED)
        self._lock = threading.Lock()

    # -- the calls ----------------------------------------------------------------------------

    async def read(
        self, fn: Callable[Concatenate[sqlite3.Connection, P], T], *args: P.args, **kw: P.kwargs
    ) -> T:
        """`fn(connection, *args)` on the reader thread."""
        call = _bound(fn, *args, **kw)
        return await asyncio.wrap_future(self._reader.submit(self._run_read, call))

    def read_now(
        self, fn: Callable[Concatenate[sqlite3.Connection, P], T], *args: P.args, **kw: P.kwargs
    ) -> T:
        """The same from a worker thread that may block (metrics are rendered on one)."""
        return self._reader.submit(self._run_read, _bound(fn, *args, **kw)).result()

    async def write(
        self, fn: Callable[Concatenate[sqlite3.Connection, P], T], *args: P.args, **kw: P.kwargs
    ) -> T:
        """`fn(connection, *args)` on the writer thread, after every write submitted before it.
        If the caller is cancelled meanwhile the write still happens, whole or not at all."""
        # Shielded: cancelling a wrapped future would cancel a write still queued.
        return await asyncio.shield(asyncio.wrap_future(self.submit(fn, *args, **kw)))

    def submit(
        self, fn: Callable[Concatenate[sqlite3.Connection, P], T], *args: P.args, **kw: P.kwargs
    ) -> Future[T]:
        """Queue a write without waiting for it; a failure is logged (and degrades the store)."""
        future: Future[T]
        try:
            future = self._writer.submit(self._run_write, _bound(fn, *args, **kw))
        except RuntimeError:  # closed: the hub is stopping
            future = Future()
            future.set_exception(StoreError("council.db is closed: the hub is stopping"))
        future.add_done_callback(_log_failure)
        return future

    def defer(
        self,
        fn: Callable[Concatenate[sqlite3.Connection, P], object],
        *args: P.args,
        **kw: P.kwargs,
    ) -> None:
        """A write that failed because the stick did: replayed, in order, once it recovers."""
        with self._lock:
            if len(self._deferred) == self._deferred.maxlen:
                log.warning("the stick has failed for long: an older unsaved write is lost")
            self._deferred.append(_bound(fn, *args, **kw))

    # -- health -------------------------------------------------------------------------------

    def problem(self) -> str | None:
        """Why writes fail or hang right now, or None; while there is one, a recovery probe is
        queued every `PROBE_EVERY` seconds (cheap: a few KiB through the writer thread)."""
        since = self._writing_since
        if since is not None and (waited := time.monotonic() - since) > STALL:
            return f"the stick has not finished a write for {waited:.0f} s"
        if self._problem is not None and time.monotonic() - self._last_probe > PROBE_EVERY:
            self._last_probe = time.monotonic()
            self._writer.submit(self._probe)
        return self._problem

    async def watch(self) -> None:
        """Look at the stick every `PROBE_EVERY` seconds, so a degraded store recovers even when
        nobody writes or asks for health (the hub runs this in the background)."""
        while True:
            await asyncio.sleep(PROBE_EVERY)
            self.problem()

    def close(self) -> None:
        """Finish the queued writes, then close both connections (a clean close checkpoints)."""
        self._writer.shutdown(wait=True)
        self._reader.shutdown(wait=True)
        for connection in (self._read_db, self._write_db):
            try:
                connection.close()
            except sqlite3.Error as exc:  # a stick gone bad: what was committed is kept
                log.warning("closing council.db: %s", store_error(exc, self.path))

    # -- on the threads -----------------------------------------------------------------------

    def _run_read(self, call: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return call(self._read_db)
        except sqlite3.Error as exc:
            raise store_error(exc, self.path) from None

    def _run_write(self, call: Callable[[sqlite3.Connection], T]) -> T:
        self._writing_since = time.monotonic()
        try:
            result = call(self._write_db)
        except sqlite3.Error as exc:
            self._rollback()
            error = store_error(exc, self.path)
            if _stick_failing(error):
                self._problem = str(error)
            raise error from None
        finally:
            self._writing_since = None
        if self._problem is not None:
            self._recovered()
        return result

    def _rollback(self) -> None:
        if self._write_db.in_transaction:
            with contextlib.suppress(sqlite3.Error):  # SQLite may have rolled back itself
                self._write_db.execute("ROLLBACK")

    def _probe(self) -> None:
        """Can the stick take real bytes again? (An empty transaction writes nothing.)"""
        if self._problem is None:
            return
        probe = self.path.with_name(".council-db-probe")
        try:
            with probe.open("wb") as file:
                file.write(b"\0" * WRITE_PROBE)
                file.flush()
            self._write_db.execute("BEGIN IMMEDIATE")
            self._write_db.execute("PRAGMA user_version = 0")
            self._write_db.execute("COMMIT")
        except (OSError, sqlite3.Error):
            self._rollback()
            return
        finally:
            probe.unlink(missing_ok=True)
        self._recovered()

    def _recovered(self) -> None:
        log.warning("the stick takes writes again (%s before)", self._problem)
        self._problem = None
        while True:
            with self._lock:
                if not self._deferred:
                    return
                call = self._deferred.popleft()
            try:
                call(self._write_db)
            except sqlite3.Error as exc:
                self._rollback()
                self._problem = str(store_error(exc, self.path))
                with self._lock:
                    self._deferred.appendleft(call)
                return


def _stick_failing(error: StoreError) -> bool:
    return isinstance(error, StickFull | StickReadOnly)


def _bound(
    fn: Callable[Concatenate[sqlite3.Connection, P], T], *args: P.args, **kw: P.kwargs
) -> Callable[[sqlite3.Connection], T]:
    def call(db: sqlite3.Connection) -> T:
        return fn(db, *args, **kw)

    return call


def _log_failure(future: Future[Any]) -> None:
    if not future.cancelled() and (exc := future.exception()) is not None:
        log.warning("a background write to council.db failed: %s", exc)
