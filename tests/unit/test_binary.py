from __future__ import annotations

import os
from pathlib import Path

import pytest

from council.datafolder import DataFolder
from council.engine import binary
from council.engine.binary import find_llama_server, platform_tag
from council.errors import EngineNotFound


def executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def candidates(
    tmp_path: Path, isolated_data: DataFolder, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Path]:
    """One llama-server in every place the resolution order looks."""
    found = {
        "option": executable(tmp_path / "option" / "llama-server"),
        "env": executable(tmp_path / "env" / "llama-server"),
        "data": executable(
            isolated_data.engines / platform_tag() / "build" / "bin" / "llama-server"
        ),
        "build": executable(tmp_path / "project" / "bin" / "llama-server"),
        "path": executable(tmp_path / "path" / "llama-server"),
    }
    monkeypatch.setenv("COUNCIL_LLAMA_SERVER", str(found["env"]))
    monkeypatch.setattr(binary, "project_build_dir", lambda: tmp_path / "project")
    monkeypatch.setenv("PATH", str(found["path"].parent))
    return found


def test_the_resolution_order_is_option_env_data_build_path(
    candidates: dict[str, Path], isolated_data: DataFolder, monkeypatch: pytest.MonkeyPatch
) -> None:
    found = find_llama_server(isolated_data, candidates["option"])
    assert (found.path, found.source) == (candidates["option"], "--llama-server")

    found = find_llama_server(isolated_data)
    assert (found.path, found.source) == (candidates["env"], "COUNCIL_LLAMA_SERVER")

    monkeypatch.delenv("COUNCIL_LLAMA_SERVER")
    found = find_llama_server(isolated_data)
    assert (found.path, found.source) == (candidates["data"], "data folder")

    candidates["data"].unlink()
    found = find_llama_server(isolated_data)
    assert (found.path, found.source) == (candidates["build"], "project build")

    candidates["build"].unlink()
    found = find_llama_server(isolated_data)
    assert (found.path, found.source) == (candidates["path"], "PATH")


def test_no_binary_anywhere_says_how_to_build_or_where_to_drop_one(
    candidates: dict[str, Path], isolated_data: DataFolder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COUNCIL_LLAMA_SERVER")
    for path in candidates.values():
        path.unlink()
    with pytest.raises(EngineNotFound) as error:
        find_llama_server(isolated_data)
    assert "council engine build" in str(error.value)
    assert str(isolated_data.engines / platform_tag()) in str(error.value)


def test_a_named_binary_that_is_not_executable_is_refused(tmp_path: Path) -> None:
    plain = tmp_path / "llama-server"
    plain.write_text("not a program")
    os.chmod(plain, 0o644)
    with pytest.raises(EngineNotFound, match="not an executable file"):
        find_llama_server(DataFolder(tmp_path), plain)


def test_platform_tag_names_os_and_architecture() -> None:
    system, _, arch = platform_tag().partition("-")
    assert system in {"linux", "macos", "windows"}
    assert arch
