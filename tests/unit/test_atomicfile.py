"""A file council replaces is either the old one or the new one, never a mix or a leftover."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from council import atomicfile
from council.atomicfile import atomic_write, atomic_write_json


def test_a_replaced_file_holds_the_new_text_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "config.toml"
    target.write_text("old")
    atomic_write(target, "new ✓")
    assert target.read_text(encoding="utf-8") == "new ✓"
    assert [p.name for p in tmp_path.iterdir()] == ["config.toml"]


def test_a_private_file_is_never_readable_by_others(tmp_path: Path) -> None:
    target = tmp_path / "remotes.toml"
    atomic_write(target, "token = 'x'", mode=0o600)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_a_failed_rename_keeps_the_old_file_and_removes_the_temporary_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "council-build.json"
    atomic_write_json(target, {"old": True})

    def refuse(source: object, destination: object) -> None:
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(atomicfile.os, "replace", refuse)
    with pytest.raises(OSError, match="Read-only"):
        atomic_write_json(target, {"old": False})
    monkeypatch.undo()
    assert json.loads(target.read_text()) == {"old": True}
    assert os.listdir(tmp_path) == ["council-build.json"]
