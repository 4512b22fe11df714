"""The data folder: everything council keeps lives here, so the stick is the state.

Resolution order: `--data DIR`, then `COUNCIL_DATA`, then `council-data/` beside the project
(portable mode). Only the portable default is created on demand; a folder the user names must
already exist, so a typo never scatters state somewhere unexpected.

Nothing stored inside refers to an absolute path: model paths in `config.toml` are relative to
`models/`, logs are named by seat. Copying the folder elsewhere (another laptop, another mount
point) keeps everything working.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from council.errors import DataFolderError

ENV_VAR = "COUNCIL_DATA"
PORTABLE_NAME = "council-data"
SUBFOLDERS = ("models", "engines", "logs", "tls")


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
    def database(self) -> Path:
        return self.root / "council.db"

    @property
    def config_file(self) -> Path:
        return self.root / "config.toml"

    def prepare(self) -> None:
        """Check the folder is usable and create its layout; raise DataFolderError if not."""
        if not self.root.exists():
            raise DataFolderError(
                f"data folder {self.root} does not exist: create it, or leave out --data and "
                f"{ENV_VAR} to use the portable folder beside council"
            )
        if not self.root.is_dir():
            raise DataFolderError(f"data folder {self.root} is not a folder")
        self._check_writable()
        for name in SUBFOLDERS:
            (self.root / name).mkdir(exist_ok=True)

    def _check_writable(self) -> None:
        # os.access() lies for root and for read-only mounts; a real write is the only honest test.
        probe = self.root / f".write-test-{secrets.token_hex(4)}"
        try:
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise DataFolderError(
                f"data folder {self.root} is not writable ({exc.strerror or exc}): "
                "is the stick read-only or full?"
            ) from None


def resolve_data_folder(explicit: Path | None = None) -> DataFolder:
    """Pick the data folder by the documented order; the portable default is created."""
    if explicit is not None:
        return DataFolder(explicit.expanduser().absolute())
    from_env = os.environ.get(ENV_VAR)
    if from_env:
        return DataFolder(Path(from_env).expanduser().absolute())
    portable = project_root() / PORTABLE_NAME
    try:
        portable.mkdir(exist_ok=True)
    except OSError as exc:
        raise DataFolderError(f"cannot create data folder {portable}: {exc.strerror}") from None
    return DataFolder(portable)
