from __future__ import annotations

from pathlib import Path

import pytest

from council.datafolder import DataFolder, resolve_data_folder
from council.errors import DataFolderError


def test_explicit_data_option_wins_over_environment(tmp_path: Path) -> None:
    chosen = tmp_path / "chosen"
    assert resolve_data_folder(chosen).root == chosen


def test_environment_names_the_data_folder_when_no_option_is_given(
    isolated_data: DataFolder,
) -> None:
    assert resolve_data_folder().root == isolated_data.root


def test_portable_folder_beside_the_project_is_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("COUNCIL_DATA")
    folder = resolve_data_folder()
    assert folder.root.name == "council-data"
    assert (folder.root.parent / "pyproject.toml").is_file()


def test_prepare_creates_the_documented_layout(tmp_path: Path) -> None:
    folder = DataFolder(tmp_path)
    folder.prepare()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "downloads",
        "engines",
        "logs",
        "models",
        "tls",
    ]


def test_missing_data_folder_is_reported_not_created(tmp_path: Path) -> None:
    folder = DataFolder(tmp_path / "typo")
    with pytest.raises(DataFolderError, match="does not exist"):
        folder.prepare()
    assert not (tmp_path / "typo").exists()


def test_a_file_is_not_a_data_folder(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataFolderError, match="not a folder"):
        DataFolder(tmp_path / "file").prepare()
