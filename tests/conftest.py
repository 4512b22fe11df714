"""Every test runs against its own data folder: nothing touches a real stick."""

from __future__ import annotations

import pytest

from council.datafolder import DataFolder


@pytest.fixture(autouse=True)
def isolated_data(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> DataFolder:
    root = tmp_path_factory.mktemp("stick")
    monkeypatch.setenv("COUNCIL_DATA", str(root))
    monkeypatch.delenv("COUNCIL_LLAMA_SERVER", raising=False)
    folder = DataFolder(root)
    folder.prepare()
    return folder
