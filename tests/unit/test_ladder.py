"""The build's way down when the engine dies on this CPU, played by a fake engine that traps on
whichever instruction sets a test names, so it runs the same on every machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from council.engine import selftest
from council.engine.ladder import RUNTIME_SWITCH, plan, settle
from council.engine.selftest import run_selftest
from council.errors import EngineBuildError
from tests.fake_engines import FakeBuild, install_fake_engine

SAPPHIRE_RAPIDS = (
    "SSE42",
    "F16C",
    "FMA",
    "BMI2",
    "AVX",
    "AVX2",
    "AVX_VNNI",
    "AVX512",
    "AVX512_VBMI",
    "AVX512_VNNI",
    "AVX512_BF16",
    "AMX_TILE",
    "AMX_INT8",
    "AMX_BF16",
)
ZEN3 = ("SSE42", "F16C", "FMA", "BMI2", "AVX", "AVX2")


@pytest.fixture(autouse=True)
def no_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(selftest, "PAUSE", 0.0)


def settle_quietly(build: FakeBuild) -> tuple[object, list[str]]:
    said: list[str] = []
    return settle(build, build.native, said.append), said


def test_an_engine_that_runs_is_kept_as_built_without_a_rebuild(tmp_path: Path) -> None:
    build = FakeBuild(tmp_path, SAPPHIRE_RAPIDS)
    settled, said = settle_quietly(build)
    assert settled.features is None  # type: ignore[attr-defined]
    assert settled.selftest.ok  # type: ignore[attr-defined]
    assert build.rebuilds == []
    assert said == []


def test_amx_that_traps_is_rebuilt_away_when_the_rebuild_is_faster_than_the_switch(
    tmp_path: Path,
) -> None:
    build = FakeBuild(
        tmp_path,
        SAPPHIRE_RAPIDS,
        trap=["AMX_INT8"],
        buffer_trap=True,
        delay=0.0,
        delay_no_repack=0.3,
    )
    settled, said = settle_quietly(build)
    assert build.rebuilds == [tuple(f for f in SAPPHIRE_RAPIDS if not f.startswith("AMX"))]
    assert settled.features == build.rebuilds[0]  # type: ignore[attr-defined]
    assert settled.runtime_args == ()  # type: ignore[attr-defined]
    assert [d.name for d in settled.dropped] == ["AMX"]  # type: ignore[attr-defined]
    assert "killed by signal SIGILL on Q4_0" in settled.dropped[0].reason  # type: ignore[attr-defined]
    assert settled.note.startswith(  # type: ignore[attr-defined]
        "AMX instructions trap on this machine; rebuilt without them ("
    )
    assert set(settled.speeds) == {"--no-repack", "without AMX"}  # type: ignore[attr-defined]
    assert any("killed by signal SIGILL" in line for line in said)


def test_the_runtime_switch_is_kept_when_it_measures_faster_than_any_rebuild(
    tmp_path: Path,
) -> None:
    build = FakeBuild(
        tmp_path,
        SAPPHIRE_RAPIDS,
        trap=["AMX_TILE"],
        buffer_trap=True,
        delay=0.3,
        delay_no_repack=0.0,
    )
    settled, _ = settle_quietly(build)
    assert build.rebuilds[-1] is None  # back to the native build
    assert settled.features is None  # type: ignore[attr-defined]
    assert settled.runtime_args == RUNTIME_SWITCH  # type: ignore[attr-defined]
    assert settled.selftest.args == RUNTIME_SWITCH  # type: ignore[attr-defined]
    assert "every engine starts with --no-repack" in settled.note  # type: ignore[attr-defined]


def test_a_trap_the_switch_cannot_avoid_walks_down_until_the_engine_runs(tmp_path: Path) -> None:
    build = FakeBuild(tmp_path, SAPPHIRE_RAPIDS, trap=["AVX512_VNNI"], trap_on_start=True)
    settled, _ = settle_quietly(build)
    assert [d.name for d in settled.dropped] == ["AMX", "AVX-512"]  # type: ignore[attr-defined]
    assert settled.features == ("SSE42", "F16C", "FMA", "BMI2", "AVX", "AVX2", "AVX_VNNI")  # type: ignore[attr-defined]
    assert RUNTIME_SWITCH in build.tests
    assert settled.note.startswith("AMX and AVX-512 instructions trap")  # type: ignore[attr-defined]


def test_an_engine_that_traps_with_every_instruction_set_is_a_clear_build_error(
    tmp_path: Path,
) -> None:
    build = FakeBuild(tmp_path, ZEN3, trap_always=True)
    with pytest.raises(EngineBuildError, match="crashes on this CPU with every instruction set"):
        settle_quietly(build)
    assert build.rebuilds == [("SSE42", "AVX"), ("SSE42",), ()]


def test_a_failure_that_is_not_a_crash_is_reported_without_any_rebuild(tmp_path: Path) -> None:
    build = FakeBuild(tmp_path, ZEN3, exit_code=1)
    with pytest.raises(EngineBuildError, match="exited with code 1: the fake engine was told"):
        settle_quietly(build)
    assert build.rebuilds == []


def test_the_ladder_skips_instruction_sets_this_cpu_does_not_have() -> None:
    names = [rung.name for rung, _ in plan(ZEN3)]
    assert names == ["AVX2", "AVX", "SSE4.2"]
    assert plan(ZEN3)[-1][1] == ()
    assert [rung.name for rung, _ in plan(())] == ["native tuning"]


def test_the_self_test_names_the_signal_and_the_format_it_died_on(tmp_path: Path) -> None:
    server = install_fake_engine(tmp_path, features=["AMX_INT8"], trap=["AMX_INT8"])
    models = {name: tmp_path / "unused.gguf" for name in selftest.FORMATS}
    result = run_selftest(server, models=models)
    assert not result.ok
    assert result.crashed is not None
    assert (result.crashed.format, result.crashed.signal) == ("Q4_0", "SIGILL")
    assert len(result.formats) == 1  # the first crash ends the test
    assert result.summary() == "failed on Q4_0: killed by signal SIGILL"
    again = type(result).from_dict(result.to_dict())
    assert again == result
