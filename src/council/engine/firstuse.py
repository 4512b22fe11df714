"""The first time a binary runs on a CPU, it runs the self-test; the answer is kept.

A stick moves: the project build made on one laptop, or an official release dropped into
`engines/`, can meet a CPU it was not made for. So before the hub seats anything it looks up
this binary's self-test on this CPU, and runs it (a few seconds) when there is none: the
project build keeps its results in its own manifest, a dropped-in binary in
`<data>/engines/selftests.json`, keyed by the binary's files and the CPU's fingerprint.
A dropped-in binary that fails gives way to the project build; any engine that fails is
reported in one line with what to do, and the hub still serves whatever else it can.

Binaries named explicitly (`--llama-server`, `$COUNCIL_LLAMA_SERVER`, PATH) are the user's
choice and are not tested here; a crash of theirs is still explained on the seat.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from council.atomicfile import atomic_write_json
from council.datafolder import DataFolder
from council.engine import binary as binaries
from council.engine.binary import (
    MANIFEST,
    EngineBinary,
    locate_llama_server,
    search_folder,
)
from council.engine.cpu import cpu_fingerprint
from council.engine.crashes import rebuild_advice
from council.engine.selftest import SelfTest, run_selftest
from council.settings import Chosen

CHECKED = ("data folder", "project build")
CACHE = "selftests.json"

Say = Callable[[str], None]


def checked_engine(folder: DataFolder, chosen: Chosen[Path | None], say: Say) -> EngineBinary:
    """The engine the hub should run, self-tested on this CPU where council is responsible."""
    binary = locate_llama_server(folder, chosen)
    if binary.source not in CHECKED:
        return binary
    result = self_test_here(binary, folder, say)
    if result.ok:
        return binary
    built = search_folder(binaries.project_build_dir())
    if binary.source == "data folder" and built is not None:
        say(
            f"the llama-server in {binary.folder} {result.summary()} on this CPU; "
            "using the project build instead"
        )
        fallback = EngineBinary(built, "project build")
        if self_test_here(fallback, folder, say).ok:
            return fallback
        binary = fallback
    say(f"warning: {binary.path} {result.summary()} on this CPU: {rebuild_advice(binary.source)}")
    return binary


def self_test_here(binary: EngineBinary, folder: DataFolder, say: Say) -> SelfTest:
    known = recorded(binary, folder)
    if known is not None:
        return known
    say(f"first use of {binary.path} on this CPU: self-testing it (a few seconds)")
    result = run_selftest(binary.path, binary.runtime_args)
    record(binary, folder, result)
    return result


def recorded(binary: EngineBinary, folder: DataFolder) -> SelfTest | None:
    if binary.manifest is not None:  # council's own build, however it was named
        tests = binary.manifest.get("selftests")
        return SelfTest.from_dict(tests.get(cpu_fingerprint())) if isinstance(tests, dict) else None
    entry = _read_cache(folder).get(identity(binary), {})
    return SelfTest.from_dict(entry.get(cpu_fingerprint())) if isinstance(entry, dict) else None


def record(binary: EngineBinary, folder: DataFolder, result: SelfTest) -> None:
    """Keep the result; a read-only stick only means the test runs again next time."""
    try:
        manifest = binary.manifest
        if manifest is not None:
            tests = manifest.get("selftests")
            manifest["selftests"] = {
                **(tests if isinstance(tests, dict) else {}),
                cpu_fingerprint(): result.to_dict(),
            }
            atomic_write_json(binary.folder / MANIFEST, manifest)
            return
        cache = _read_cache(folder)
        entry = cache.get(identity(binary))
        cache[identity(binary)] = {
            **(entry if isinstance(entry, dict) else {}),
            cpu_fingerprint(): result.to_dict(),
        }
        atomic_write_json(folder.engines / CACHE, cache)
    except OSError:
        pass


def identity(binary: EngineBinary) -> str:
    """The binary and the libraries beside it, by name, size and modification time: cheap to
    compute on every start, and any replaced file makes a new identity."""
    digest = hashlib.sha256()
    for path in sorted([binary.path, *_libraries(binary.folder)]):
        stat = path.stat()
        digest.update(f"{path.name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:24]


def _libraries(folder: Path) -> list[Path]:
    return [
        p
        for p in folder.iterdir()
        if p.is_file() and (".so" in p.name or p.suffix in {".dylib", ".dll"})
    ]


def _read_cache(folder: DataFolder) -> dict[str, object]:
    try:
        data = json.loads((folder.engines / CACHE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def engine_report(binary: EngineBinary, folder: DataFolder) -> dict[str, object]:
    """What `council engine status` adds to the binary's description: this CPU, the build's
    instruction sets, the self-test here, and what was dropped or switched off, with why."""
    from council.engine.cpu import cpu_model

    manifest = binary.manifest or {}
    result = recorded(binary, folder)
    return {
        "cpu": {"model": cpu_model(), "fingerprint": cpu_fingerprint()},
        "built_on": manifest.get("built_on"),
        "instructions": manifest.get("cpu_features"),
        "native": manifest.get("native"),
        "selftest": result.to_dict() if result else None,
        "selftest_checked": binary.source in CHECKED,
        "dropped": manifest.get("dropped", []),
        "runtime_args": list(binary.runtime_args),
        "note": manifest.get("note", ""),
    }
