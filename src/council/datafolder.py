"""The data folder: everything council keeps lives here, so the stick is the state.

Resolution order: `--data DIR`, then `COUNCIL_DATA`, then `council-data/` beside the project
(portable mode). Only the portable default is created on demand; a folder the user names must
already exist, so a typo never scatters state somewhere unexpected.

Nothing stored inside refers to an absolute path: model paths in `config.toml` are relative to
`models/`, logs are named by seat. Copying the folder elsewhere (another laptop, another mount
point) keeps everything working.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from council.errors import DataFolderError
from council.settings import ENV_DATA, Environment, data_choice

WRITE_PROBE = 64 * 1024  # bytes the start-up check writes: more than a stick with no room has

PORTABLE_NAME = "council-data"
SUBFOLDERS = ("models", "engines", "logs", "tls", "downloads")


def project_root() -> Path:
    """The checkout council runs from (the folder holding pyproject.toml), else the cwd."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").is_file() and (parent / "src" / "council").is_dir():
            return parent
    return Path.cwd()


@dataclass(frozen=True, slots=True)
class DataFolder:
    root: Path

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def engines(self) -> Path:
        return self.root / "engines"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def tls(self) -> Path:
        return self.root / "tls"

    @property
    def downloads(self) -> Path:
        """Pulls in progress: partial files and their state, moved into models/ once verified."""
        return self.root / "downloads"

    @property
    def database(self) -> Path:
        return self.root / "council.db"

    @property
    def config_file(self) -> Path:
        return self.root / "config.toml"

    def prepare(self) -> None:
        """Check the folder is usable and create its layout; raise DataFolderError if not."""
        self.ensure_exists()
        self._check_writable()
        for name in SUBFOLDERS:
            (self.root / name).mkdir(exist_ok=True)

    def ensure_exists(self) -> None:
        """Enough for commands that only read: the folder must be there."""
        if not self.root.exists():
            raise DataFolderError(
                f"data folder {self.root} does not exist: create it, or leave out --data and "
                f"{ENV_DATA} to use the portable folder beside council"
            )
        if not self.root.is_dir():
            raise DataFolderError(f"data folder {self.root} is not a folder")

    def _check_writable(self) -> None:
        # os.access() lies for root and for read-only mounts; a real write is the only honest test.
        # Real bytes: an empty file needs no free block, so a full stick would pass.
        probe = self.root / f".write-test-{secrets.token_hex(4)}"
        try:
            try:
                probe.write_bytes(secrets.token_bytes(WRITE_PROBE))
            finally:
                probe.unlink(missing_ok=True)
        except OSError as exc:
            raise DataFolderError(
                f"data folder {self.root} is not writable ({exc.strerror or exc}): "
                "is the stick read-only or full?"
            ) from None


def resolve_data_folder(explicit: Path | None = None, env: Environment | None = None) -> DataFolder:
    """Pick the data folder by the documented order; the portable default is created."""
    chosen = data_choice(explicit, Environment.read() if env is None else env)
    if chosen.value is not None:
        return DataFolder(chosen.value.expanduser().absolute())
    portable = project_root() / PORTABLE_NAME
    try:
        portable.mkdir(exist_ok=True)
    except OSError as exc:
        raise DataFolderError(f"cannot create data folder {portable}: {exc.strerror}") from None
    return DataFolder(portable)


class HubLock:
    """One hub per data folder: an exclusive lock on `council.lock`.

    The operating system drops the lock when the holder dies, even by `kill -9`, so a stale lock
    never blocks a restart. The file also records the hub's engine PIDs, which lets the next hub
    stop engines a dead one left behind where the kernel could not (no PR_SET_PDEATHSIG outside
    Linux).
    """

    def __init__(self, folder: DataFolder) -> None:
        self.path = folder.root / "council.lock"
        self._handle: BinaryIO | None = None
        self._record: dict[str, object] = {}

    def acquire(self) -> list[dict[str, object]]:
        """Take the lock; return the engines the previous holder recorded."""
        handle = open(self.path, "a+b")  # noqa: SIM115 - held open for the hub's lifetime
        try:
            lock_exclusively(handle)
        except OSError:
            handle.seek(0)
            holder = _parse_record(handle.read()).get("pid", "?")
            handle.close()
            raise DataFolderError(
                f"council is already running on {self.root_name} (pid {holder}): stop it first, "
                "or use another data folder"
            ) from None
        handle.seek(0)
        previous = _parse_record(handle.read()).get("engines", [])
        self._handle = handle
        self.record(engines=[])
        return (
            [item for item in previous if isinstance(item, dict)]
            if isinstance(previous, list)
            else []
        )

    @property
    def root_name(self) -> str:
        return str(self.path.parent)

    def record(self, **fields: object) -> None:
        """Update what the file says about this hub: `engines`, and `url` once it serves."""
        if self._handle is None:
            return
        self._record.update(fields, pid=os.getpid())
        self._handle.seek(0)
        self._handle.truncate()
        self._handle.write(json.dumps(self._record).encode())
        self._handle.flush()

    def release(self) -> None:
        if self._handle is not None:
            self._record.clear()
            self.record()
            self._handle.close()  # closing drops the lock
            self._handle = None


def running_hub(folder: DataFolder) -> dict[str, object] | None:
    """What the hub serving this data folder recorded (its `url`), or None if none runs."""
    path = folder.root / "council.lock"
    if not path.exists():
        return None
    with open(path, "rb") as handle:
        try:
            lock_exclusively(handle)
        except OSError:  # held: a hub is running
            return _parse_record(handle.read())
    return None  # we could take the lock, so nobody holds it (closing the file released it)


def lock_exclusively(handle: BinaryIO) -> None:
    if sys.platform == "win32":
        import msvcrt

        msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
    else:
        import fcntl

        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


def _parse_record(data: bytes) -> dict[str, object]:
    try:
        record = json.loads(data or b"{}")
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}
