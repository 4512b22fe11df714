"""Building llama-server from the llama.cpp sources inside a pinned PyPI sdist.

The llama-cpp-python sdist vendors a complete llama.cpp tree and PyPI is one of the few places
this machine (and many locked-down laptops) can reach, so it is our source of truth: fetched with
pip, checked against a pinned SHA-256 *before* anything is unpacked, and unpacked with tarfile's
`data` filter so a hostile archive cannot write outside the build folder.

Everything lands in `build/engine/` of the project: `downloads/` (the sdist), `src/llama.cpp/`,
`<os>-<arch>/` (the CMake tree, binaries in `bin/`, linked with `$ORIGIN` rpaths so the
folder keeps working when the stick is mounted elsewhere) and `selftest/` (its test models).

A build is finished only once it has passed the self-test (`selftest.py`) on this CPU; when the
engine dies on a signal, `ladder.py` finds the build that runs, and the manifest says what was
dropped and why. A finished build on a stick that moved to another CPU is tested again there.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from council.atomicfile import atomic_write_json
from council.datafolder import project_root
from council.engine import cpu
from council.engine.binary import (
    MANIFEST,
    executable_name,
    platform_tag,
    read_manifest,
)
from council.engine.ladder import Dropped, Settled, settle
from council.engine.selftest import SelfTest, measure_speed, run_selftest, write_models
from council.errors import EngineBuildError, PackageError
from council.packages import pip_download, sha256_of, verify

SDIST_PACKAGE = "llama-cpp-python"
SDIST_VERSION = "0.3.36"
SDIST_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
LLAMA_CPP_COMMIT = "0c1e57098"  # the llama.cpp commit this sdist vendors (its CHANGELOG says so)
# llama.cpp renamed rpc-server to ggml-rpc-server; it is the same RPC worker.
TARGETS = (
    "llama-server",
    "ggml-rpc-server",
    "llama-gguf-split",
    "llama-tokenize",
    "llama-quantize",
)

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
    def selftest(self) -> Path:
        return self.root / "selftest"

    @property
    def excluded(self) -> Path:
        """Where a portable build's CPU variants that crash here are moved, out of ggml's sight."""
        return self.bin / "excluded"

    @property
    def sdist(self) -> Path:
        return self.downloads / f"{SDIST_PACKAGE.replace('-', '_')}-{SDIST_VERSION}.tar.gz"


def default_layout() -> BuildLayout:
    return BuildLayout(project_root() / "build" / "engine")


def cmake_flags(variant: str, features: tuple[str, ...] | None = None) -> list[str]:
    """The configure flags; `features` (ggml option names) replaces -march=native when given."""
    if features is None or variant != "native":
        return [*_COMMON_FLAGS, *_VARIANT_FLAGS[variant]]
    return [
        *_COMMON_FLAGS,
        *cpu.cmake_feature_flags(features),
        "-DGGML_BACKEND_DL=OFF",
        "-DGGML_CPU_ALL_VARIANTS=OFF",
    ]


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
    """Fetch, verify, unpack, configure, compile and self-test; returns the llama-server path."""
    try:
        return _build(
            layout, portable=portable, jobs=jobs, force=force, report=report, progress=progress
        )
    except OSError as exc:  # a full or read-only disk: one line, not a traceback
        where = f" {exc.filename}" if exc.filename else ""
        raise EngineBuildError(
            f"the engine build could not write{where}: {exc.strerror or exc}"
        ) from None


def _build(
    layout: BuildLayout,
    *,
    portable: bool,
    jobs: int | None,
    force: bool,
    report: Report,
    progress: Progress,
) -> Path:
    variant = "portable" if portable else "native"
    server = layout.bin / executable_name("llama-server")
    tree = _Tree(layout, variant, jobs or os.cpu_count() or 1, progress)
    if not force and is_built(layout, variant):
        manifest = read_manifest(layout.bin / MANIFEST) or {}
        if passed_here(manifest):
            report(f"llama-server ({variant}) is already built: {server}")
            return server
        report("llama-server is built but was never tested on this CPU: running its self-test")
        _finish(tree, report)
        return server
    _require_tools()
    sdist = fetch_sdist(layout, report)
    unpack_sources(sdist, layout, report)
    layout.tree.mkdir(parents=True, exist_ok=True)
    (layout.bin / MANIFEST).unlink(missing_ok=True)  # a half-done build must not look finished
    _restore_excluded(layout)
    report(f"configuring llama.cpp {LLAMA_CPP_COMMIT} ({variant}); full log: {layout.log}")
    report(f"compiling {', '.join(TARGETS)} with {tree.jobs} jobs (about 6 minutes on 2 cores)")
    tree.compile(None, fresh_log=True)
    _finish(tree, report)
    report(f"built {server}")
    return server


def passed_here(manifest: dict[str, object]) -> bool:
    """True when the manifest holds a passed self-test of this build on this CPU."""
    tests = manifest.get("selftests")
    if not isinstance(tests, dict):
        return False
    result = SelfTest.from_dict(tests.get(cpu.cpu_fingerprint()))
    return result is not None and result.ok


def _finish(tree: _Tree, report: Report) -> None:
    report("self-testing the engine on quantized weights (Q4_0, Q4_1, Q8_0, Q4_K, Q6_K)")
    settled = (
        _settle_portable(tree, report)
        if tree.variant == "portable"
        else settle(tree, tree.native, report)
    )
    if settled.note:
        report(settled.note)
    report(f"self-test {settled.selftest.summary()}")
    _write_manifest(tree, settled)


class _Tree:
    """The CMake tree as the ladder sees it: rebuild with a feature set, test, time."""

    def __init__(self, layout: BuildLayout, variant: str, jobs: int, progress: Progress) -> None:
        self.layout, self.variant, self.jobs, self.progress = layout, variant, jobs, progress
        self.native = cpu.native_features() if variant == "native" else ()
        self.server = layout.bin / executable_name("llama-server")

    def compile(self, features: tuple[str, ...] | None, *, fresh_log: bool = False) -> None:
        """Configure and build; `features` None means -march=native."""
        with open(self.layout.log, "w" if fresh_log else "a", encoding="utf-8") as log:
            configure = [
                "cmake",
                "-S",
                str(self.layout.source),
                "-B",
                str(self.layout.tree),
                *cmake_flags(self.variant, features),
            ]
            _run_logged(configure, log, self.layout.log, progress=None)
            compile_ = [
                "cmake",
                "--build",
                str(self.layout.tree),
                "--target",
                *TARGETS,
                "-j",
                str(self.jobs),
            ]
            _run_logged(compile_, log, self.layout.log, progress=self.progress)

    def rebuild(self, features: tuple[str, ...] | None) -> None:
        self.compile(features)

    def test(self, args: tuple[str, ...]) -> SelfTest:
        return run_selftest(self.server, args, models=write_models(self.layout.selftest))

    def speed(self, args: tuple[str, ...]) -> float:
        return measure_speed(self.server, args, model=speed_model(self.layout.selftest))


def speed_model(folder: Path) -> Path:
    """A Q4_0 demo model large enough (about 13M parameters) for tokens/s to mean something."""
    from council.models.demo import DemoShape, write_demo_model

    path = folder / "speed-v1-Q4_0.gguf"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        shape = DemoShape(
            embedding_length=512,
            block_count=4,
            feed_forward_length=1536,
            head_count=8,
            head_count_kv=4,
        )
        write_demo_model(
            path, name="speed test", shape=shape, quantization="Q4_0", context_length=512
        )
    return path


def _settle_portable(tree: _Tree, report: Report) -> Settled:
    """A portable build loads the best CPU variant ggml scores for this CPU; a variant that
    crashes is moved out of its sight and the next best is tested, down to the baseline."""
    dropped: list[Dropped] = []
    while True:
        result = tree.test(())
        crash, variant = result.crashed, result.cpu_backend
        if result.ok or crash is None or variant is None:
            break
        report(f"the {variant} CPU variant was {crash.reason}; excluding it on this machine")
        dropped.append(Dropped(variant, (), f"{crash.reason} on {crash.format}"))
        tree.layout.excluded.mkdir(exist_ok=True)
        os.replace(tree.layout.bin / variant, tree.layout.excluded / variant)
    if not result.ok:
        raise EngineBuildError(f"the engine self-test {result.summary()}")
    note = f"CPU variants that crash here, excluded: {', '.join(d.name for d in dropped)}"
    return Settled(None, result, dropped=tuple(dropped), note=note if dropped else "")


def _restore_excluded(layout: BuildLayout) -> None:
    """A fresh build starts with every variant: the new one is tested from scratch."""
    if layout.excluded.is_dir():
        for item in layout.excluded.iterdir():
            os.replace(item, layout.bin / item.name)
        layout.excluded.rmdir()


def fetch_sdist(layout: BuildLayout, report: Report) -> Path:
    """Download the pinned sdist with pip (honouring the user's index and proxy settings)."""
    if layout.sdist.is_file() and sha256_of(layout.sdist) == SDIST_SHA256:
        return layout.sdist
    report(f"downloading {SDIST_PACKAGE}=={SDIST_VERSION} (source) from the package index")
    try:
        fetched = pip_download(
            f"{SDIST_PACKAGE}=={SDIST_VERSION}", SDIST_SHA256, layout.downloads, source=True
        )
    except PackageError as exc:
        raise EngineBuildError(str(exc)) from None
    os.replace(fetched, layout.sdist)
    return layout.sdist


def verify_sdist(path: Path) -> None:
    try:
        verify(path, SDIST_SHA256)
    except PackageError as exc:
        raise EngineBuildError(str(exc)) from None


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


def _write_manifest(tree: _Tree, settled: Settled) -> None:
    previous = read_manifest(tree.layout.bin / MANIFEST) or {}
    unchanged = settled.features is None and not settled.runtime_args and not settled.dropped
    if unchanged and "cpu_features" in previous:  # an existing build passed on another CPU
        tests = previous.get("selftests")
        previous["selftests"] = {
            **(tests if isinstance(tests, dict) else {}),
            cpu.cpu_fingerprint(): settled.selftest.to_dict(),
        }
        atomic_write_json(tree.layout.bin / MANIFEST, previous)
        return
    same_build = previous.get("cpu_features") == list(_in_use(tree, settled))
    tests = previous.get("selftests") if same_build else None
    selftests = dict(tests) if isinstance(tests, dict) else {}
    selftests[cpu.cpu_fingerprint()] = settled.selftest.to_dict()
    manifest = {
        "sdist": f"{SDIST_PACKAGE}=={SDIST_VERSION}",
        "sdist_sha256": SDIST_SHA256,
        "commit": LLAMA_CPP_COMMIT,
        "variant": tree.variant,
        "features": sorted(["openssl", "rpc", "gguf-split", "tokenize", "quantize", tree.variant]),
        "cmake_flags": cmake_flags(tree.variant, settled.features),
        "native": settled.features is None,
        "cpu_features": list(_in_use(tree, settled)),
        "built_on": {"cpu": cpu.cpu_model(), "fingerprint": cpu.cpu_fingerprint()},
        "runtime_args": list(settled.runtime_args),
        "dropped": [item.to_dict() for item in settled.dropped],
        "speeds": {label: round(speed, 1) for label, speed in settled.speeds.items()},
        "note": settled.note,
        "selftests": selftests,
    }
    atomic_write_json(tree.layout.bin / MANIFEST, manifest)


def _in_use(tree: _Tree, settled: Settled) -> tuple[str, ...]:
    return tree.native if settled.features is None else settled.features
