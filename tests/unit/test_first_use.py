"""An engine council did not test on this CPU is self-tested before the hub seats anything."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from council.datafolder import DataFolder
from council.engine import binary, selftest
from council.engine.binary import MANIFEST, platform_tag
from council.engine.firstuse import checked_engine
from council.settings import Chosen
from tests.fake_engines import install_fake_engine

NOT_CHOSEN: Chosen[Path | None] = Chosen(None, "default")  # no flag, no variable: search


@pytest.fixture(autouse=True)
def no_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(selftest, "PAUSE", 0.0)


@pytest.fixture
def project_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "project" / "bin"
    install_fake_engine(folder)
    (folder / MANIFEST).write_text(json.dumps({"variant": "native", "selftests": {}}))
    monkeypatch.setattr(binary, "project_build_dir", lambda: tmp_path / "project")
    return folder


def starts(folder: Path) -> int:
    runs = folder / "fake-engine.runs"
    return len(runs.read_text().splitlines()) if runs.is_file() else 0


def test_a_dropped_in_engine_that_crashes_here_gives_way_to_the_project_build(
    isolated_data: DataFolder, project_build: Path
) -> None:
    dropped = isolated_data.engines / platform_tag()
    install_fake_engine(dropped, trap_always=True)
    said: list[str] = []
    chosen = checked_engine(isolated_data, NOT_CHOSEN, said.append)
    assert chosen.source == "project build"
    assert any(
        "failed on Q4_0: killed by signal SIGILL on this CPU; using the project build" in line
        for line in said
    )
    manifest = json.loads((project_build / MANIFEST).read_text())
    assert [result["ok"] for result in manifest["selftests"].values()] == [True]


def test_the_result_is_kept_so_the_test_runs_once_per_binary_and_cpu(
    isolated_data: DataFolder, project_build: Path
) -> None:
    dropped = isolated_data.engines / platform_tag()
    install_fake_engine(dropped)
    assert checked_engine(isolated_data, NOT_CHOSEN, lambda line: None).source == "data folder"
    first = starts(dropped)
    assert first == len(selftest.FORMATS)
    said: list[str] = []
    assert checked_engine(isolated_data, NOT_CHOSEN, said.append).source == "data folder"
    assert starts(dropped) == first
    assert said == []
    cache = json.loads((isolated_data.engines / "selftests.json").read_text())
    assert len(cache) == 1


def test_a_replaced_binary_is_tested_again(isolated_data: DataFolder, project_build: Path) -> None:
    dropped = isolated_data.engines / platform_tag()
    install_fake_engine(dropped)
    checked_engine(isolated_data, NOT_CHOSEN, lambda line: None)
    (dropped / "libggml-cpu.so").write_bytes(b"a new library")
    checked_engine(isolated_data, NOT_CHOSEN, lambda line: None)
    assert starts(dropped) == 2 * len(selftest.FORMATS)


def test_an_engine_the_user_named_is_not_tested(tmp_path: Path, isolated_data: DataFolder) -> None:
    named = install_fake_engine(tmp_path / "mine", trap_always=True)
    assert (
        checked_engine(isolated_data, Chosen(named, "--llama-server"), lambda line: None).path
        == named
    )
    assert starts(named.parent) == 0


def test_a_project_build_that_crashes_here_is_kept_with_a_warning_that_says_what_to_do(
    isolated_data: DataFolder, project_build: Path
) -> None:
    install_fake_engine(project_build, trap_always=True)
    said: list[str] = []
    chosen = checked_engine(isolated_data, NOT_CHOSEN, said.append)
    assert chosen.source == "project build"
    assert said[-1].startswith("warning: ")
    assert "`council engine build --force` rebuilds it for this machine" in said[-1]
