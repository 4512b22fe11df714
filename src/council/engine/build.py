"""Building llama-server from the llama.cpp sources inside a pinned PyPI sdist.

The llama-cpp-python sdist vendors a complete llama.cpp tree and PyPI is one of the few places
this machine (and many locked-down laptops) can reach, so it is our source of truth: fetched with
pip, checked against a pinned SHA-256 *before* anything is unpacked, and unpacked with tarfile's
`data` filter so a hostile archive cannot write outside the build folder.

Everything lands in `build/engine/` of the project: `downloads/` (the sdist), `src/llama.cpp/`,
and `<os>-<arch>/` (the CMake tree, binaries in `bin/`, linked with `$ORIGIN` rpaths so the
folder keeps working when the stick is mounted elsewhere).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from council.datafolder import project_root
from council.engine.binary import MANIFEST, executable_name, platform_tag, read_manifest
from council.errors import EngineBuildError

SDIST_PACKAGE = "llama-cpp-python"
SDIST_VERSION = "0.3.36"
SDIST_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
LLAMA_CPP_COMMIT = "0c1e57098"  # the llama.cpp commit this sdist vendors (its CHANGELOG says so)
# llama.cpp renamed rpc-server to ggml-rpc-server; it is the same RPC worker.
TARGETS = ("llama-server", "ggml-rpc-server", "llama-gguf-split", "llama-tokenize")

_COMMON_FLAGS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=ON",
    "-DCMAKE_BUILD_RPATH_USE_ORIGIN=ON",
    "-DGGML_RPC=ON",
    "-DLLAMA_OPENSSL=ON",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    # llama-server's own web UI would otherwise be downloaded at build time; council has its own.
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    f"-DLLAMA_BUILD_COMMIT={LLAMA_CPP_COMMIT}",
)
_VARIANT_FLAGS = {
    "native": ("-DGGML_NATIVE=ON", "-DGGML_BACKEND_DL=OFF", "-DGGML_CPU_ALL_VARIANTS=OFF"),
    "portable": ("-DGGML_NATIVE=OFF", "-DGGML_BACKEND_DL=ON", "-DGGML_CPU_ALL_VARIANTS=ON"),
}
_PERCENT = re.compile(r"^\[\s*(\d+)%\]\s*(.*)")

Report = Callable[[str], None]
Progress = Callable[[int, str], None]


@dataclass(frozen=True, slots=True)
class BuildLayout:
    root: Path

    @property
    def downloads(self) -> Path:
        return self.root / "downloads"

    @property
    def source(self) -> Path:
        return self.root / "src" / "llama.cpp"

    @property
    def tree(self) -> Path:
        return self.root / platform_tag()

    @property
    def bin(self) -> Path:
        return self.tree / "bin"

    @property
    def log(self) -> Path:
        return self.root / "build.log"

    @property
    def sdist(self) -> Path:
        return self.downloads / f"{SDIST_PACKAGE.replace('-', '_')}-{SDIST_VERSION}.tar.gz"


def default_layout() -> BuildLayout:
    return BuildLayout(project_root() / "build" / "engine")


def cmake_flags(variant: str) -> list[str]:
    return [*_COMMON_FLAGS, *_VARIANT_FLAGS[variant]]


def is_built(layout: BuildLayout, variant: str) -> bool:
    manifest = read_manifest(layout.bin / MANIFEST)
    return (
        manifest is not None
        and manifest.get("variant") == variant
        and manifest.get("sdist_sha256") == SDIST_SHA256
        and all((layout.bin / executable_name(target)).is_file() for target in TARGETS)
    )


def build_engine(
    layout: BuildLayout,
    *,
    portable: bool = False,
    jobs: int | None = None,
    force: bool = False,
    report: Report = print,
    progress: Progress = lambda percent, line: None,
) -> Path:
    """Fetch, verify, unpack, configure and compile; returns the llama-server path."""
    variant = "portable" if portable else "native"
    server = layout.bin / executable_name("llama-server")
    if not force and is_built(layout, variant):
        report(f"llama-server ({variant}) is already built: {server}")
        return server
    _require_tools()
    sdist = fetch_sdist(layout, report)
    unpack_sources(sdist, layout, report)
    layout.tree.mkdir(parents=True, exist_ok=True)
    (layout.bin / MANIFEST).unlink(missing_ok=True)  # a half-done build must not look finished
    jobs = jobs or os.cpu_count() or 1
    with open(layout.log, "w", encoding="utf-8") as log:
        report(f"configuring llama.cpp {LLAMA_CPP_COMMIT} ({variant}); full log: {layout.log}")
        configure = [
            "cmake",
            "-S",
            str(layout.source),
            "-B",
            str(layout.tree),
            *cmake_flags(variant),
        ]
        _run_logged(configure, log, layout.log, progress=None)
        report(f"compiling {', '.join(TARGETS)} with {jobs} jobs (about 6 minutes on 2 cores)")
        compile_ = ["cmake", "--build", str(layout.tree), "--target", *TARGETS, "-j", str(jobs)]
        _run_logged(compile_, log, layout.log, progress=progress)
    _write_manifest(layout, variant)
    report(f"built {server}")
    return server


def fetch_sdist(layout: BuildLayout, report: Report) -> Path:
    """Download the pinned sdist with pip (honouring the user's index and proxy settings)."""
    if layout.sdist.is_file() and sha256_of(layout.sdist) == SDIST_SHA256:
        return layout.sdist
    layout.downloads.mkdir(parents=True, exist_ok=True)
    report(f"downloading {SDIST_PACKAGE}=={SDIST_VERSION} (source) from the package index")
    with tempfile.TemporaryDirectory(dir=layout.downloads) as temp:
        command = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
            "--disable-pip-version-check", "--quiet", "--dest", temp,
            f"{SDIST_PACKAGE}=={SDIST_VERSION}",
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        fetched = sorted(Path(temp).glob("*.tar.gz"))
        if result.returncode != 0 or not fetched:
            last = (result.stderr.strip().splitlines() or ["no archive was downloaded"])[-1]
            raise EngineBuildError(f"could not download {SDIST_PACKAGE}=={SDIST_VERSION}: {last}")
        verify_sdist(fetched[0])
        os.replace(fetched[0], layout.sdist)
    return layout.sdist


def verify_sdist(path: Path) -> None:
    digest = sha256_of(path)
    if digest != SDIST_SHA256:
        raise EngineBuildError(
            f"{path.name} has sha256 {digest}, expected {SDIST_SHA256}: refusing to unpack it"
        )


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def unpack_sources(sdist: Path, layout: BuildLayout, report: Report) -> None:
    """Unpack only vendor/llama.cpp, into a temp folder first, then rename into place."""
    marker = layout.source / ".council-sdist-sha256"
    if marker.is_file() and marker.read_text().strip() == SDIST_SHA256:
        return
    verify_sdist(sdist)
    report("unpacking llama.cpp sources")
    prefix = f"{SDIST_PACKAGE.replace('-', '_')}-{SDIST_VERSION}/vendor/llama.cpp/"
    layout.source.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=layout.source.parent) as temp:
        with tarfile.open(sdist, "r:gz") as archive:
            members = [m for m in archive.getmembers() if m.name.startswith(prefix)]
            if not members:
                raise EngineBuildError(f"{sdist.name} holds no vendor/llama.cpp tree")
            archive.extractall(temp, members=members, filter="data")
        unpacked = Path(temp) / prefix
        (unpacked / marker.name).write_text(SDIST_SHA256 + "\n")
        shutil.rmtree(layout.source, ignore_errors=True)
        os.replace(unpacked, layout.source)


def _require_tools() -> None:
    missing = [tool for tool in ("cmake", "c++") if shutil.which(tool) is None]
    if missing:
        raise EngineBuildError(
            f"building llama.cpp needs {' and '.join(missing)}: on Debian/Ubuntu run "
            "`sudo apt-get install cmake build-essential libssl-dev`"
        )


def _run_logged(command: list[str], log: TextIO, log_path: Path, progress: Progress | None) -> None:
    """Run a build step, keeping its output in the log and its last lines for the error."""
    tail: deque[str] = deque(maxlen=15)
    log.write("$ " + " ".join(command) + "\n")
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    ) as process:
        for line in process.stdout or ():
            log.write(line)
            tail.append(line.rstrip())
            match = _PERCENT.match(line)
            if progress is not None and match:
                progress(int(match.group(1)), match.group(2).strip())
    if process.returncode != 0:
        details = "\n".join(f"  {line}" for line in tail)
        raise EngineBuildError(
            f"`{' '.join(command[:2])}` failed (exit {process.returncode}); last lines:\n"
            f"{details}\nfull log: {log_path}"
        )


def _write_manifest(layout: BuildLayout, variant: str) -> None:
    manifest = {
        "sdist": f"{SDIST_PACKAGE}=={SDIST_VERSION}",
        "sdist_sha256": SDIST_SHA256,
        "commit": LLAMA_CPP_COMMIT,
        "variant": variant,
        "features": sorted(["openssl", "rpc", "gguf-split", "tokenize", variant]),
        "cmake_flags": cmake_flags(variant),
    }
    (layout.bin / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
