"""A stick that is damaged or full before council starts: one line each, and nothing modified."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from council.datafolder import DataFolder
from tests.hubs import free_port
from tests.hubs import run_council as council

COMMANDS = (
    ("history",),
    ("export", "abc123"),
    ("ask", "--max-tokens", "4", "Is the stick fine?"),
    ("up", "--no-browser", "--port", str(free_port())),
)


@pytest.mark.parametrize(
    "damage",
    [b"this is no database, only words " * 256, b"SQLite format 3\0" + b"\xff" * 8176],
    ids=["not-a-database", "malformed"],
)
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_a_damaged_store_is_one_line_that_says_how_to_move_it_aside(
    isolated_data: DataFolder, command: tuple[str, ...], damage: bytes
) -> None:
    isolated_data.database.write_bytes(damage)

    result = council(*command, timeout=60)

    assert result.returncode == 1
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert str(isolated_data.database) in message
    assert "damaged" in message
    assert f"mv {isolated_data.database} {isolated_data.database}.damaged" in message
    assert isolated_data.database.read_bytes() == damage  # never modified


@pytest.fixture
def tiny_stick(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs: a stick with almost no room."""
    mount_point = tmp_path / "stick"
    mount_point.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"the kernel refused a tmpfs mount (needs root): {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=False)


def test_a_full_stick_is_reported_before_any_engine_starts(
    tiny_stick: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tiny_stick / "council-data"
    monkeypatch.setenv("COUNCIL_DATA", str(data))
    data.mkdir()
    DataFolder(data).prepare()
    filler = tiny_stick / "filler"
    with open(filler, "wb", buffering=0) as out:  # fill the stick until the kernel says no
        try:
            while True:
                out.write(b"\0" * 4096)
        except OSError:
            pass
    leftover = sorted(path.name for path in data.iterdir())

    result = council("up", "--no-browser", "--port", str(free_port()), timeout=60)

    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"Error: data folder {data} is not writable (No space left on device): "
        "is the stick read-only or full?"
    )
    assert sorted(path.name for path in data.iterdir()) == leftover  # no probe left behind
