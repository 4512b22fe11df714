"""Fetching one file so that nothing stops it for good: resume, retry, notice stalls, verify.

Written here rather than left to `huggingface_hub.hf_hub_download`, which (since 1.18) writes
to a temporary file with a random name that it deletes on failure, so a killed or failed pull
starts again from byte 0, and which checks only the size, never the SHA-256. A stick on a
hotel Wi-Fi needs better:

- The bytes go to `downloads/<digest>-<name>.part` in the data folder, beside a small state file
  (`.json`) naming what the bytes are (repository, commit, file, size, SHA-256) and how many of
  them are durable (`checkpoint`: the partial is synced, then the state written, every 32 MiB).
  The next run, from the CLI or the hub, truncates the partial to its checkpoint (bytes past it
  may not have reached the stick before a power cut), hashes what is there, and asks for the
  rest with `Range: bytes=N-`. A server that answers 200 instead of 206 gets the whole file
  again; a `Content-Range` that does not start at N, or names another total, is refused.
- A dropped connection, a reset, a read timeout (the stall: no byte for `stall` seconds) and
  408/429/5xx answers are retried in the same run with exponential backoff, or after the
  server's `Retry-After` when it asks for one that is not absurd; the count starts over
  whenever bytes arrive, so a long download on a flaky link keeps going.
- When every byte is in, the SHA-256 (computed as the bytes arrive) is compared with the
  repository's LFS digest. A mismatch deletes the partial and its state: those bytes are wrong,
  and keeping them would only make the next run wrong too.
- Free space is checked before the first byte, and a full stick while writing stops the pull
  with the partial (up to its last checkpoint) kept for later.
- A lock file stops two processes (`council models pull` and the hub) from writing one partial.

The body is read with urllib3 (which `requests` already brings in) in 1 MiB reads, not with the
project's httpx: httpx hands out the body 64 KiB at a time, each piece a new bytes object to
join, and measured a good deal slower here than urllib3 on the same loopback stand-in
(benchmarks/pull.py). Redirects are followed, and urllib3 drops the Authorization header when a
redirect leaves the host (the Hub sends LFS files to a CDN). The SHA-256 is computed on a thread
of its own, beside the network and the disk (hashlib lets go of the GIL for large buffers).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import queue
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import BinaryIO

import urllib3
from urllib3.exceptions import HTTPError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from council.atomicfile import atomic_write_json
from council.datafolder import lock_exclusively
from council.errors import (
    Conflict,
    CouncilError,
    Forbidden,
    ModelSourceError,
    NotFound,
    PullCancelled,
    StickFull,
)
from council.units import human_size

CHUNK = 1024 * 1024
CHECKPOINT = 32 * 1024 * 1024
STALL_SECONDS = 30.0
MAX_ATTEMPTS = 6  # in a row without a byte arriving
MAX_BACKOFF = 30.0
MAX_RETRY_AFTER = 120.0  # a server asking for longer is told to come back later, by a person
FREE_MARGIN = 16 * 1024 * 1024
RETRIED = {408, 425, 429, 500, 502, 503, 504}
CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
# Retried here, not by urllib3 (which would start again from the request's own Range); its
# redirects are followed, and it drops Authorization when one leaves the host.
REDIRECTS_ONLY = urllib3.Retry(
    total=None, connect=0, read=0, status=0, other=0, redirect=5, raise_on_status=False
)

Progress = Callable[[int, int], None]  # (bytes done, bytes in all)


@dataclass(frozen=True, slots=True)
class Wanted:
    """One file to fetch, as the repository describes it."""

    repo: str
    commit: str
    file: str  # its path in the repository
    size: int
    sha256: str | None
    url: str

    @property
    def key(self) -> str:
        tag = self.sha256 or hashlib.sha256(self.url.encode()).hexdigest()
        return f"{tag[:16]}-{Path(self.file).name}"


@dataclass(frozen=True, slots=True)
class Fetched:
    path: Path  # the verified partial, ready to move
    sha256: str
    resumed_from: int  # bytes already there when this run began
    seconds: float


@dataclass(frozen=True, slots=True)
class State:
    repo: str
    commit: str
    file: str
    size: int
    sha256: str | None
    checkpoint: int

    def same_file(self, wanted: Wanted) -> bool:
        return (self.repo, self.commit, self.file, self.size, self.sha256) == (
            wanted.repo,
            wanted.commit,
            wanted.file,
            wanted.size,
            wanted.sha256,
        )


def partial_paths(downloads: Path, wanted: Wanted) -> tuple[Path, Path, Path]:
    base = downloads / wanted.key
    return (
        base.with_name(base.name + ".part"),
        base.with_name(base.name + ".json"),
        base.with_name(base.name + ".lock"),
    )


def read_state(path: Path) -> State | None:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return State(**{name: raw[name] for name in State.__dataclass_fields__})
    except (OSError, ValueError, KeyError, TypeError):
        return None


def pending(downloads: Path) -> list[State]:
    """Every partial download the folder holds, by its state file."""
    if not downloads.is_dir():
        return []
    found = (read_state(path) for path in sorted(downloads.glob("*.json")))
    return [state for state in found if state is not None]


@contextlib.contextmanager
def _held(lock_path: Path, state_path: Path, what: str) -> Iterator[None]:
    """The partial's lock, for the download; the lock file goes when no state is left."""
    handle = open(lock_path, "a+b")  # noqa: SIM115 - held for the download
    try:
        lock_exclusively(handle)
    except OSError:
        handle.close()
        raise Conflict(f"{what} is being pulled by another council process") from None
    try:
        yield
    finally:
        if not state_path.exists():
            lock_path.unlink(missing_ok=True)  # while held: nobody else is using it
        handle.close()


class _Hasher:
    """A SHA-256 fed on a thread of its own: `update` queues the bytes (immutable, so never
    copied), `hexdigest` waits for the queue to drain. Given a `prefix` (a resumed partial's
    first bytes, already on the stick), the thread reads and hashes those itself first, while
    the download of the rest begins."""

    def __init__(self, prefix: tuple[Path, int] | None = None) -> None:
        self._digest = hashlib.sha256()
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=64)  # 64 MiB at most
        self._prefix = prefix
        self.error: OSError | None = None
        self._thread = threading.Thread(target=self._run, name="pull-sha256", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        if self._prefix is not None:
            path, left = self._prefix
            try:
                with open(path, "rb") as handle:
                    while left and (piece := handle.read(min(CHUNK, left))):
                        self._digest.update(piece)
                        left -= len(piece)
            except OSError as exc:
                self.error = exc  # the digest is then wrong: the check at the end says so
        while (data := self._queue.get()) is not None:
            self._digest.update(data)

    def update(self, data: bytes) -> None:
        self._queue.put(data)

    def hexdigest(self) -> str:
        self.close()
        return self._digest.hexdigest()

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()


class _Writer:
    """The partial file, its running SHA-256 and its checkpoints.

    A checkpoint every CHECKPOINT bytes is synced on a thread of its own while the download
    goes on (a stick's fsync takes long, and the network need not wait for it); the state
    file names only what that sync covered. `checkpoint()` is the synchronous one (the end, a
    stop, an error)."""

    def __init__(self, part: Path, state_path: Path, wanted: Wanted) -> None:
        self.part, self.state_path, self.wanted = part, state_path, wanted
        self.offset = 0
        self.durable = 0
        self._syncing: threading.Thread | None = None
        self._sync_error: OSError | None = None
        self.handle: BinaryIO = self._open()

    def _open(self) -> BinaryIO:
        keep = _kept(self.part, self.state_path, self.wanted)
        handle = open(self.part, "ab")  # noqa: SIM115 - closed by close()
        handle.truncate(keep)
        self.hasher = _Hasher((self.part, keep) if keep else None)
        self.offset = self.durable = keep
        self._save(keep)
        return handle

    def restart(self) -> None:
        self._join()
        self.handle.truncate(0)
        self.hasher.close()
        self.hasher = _Hasher()
        self.offset = self.durable = 0
        self._save(0)

    def write(self, data: bytes) -> None:
        self.handle.write(data)
        self.hasher.update(data)
        self.offset += len(data)
        if self.offset - self.durable >= CHECKPOINT and not self._sync_running():
            self.handle.flush()
            self._syncing = threading.Thread(
                target=self._sync_to, args=(self.offset,), name="pull-fsync", daemon=True
            )
            self._syncing.start()

    def _sync_running(self) -> bool:
        if self._syncing is not None and not self._syncing.is_alive():
            self._join()  # raises what the last background sync met (a full stick)
        return self._syncing is not None

    def _sync_to(self, target: int) -> None:
        try:
            os.fsync(self.handle.fileno())
            self._save(target)
            self.durable = target
        except OSError as exc:
            self._sync_error = exc

    def _join(self) -> None:
        if self._syncing is not None:
            self._syncing.join()
            self._syncing = None
        if self._sync_error is not None:
            error, self._sync_error = self._sync_error, None
            raise error

    def checkpoint(self) -> None:
        self._join()
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self._save(self.offset)
        self.durable = self.offset

    def _save(self, checkpoint: int) -> None:
        w = self.wanted
        state = State(w.repo, w.commit, w.file, w.size, w.sha256, checkpoint)
        atomic_write_json(self.state_path, asdict(state))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            if self.offset > self.durable:
                self.checkpoint()
        with contextlib.suppress(OSError):
            self._join()
        self.hasher.close()
        self.handle.close()

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self._join()
        self.hasher.close()
        self.handle.close()
        self.part.unlink(missing_ok=True)
        self.state_path.unlink(missing_ok=True)


def retry_after(response: urllib3.BaseHTTPResponse) -> float | None:
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def pool(headers: dict[str, str]) -> urllib3.PoolManager:
    """Connections for fetching bodies, with council's headers (the token's, when set)."""
    import certifi

    return urllib3.PoolManager(headers=headers, ca_certs=certifi.where(), maxsize=2)


def fetch(
    wanted: Wanted,
    downloads: Path,
    client: urllib3.PoolManager,
    *,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
    stall: float = STALL_SECONDS,
) -> Fetched:
    """Fetch `wanted` into its partial file, resuming one a previous run left; verify it."""
    stop = stop or threading.Event()
    downloads.mkdir(parents=True, exist_ok=True)
    part, state_path, lock_path = partial_paths(downloads, wanted)
    with _held(lock_path, state_path, wanted.file):
        _check_room(downloads, wanted.size - _kept(part, state_path, wanted), wanted)
        try:
            writer = _Writer(part, state_path, wanted)
        except OSError as exc:
            raise _disk_error(exc, wanted, 0) from None
        started, resumed_from = time.monotonic(), writer.offset
        try:
            _transfer(
                wanted, writer=writer, client=client, progress=progress, stop=stop, stall=stall
            )
            writer.checkpoint()
        except OSError as exc:
            writer.close()
            raise _disk_error(exc, wanted, writer.durable) from None
        except BaseException:
            writer.close()  # a checkpoint of what arrived: Ctrl-C loses nothing
            raise
        digest = writer.hasher.hexdigest()
        if wanted.sha256 is not None and digest != wanted.sha256.lower():
            writer.discard()
            raise ModelSourceError(
                f"{wanted.file}: the bytes received have SHA-256 {digest[:16]}…, the repository "
                f"says {wanted.sha256[:16]}…; the download was deleted (run the pull again)"
            )
        writer.handle.close()
        state_path.unlink(missing_ok=True)
    return Fetched(part, digest, resumed_from, time.monotonic() - started)


def _kept(part: Path, state_path: Path, wanted: Wanted) -> int:
    """The bytes of an earlier run a resume keeps (what its state says was synced)."""
    state = read_state(state_path)
    if state is None or not state.same_file(wanted):
        return 0
    try:
        return min(state.checkpoint, part.stat().st_size, wanted.size)
    except OSError:
        return 0


def _check_room(downloads: Path, needed: int, wanted: Wanted) -> None:
    free = shutil.disk_usage(downloads).free
    if needed + FREE_MARGIN > free:
        raise StickFull(
            f"{wanted.file} needs {human_size(needed)} more but the stick has "
            f"{human_size(free)} free: make room and run the pull again"
        )


def _disk_error(exc: OSError, wanted: Wanted, kept: int) -> CouncilError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StickFull(
            f"the stick filled up while pulling {wanted.file}: {human_size(kept)} of "
            f"{human_size(wanted.size)} are kept; make room and run the pull again to resume"
        )
    if exc.errno == errno.EROFS:
        return StickFull(f"the stick turned read-only while pulling {wanted.file}")
    return CouncilError(f"cannot write the download of {wanted.file}: {exc.strerror or exc}")


def _transfer(
    wanted: Wanted,
    *,
    writer: _Writer,
    client: urllib3.PoolManager,
    progress: Progress | None,
    stop: threading.Event,
    stall: float,
) -> None:
    failures = 0
    last_error = ""
    timeout = urllib3.Timeout(connect=min(stall, 15.0), read=stall)
    while writer.offset < wanted.size or wanted.size == 0:
        if stop.is_set():
            raise PullCancelled(f"stopped pulling {wanted.file}")
        before = writer.offset
        wait: float | None = None
        try:
            wait = _one_request(
                wanted, writer=writer, client=client, progress=progress, stop=stop, timeout=timeout
            )
            if wait is None:
                if writer.offset >= wanted.size:
                    return
                last_error = "the connection closed before the end of the file"
        except Urllib3Timeout:
            last_error = f"stalled: no bytes for {stall:.0f} s"
        except HTTPError as exc:
            reason = getattr(exc, "reason", None)
            if isinstance(reason, Urllib3Timeout):
                last_error = f"stalled: no bytes for {stall:.0f} s"
            else:
                last_error = f"connection lost ({type(reason or exc).__name__})"
        if writer.offset > before:
            failures = 0  # bytes arrived: a fresh run of patience
        failures += 1
        if failures >= MAX_ATTEMPTS:
            raise ModelSourceError(
                f"giving up on {wanted.file} after {failures} tries: {last_error}; "
                f"{human_size(writer.durable)} are kept: run the pull again to resume"
            )
        if wait is not None:
            last_error = f"the server asked to wait {wait:.0f} s"
        delay = wait if wait is not None else min(MAX_BACKOFF, 0.5 * 2 ** (failures - 1))
        if stop.wait(delay):
            raise PullCancelled(f"stopped pulling {wanted.file}")


def _one_request(
    wanted: Wanted,
    *,
    writer: _Writer,
    client: urllib3.PoolManager,
    progress: Progress | None,
    stop: threading.Event,
    timeout: urllib3.Timeout,
) -> float | None:
    """One GET from the current offset. Returns seconds to wait before retrying (the server
    asked, or a retried status), or None when the body ended (whole, or cut short)."""
    headers = {**client.headers, **({"Range": f"bytes={writer.offset}-"} if writer.offset else {})}
    response = client.request(
        "GET",
        wanted.url,
        headers=headers,
        timeout=timeout,
        preload_content=False,
        decode_content=False,
        retries=REDIRECTS_ONLY,
    )
    try:
        status = response.status
        if status in RETRIED:
            return _wait_asked(response, wanted, writer)
        _refused(response, wanted)
        if status == 416 or (status == 200 and writer.offset):
            writer.restart()  # the server will not resume from here: take it whole
            if status == 416:
                return 0.0
        elif status == 206:
            _check_content_range(response, writer.offset, wanted)
        elif status != 200:
            raise ModelSourceError(f"{_host(wanted.url)} answered {status} for {wanted.file}")
        # read1: what the socket has, up to CHUNK, so a cut loses nothing received
        while chunk := response.read1(CHUNK):
            if writer.offset + len(chunk) > wanted.size:
                writer.restart()
                raise ModelSourceError(
                    f"{wanted.file} is longer than the {wanted.size} bytes the repository lists"
                )
            writer.write(chunk)
            if progress is not None:
                progress(writer.offset, wanted.size)
            if stop.is_set():
                raise PullCancelled(f"stopped pulling {wanted.file}")
    finally:
        response.release_conn()
    return None


def _wait_asked(response: urllib3.BaseHTTPResponse, wanted: Wanted, writer: _Writer) -> float:
    asked = retry_after(response)
    if asked is not None and asked > MAX_RETRY_AFTER:
        raise ModelSourceError(
            f"{_host(wanted.url)} is rate-limiting this machine and asks to wait "
            f"{asked:.0f} s: run the pull again later ({human_size(writer.durable)} kept)"
        )
    return asked if asked is not None else 0.5


def _refused(response: urllib3.BaseHTTPResponse, wanted: Wanted) -> None:
    status = response.status
    if status in (401, 403):
        gated = response.headers.get("X-Error-Code") == "GatedRepo"
        raise Forbidden(
            f"{wanted.repo} is {'gated' if gated else 'not open to this request'} (answer "
            f"{status}): accept its terms on the Hub and set HF_TOKEN to that account's token"
        )
    if status == 404:
        raise NotFound(f"{wanted.repo} has no file {wanted.file} at {wanted.commit[:12]}")


def _check_content_range(response: urllib3.BaseHTTPResponse, offset: int, wanted: Wanted) -> None:
    match = CONTENT_RANGE.match(response.headers.get("Content-Range", "").strip())
    if match is None or int(match[1]) != offset:
        raise ModelSourceError(
            f"{_host(wanted.url)} resumed {wanted.file} at the wrong place "
            f"({response.headers.get('Content-Range', 'no Content-Range')!r}, wanted byte {offset})"
        )
    if match[3] != "*" and int(match[3]) != wanted.size:
        raise ModelSourceError(
            f"{wanted.file} is {match[3]} bytes on the server but the repository lists "
            f"{wanted.size}: it changed; run the pull again"
        )


def _host(url: str) -> str:
    return urllib3.util.parse_url(url).host or url
