"""`council logs`: which log file a name means, its last lines, and following it as it grows.

The hub writes `logs/council.log` (hub.py's `configure_logging`: rotated at 4 MB, two backups
kept); each engine process writes `logs/<engine>.log`, named for the first seat of the engine (a
seat may share an engine with others of the same model and settings, engine/fleet.py), rotated
when it starts (engine/process.py's `_rotate`). The running hub knows each seat's engine; without
one, the engine's name is worked out from config.toml the way the fleet names it.

The last lines are read backwards from the end in blocks, so a 4 MB log costs a few reads, not
its size in memory. Following is written here rather than taken from a library: there is no
well-kept one for a rotation-aware `tail -F` (watchdog-style file events would add a dependency,
differ by platform, and still need the rotation logic below). It polls every `POLL` seconds:
new bytes are read from the open handle; a file replaced under the same name (a new inode, as a
rotation makes) is first read to its end, then the new one is opened and read from its start; a
file that got shorter (truncated) is read again from its start; a file that is not there (yet,
or for the moment of a rotation) is waited for. The handle stays open between polls, so the
lines written just before a rotation are not lost (on Windows an open reader stops a rotation's
rename; following there is best effort).
"""

from __future__ import annotations

import asyncio
import codecs
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from council.datafolder import DataFolder
from council.errors import ConfigError, HubUnreachable, NotFound

HUB_LOG = "council.log"
POLL = 0.2  # seconds between looks at a followed file
BLOCK = 64 * 1024  # bytes read at a time, backwards from the end, for the last lines
NO_HUB_LOG = "no hub log yet: `./council up` writes logs/council.log"


# --- which file -------------------------------------------------------------------------------


def hub_log(folder: DataFolder) -> Path:
    return folder.logs / HUB_LOG


def seat_log(folder: DataFolder, seat: str) -> Path:
    """The log of the engine that serves `seat`; `NotFound` for a seat council does not have,
    one that runs elsewhere (remote, browser) or one with no engine."""
    rows = _hub_rows(folder)
    if rows is None:
        return folder.logs / f"{_engine_from_config(folder, seat)}.log"
    return folder.logs / f"{_engine_from_rows(folder, rows, seat)}.log"


def _hub_rows(folder: DataFolder) -> list[dict[str, Any]] | None:
    """The running hub's seat rows, or None when no hub answers (then config.toml tells)."""
    from council.client import running_client
    from council.datafolder import running_hub

    if running_hub(folder) is None:
        return None

    async def rows() -> list[dict[str, Any]]:
        async with running_client(folder) as client:
            return await client.seats()

    try:
        return asyncio.run(rows())
    except HubUnreachable:  # none runs, or it does not answer: the stick's files still tell
        return None


def _engine_from_rows(folder: DataFolder, rows: list[dict[str, Any]], seat: str) -> str:
    row = next((row for row in rows if row.get("name") == seat), None)
    if row is None:
        if seat in _configured(folder):  # a disabled seat: its own log from before, if any
            return seat
        raise NotFound(_unknown(seat, [str(row.get("name")) for row in rows]))
    kind = str(row.get("kind") or "local")
    if kind != "local":
        raise NotFound(_elsewhere(seat, kind))
    engine = row.get("engine")
    if not isinstance(engine, str) or not engine:
        reason = row.get("reason") or "it has no engine"
        raise NotFound(f"no log yet for seat {seat!r} ({reason})")
    return engine


def _engine_from_config(folder: DataFolder, seat: str) -> str:
    """The engine's name as the fleet gives it: the first seat of the group `seat` is in."""
    from council.config import load_config
    from council.engine.fleet import groups, plan_seats
    from council.remotes import load_remotes

    config = load_config(folder)
    try:
        remotes = [remote.name for remote in load_remotes(folder)]
    except ConfigError:  # a damaged remotes.toml does not hide the local seats' logs
        remotes = []
    if seat in remotes:
        raise NotFound(_elsewhere(seat, "remote"))
    local = [configured.name for configured in config.seats]
    if seat not in local:
        raise NotFound(_unknown(seat, local + remotes))
    for group in groups(plan_seats(folder, config.enabled_seats)):
        if seat in {planned.config.name for planned in group}:
            return group[0].config.name
    return seat  # disabled, or its model file is missing: a log of its own from before, if any


def _configured(folder: DataFolder) -> set[str]:
    from council.config import load_config

    try:
        return {seat.name for seat in load_config(folder).seats}
    except ConfigError:  # the hub runs on what it read before; its rows are what counts
        return set()


def _unknown(seat: str, names: list[str]) -> str:
    if not names:
        return f"no seat {seat!r}: there are no seats"
    return f"no seat {seat!r}: the seats are {', '.join(names)}"


def _elsewhere(seat: str, kind: str) -> str:
    return f"seat {seat!r} is a {kind} seat: it runs elsewhere and has no log here"


# --- the last lines ----------------------------------------------------------------------------


def last_lines(path: Path, count: int, *, block: int = BLOCK) -> list[str]:
    """The last `count` lines of the file (without their line ends), read from the end."""
    with open(path, "rb") as handle:
        return _decode(_tail_bytes(handle, count, block))


def _tail_bytes(handle: IO[bytes], count: int, block: int) -> bytes:
    """The bytes of the last `count` lines, from the handle's end backwards; the handle is
    left at the end it found."""
    end = handle.seek(0, os.SEEK_END)
    if count <= 0:
        return b""
    position = end
    chunks: list[bytes] = []
    newlines = 0
    # `count` lines begin after the line end before them; a final line end closes the last
    # line rather than starting another, so up to count + 1 line ends are looked for.
    while position > 0 and newlines <= count:
        step = min(block, position)
        position -= step
        handle.seek(position)
        chunk = handle.read(step)
        chunks.append(chunk)
        newlines += chunk.count(b"\n")
    data = b"".join(reversed(chunks))
    handle.seek(end)
    cut = len(data) - 1 if data.endswith(b"\n") else len(data)
    for _ in range(count):
        cut = data.rfind(b"\n", 0, cut)
        if cut < 0:  # fewer lines than asked for: the whole file (position is 0)
            return data
    return data[cut + 1 :]


def _decode(data: bytes) -> list[str]:
    text = data.decode("utf-8", errors="replace")
    lines = text.split("\n")
    if lines[-1] == "":  # the line end of the last line, not an empty line after it
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


# --- following ---------------------------------------------------------------------------------


def follow(
    path: Path,
    count: int,
    *,
    poll: float = POLL,
    sleep: Callable[[float], None] = time.sleep,
    waiting: Callable[[], None] | None = None,
) -> Iterator[str]:
    """The text of the last `count` lines, then each piece of text written to the file after,
    as it comes, forever (the caller stops, e.g. on Ctrl-C). Survives rotation and truncation;
    a file that does not exist yet is waited for (`waiting` is called once, then), and read
    from its start once it does."""
    reader = _Reader(path)
    try:
        text = reader.start(count)
        if text:
            yield text
        elif not reader.found and waiting is not None:
            waiting()
        while True:
            text = reader.poll()
            if text:
                yield text
            else:
                sleep(poll)
    finally:
        reader.close()


class _Reader:
    """One followed file name: the handle open on what it names now, and how far it was read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[bytes] | None = None
        self._identity: tuple[int, int] | None = None
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    @property
    def found(self) -> bool:
        return self._handle is not None

    def start(self, count: int) -> str:
        """The last `count` lines, the handle left at the end; "" when there is no file yet."""
        if not self.open():
            return ""
        assert self._handle is not None  # noqa: S101 - open() says so
        return self.text(_tail_bytes(self._handle, count, BLOCK))

    def open(self) -> bool:
        """Open what the name points to now; False when there is nothing there."""
        try:
            handle = open(self.path, "rb")  # noqa: SIM115 - held open between polls
        except FileNotFoundError:
            return False
        status = os.fstat(handle.fileno())
        self._handle = handle
        self._identity = (status.st_dev, status.st_ino)
        self._decoder.reset()
        return True

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def text(self, data: bytes, *, final: bool = False) -> str:
        return self._decoder.decode(data, final=final)

    def poll(self) -> str:
        """The text written since the last poll, across a rotation or a truncation."""
        if self._handle is None:
            return self.text(self._rest()) if self.open() else ""
        try:
            status = os.stat(self.path)
        except FileNotFoundError:  # moved away: its last lines, then wait for the new one
            return self._drain_and_close()
        if (status.st_dev, status.st_ino) != self._identity:
            return self._drain_and_close() + (self.text(self._rest()) if self.open() else "")
        if status.st_size < self._handle.tell():  # truncated in place: read it from the start
            self._handle.seek(0)
            self._decoder.reset()
        return self.text(self._rest())

    def _rest(self) -> bytes:
        assert self._handle is not None  # noqa: S101 - only called with a file open
        return self._handle.read()

    def _drain_and_close(self) -> str:
        text = self.text(self._rest(), final=True)
        self.close()
        return text
