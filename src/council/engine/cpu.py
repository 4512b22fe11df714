"""What the CPU under council can do, in the terms ggml's build understands.

A native build (`-march=native`) compiles in whatever the compiler believes this CPU has. That
belief can be wrong on a virtual machine: one kind here advertises AMX, and the first AMX tile
instruction after a context switch traps. So the build asks the compiler which instruction sets
`-march=native` means, names them as ggml's CMake options (`GGML_AVX2`, `GGML_AMX_INT8`, ...),
and can then build the same set minus the ones that trap. The fingerprint names this CPU so a
self-test result can be kept per binary *and* per machine: a stick moves between laptops.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import shutil
import subprocess
from pathlib import Path

# The compiler's macro for each ggml x86 option, in ggml's own order (its CMakeLists).
X86_OPTIONS = {
    "SSE42": ("__SSE4_2__",),
    "F16C": ("__F16C__",),
    "FMA": ("__FMA__",),
    "BMI2": ("__BMI2__",),
    "AVX": ("__AVX__",),
    "AVX2": ("__AVX2__",),
    "AVX_VNNI": ("__AVXVNNI__",),
    # GGML_AVX512 turns on F, CD, VL, DQ and BW together: claim it only when all five are there.
    "AVX512": ("__AVX512F__", "__AVX512CD__", "__AVX512VL__", "__AVX512DQ__", "__AVX512BW__"),
    "AVX512_VBMI": ("__AVX512VBMI__",),
    "AVX512_VNNI": ("__AVX512VNNI__",),
    "AVX512_BF16": ("__AVX512BF16__",),
    "AMX_TILE": ("__AMX_TILE__",),
    "AMX_INT8": ("__AMX_INT8__",),
    "AMX_BF16": ("__AMX_BF16__",),
}


def is_x86() -> bool:
    return platform.machine().lower() in {"x86_64", "amd64", "x64", "i686", "i386"}


def native_features(compiler: str | None = None) -> tuple[str, ...]:
    """The ggml x86 options that `-march=native` turns on here (empty off x86, or without cc)."""
    if not is_x86():
        return ()
    cc = compiler or os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return ()
    try:
        result = subprocess.run(
            [cc, "-march=native", "-dM", "-E", "-x", "c", os.devnull],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ()
    macros = {line.split()[1] for line in result.stdout.splitlines() if line.startswith("#define")}
    return tuple(option for option, needs in X86_OPTIONS.items() if all(m in macros for m in needs))


def cmake_feature_flags(features: tuple[str, ...]) -> list[str]:
    """GGML_NATIVE=OFF with exactly `features` on and every other x86 option off."""
    flags = ["-DGGML_NATIVE=OFF"]
    if is_x86():
        flags += [
            f"-DGGML_{option}={'ON' if option in features else 'OFF'}" for option in X86_OPTIONS
        ]
    return flags


@functools.cache
def cpu_model() -> str:
    for line in _cpuinfo().splitlines():
        key, _, value = line.partition(":")
        if key.strip() in {"model name", "Hardware", "Processor", "cpu model"}:
            return value.strip()
    return platform.processor() or platform.machine()


def cpu_flags() -> tuple[str, ...]:
    for line in _cpuinfo().splitlines():
        key, _, value = line.partition(":")
        if key.strip() in {"flags", "Features"}:
            return tuple(sorted(set(value.split())))
    return ()


@functools.cache
def cpu_fingerprint() -> str:
    """Names this CPU (model and advertised features), not this laptop: two identical laptops
    share a self-test result, a different CPU gets its own."""
    text = "\n".join([platform.machine(), cpu_model(), " ".join(cpu_flags())])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
