"""Finding the llama-server binary, and describing it.

Resolution order, first hit wins:
    1. `--llama-server PATH`
    2. `COUNCIL_LLAMA_SERVER`
    3. `<data>/engines/<os>-<arch>/` (an official llama.cpp release dropped onto the stick)
    4. the project's own build (`build/engine/<os>-<arch>/bin/`, made by `council engine build`)
    5. `PATH`
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from council.datafolder import DataFolder, project_root
from council.errors import EngineNotFound
from council.settings import Chosen, Environment, engine_choice

MANIFEST = "council-build.json"
_ARCH_ALIASES = {"amd64": "x86_64", "x64": "x86_64", "aarch64": "arm64"}
# "version: 0.5.0-dev (build 0, commit 0c1e57098)" now; "version: 4567 (0c1e570)" in older releases
_VERSION_LINE = re.compile(
    r"version:\s*(?P<version>\S+)\s*\((?:build\s+(?P<build>\d+),\s*commit\s+)?(?P<commit>\w+)\)"
)


def platform_tag() -> str:
    system = {"darwin": "macos"}.get(platform.system().lower(), platform.system().lower())
    machine = platform.machine().lower()
    return f"{system}-{_ARCH_ALIASES.get(machine, machine)}"


def executable_name(tool: str = "llama-server") -> str:
    return f"{tool}.exe" if os.name == "nt" else tool


def project_build_dir() -> Path:
    return project_root() / "build" / "engine" / platform_tag()


@dataclass(frozen=True, slots=True)
class EngineBinary:
    path: Path
    source: str  # which rule of the resolution order found it

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def manifest(self) -> dict[str, object] | None:
        """council's build manifest beside the binary (None for anything else)."""
        return read_manifest(self.folder / MANIFEST)

    @property
    def runtime_args(self) -> tuple[str, ...]:
        """Switches the build's self-test found this CPU needs (`--no-repack`), for every engine."""
        listed = (self.manifest or {}).get("runtime_args")
        return tuple(str(arg) for arg in listed) if isinstance(listed, list) else ()

    def sibling(self, tool: str) -> Path | None:
        candidate = self.folder / executable_name(tool)
        return candidate if candidate.is_file() else None


def find_llama_server(
    data: DataFolder, explicit: Path | None = None, env: Environment | None = None
) -> EngineBinary:
    """The engine `explicit` names, else COUNCIL_LLAMA_SERVER's, else one found."""
    return locate_llama_server(
        data, engine_choice(explicit, Environment.read() if env is None else env)
    )


def locate_llama_server(data: DataFolder, chosen: Chosen[Path | None]) -> EngineBinary:
    """The engine a flag or variable chose, else the first found: the data folder's for this
    platform, the project build, the PATH."""
    if chosen.value is not None:
        return EngineBinary(_must_be_executable(chosen.value, chosen.source), chosen.source)
    dropped = search_folder(data.engines / platform_tag())
    if dropped is not None:
        return EngineBinary(dropped, "data folder")
    built = search_folder(project_build_dir())
    if built is not None:
        return EngineBinary(built, "project build")
    on_path = shutil.which(executable_name())
    if on_path is not None:
        return EngineBinary(Path(on_path), "PATH")
    raise EngineNotFound(
        "no llama-server found: run `council engine build` (or `make up`), or unpack an "
        f"official llama.cpp release into {data.engines / platform_tag()}"
    )


def _must_be_executable(path: Path, where: str) -> Path:
    path = path.expanduser()
    if not path.is_file() or not os.access(path, os.X_OK):
        raise EngineNotFound(f"{where} names {path}, which is not an executable file")
    return path.absolute()


def search_folder(folder: Path) -> Path | None:
    """Release archives nest their binaries (`build/bin/`, `llama-b1234/`): look a little down."""
    if not folder.is_dir():
        return None
    name = executable_name()
    for depth in ("", "*/", "*/*/"):
        for candidate in sorted(folder.glob(f"{depth}{name}")):
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return candidate.absolute()
    return None


@dataclass(frozen=True, slots=True)
class EngineInfo:
    binary: EngineBinary
    version: str
    build: str
    commit: str
    compiler: str
    features: tuple[str, ...]
    variant: str

    def to_dict(self) -> dict[str, object]:
        return {
            "path": str(self.binary.path),
            "source": self.binary.source,
            "version": self.version,
            "build": self.build,
            "commit": self.commit,
            "compiler": self.compiler,
            "variant": self.variant,
            "features": list(self.features),
        }


def describe(binary: EngineBinary) -> EngineInfo:
    """Ask the binary for its version, and read the build manifest when council built it."""
    try:
        result = subprocess.run(
            [str(binary.path), "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EngineNotFound(f"{binary.path} does not run: {exc}") from None
    output = result.stdout + result.stderr
    match = _VERSION_LINE.search(output)
    compiler = next((line.strip() for line in output.splitlines() if "built with" in line), "")
    manifest = read_manifest(binary.folder / MANIFEST)
    listed = manifest.get("features") if manifest else None
    features = [str(item) for item in listed] if isinstance(listed, list) else []
    if (
        binary.sibling("ggml-rpc-server") or binary.sibling("rpc-server")
    ) and "rpc" not in features:
        features.append("rpc")
    if binary.sibling("llama-gguf-split") and "gguf-split" not in features:
        features.append("gguf-split")
    if binary.sibling("llama-tokenize") and "tokenize" not in features:
        features.append("tokenize")
    if binary.sibling("llama-quantize") and "quantize" not in features:
        features.append("quantize")
    if any(binary.folder.glob("*ggml-cpu-*")):
        features.append("cpu-variants")
    variant = str(manifest.get("variant", "")) if manifest else "external"
    return EngineInfo(
        binary=binary,
        version=match.group("version") if match else "unknown",
        build=(match.group("build") or match.group("version")) if match else "unknown",
        commit=str(manifest.get("commit"))
        if manifest
        else (match.group("commit") if match else ""),
        compiler=compiler,
        features=tuple(sorted(set(features))),
        variant=variant or "native",
    )


def read_manifest(path: Path) -> dict[str, object] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
