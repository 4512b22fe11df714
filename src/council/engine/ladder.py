"""When a fresh engine dies on this CPU: find the fastest build of it that runs.

The ladder is x86's instruction sets from the newest down (AMX, AVX-512, AVX-VNNI, AVX2, AVX,
SSE4.2), ending at a generic build. Each rung rebuilds ggml's CPU backend without that set (only
`libggml-cpu` recompiles: nothing else sees the flags) and runs the self-test again. Beside it
runs llama.cpp's runtime switch `--no-repack`, which keeps the native build but turns off the
extra buffer types (AMX's and the repacked GEMMs): no rebuild, but slower for the formats that
repack. When both work, both are timed and the faster one is kept; the manifest records why.

The ladder only needs an `Engine` (test, time, rebuild), so it is tested with a fake engine
that traps on whichever features a test chooses, on any CPU.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from council.engine.selftest import SelfTest
from council.errors import EngineBuildError

RUNTIME_SWITCH = ("--no-repack",)


@dataclass(frozen=True, slots=True)
class Rung:
    name: str
    drop: tuple[str, ...]


X86_LADDER = (
    Rung("AMX", ("AMX_TILE", "AMX_INT8", "AMX_BF16")),
    Rung("AVX-512", ("AVX512", "AVX512_VBMI", "AVX512_VNNI", "AVX512_BF16")),
    Rung("AVX-VNNI", ("AVX_VNNI",)),
    Rung("AVX2", ("AVX2", "FMA", "F16C", "BMI2")),
    Rung("AVX", ("AVX",)),
    Rung("SSE4.2", ("SSE42",)),
)
GENERIC = Rung("native tuning", ())


class Engine(Protocol):
    def test(self, args: tuple[str, ...]) -> SelfTest: ...

    def speed(self, args: tuple[str, ...]) -> float: ...

    def rebuild(self, features: tuple[str, ...] | None) -> None:
        """Rebuild with exactly `features` (ggml option names); None: -march=native again."""


@dataclass(frozen=True, slots=True)
class Dropped:
    name: str
    features: tuple[str, ...]
    reason: str

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "features": list(self.features), "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Settled:
    """What the build ended with: its features (None: as -march=native gave them)."""

    features: tuple[str, ...] | None
    selftest: SelfTest
    runtime_args: tuple[str, ...] = ()
    dropped: tuple[Dropped, ...] = ()
    speeds: dict[str, float] = field(default_factory=dict)
    note: str = ""


def plan(native: Sequence[str]) -> list[tuple[Rung, tuple[str, ...]]]:
    """Each rung that applies to this CPU, with the features left once it is dropped."""
    steps: list[tuple[Rung, tuple[str, ...]]] = []
    current = tuple(native)
    for rung in X86_LADDER:
        if set(rung.drop) & set(current):
            current = tuple(option for option in current if option not in rung.drop)
            steps.append((rung, current))
    return steps or [(GENERIC, ())]


def settle(engine: Engine, native: Sequence[str], report: Callable[[str], None]) -> Settled:
    """Self-test the native build; on a crash by signal, walk down until something runs."""
    first = engine.test(())
    if first.ok:
        return Settled(None, first)
    crash = first.crashed
    if crash is None:
        raise EngineBuildError(f"the engine self-test {first.summary()}")
    report(
        f"the engine was {crash.reason} on {crash.format} weights; looking for a build "
        "that runs on this CPU"
    )
    speeds: dict[str, float] = {}
    switch = engine.test(RUNTIME_SWITCH)
    if switch.ok:
        speeds[" ".join(RUNTIME_SWITCH)] = engine.speed(RUNTIME_SWITCH)
    dropped: list[Dropped] = []
    last = first
    for rung, features in plan(native):
        failed = last.failure
        assert failed is not None  # noqa: S101 - we only step down after a failure
        dropped.append(Dropped(rung.name, rung.drop, f"{failed.reason} on {failed.format}"))
        report(f"rebuilding without {rung.name}")
        engine.rebuild(features)
        last = engine.test(())
        if last.ok:
            label = f"without {', '.join(d.name for d in dropped)}"
            speeds[label] = engine.speed(())
            rebuilt = Settled(features, last, (), tuple(dropped), speeds)
            return _choose(engine, rebuilt, switch, first)
        if last.crashed is None:
            raise EngineBuildError(f"the engine self-test {last.summary()}")
    if switch.ok:
        engine.rebuild(None)
        return _with_switch(switch, speeds, crash.reason, crash.format)
    raise EngineBuildError(
        f"llama-server crashes on this CPU with every instruction set tried ({first.summary()}, "
        f"and with {' '.join(RUNTIME_SWITCH)}: {switch.summary()})"
    )


def _choose(engine: Engine, rebuilt: Settled, switch: SelfTest, first: SelfTest) -> Settled:
    names = " and ".join(item.name for item in rebuilt.dropped)
    label = next(key for key in rebuilt.speeds if key.startswith("without"))
    flag = " ".join(RUNTIME_SWITCH)
    crash = first.crashed
    assert crash is not None  # noqa: S101 - the ladder only runs after a crash
    if switch.ok and rebuilt.speeds[flag] > rebuilt.speeds[label]:
        engine.rebuild(None)  # the native build with the switch is faster: go back to it
        return _with_switch(switch, rebuilt.speeds, crash.reason, crash.format)
    note = f"{names} instructions trap on this machine; rebuilt without them"
    if switch.ok:
        note += (
            f" ({rebuilt.speeds[label]:.0f} tokens/s, against "
            f"{rebuilt.speeds[flag]:.0f} with {flag})"
        )
    return Settled(rebuilt.features, rebuilt.selftest, (), rebuilt.dropped, rebuilt.speeds, note)


def _with_switch(switch: SelfTest, speeds: dict[str, float], reason: str, fmt: str) -> Settled:
    """The native build, every engine started with the runtime switch."""
    flag = " ".join(RUNTIME_SWITCH)
    others = [f"{speed:.0f} tokens/s {label}" for label, speed in speeds.items() if label != flag]
    against = f" (against {', '.join(others)})" if others else ""
    note = (
        f"llama.cpp's AMX/repacked kernels trap on this machine; every engine starts with "
        f"{flag}: {speeds.get(flag, 0):.0f} tokens/s{against}"
    )
    dropped = (Dropped("extra buffer types (AMX, repack)", (), f"{reason} on {fmt}"),)
    return Settled(None, switch, RUNTIME_SWITCH, dropped, speeds, note)
