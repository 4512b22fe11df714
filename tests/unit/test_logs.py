"""council.logs: the last lines of a log, following one across rotations, which file a seat's is."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from council import logs
from council.config import HubConfig, SeatConfig, save_config
from council.datafolder import DataFolder
from council.errors import NotFound
from council.models.demo import write_demo_model
from council.remotes import RemoteSeatConfig, save_remotes


class CountingReader:
    """A binary file whose reads are counted, to see how much of it the tail touched."""

    def __init__(self, path: Path) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 - closed by the test
        self.read_bytes = 0

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._file.seek(offset, whence)

    def read(self, size: int = -1) -> bytes:
        data = self._file.read(size)
        self.read_bytes += len(data)
        return data

    def close(self) -> None:
        self._file.close()


def test_the_last_lines_of_a_big_log_are_read_from_its_end(tmp_path: Path) -> None:
    log = tmp_path / "council.log"
    with open(log, "w", encoding="utf-8") as out:
        for number in range(100_000):
            out.write(f"2024-01-01 12:00:00 INFO line {number} {'x' * 40}\n")
    assert log.stat().st_size > 4 * 1024 * 1024
    last = logs.last_lines(log, 3)
    assert [line.split()[4] for line in last] == ["99997", "99998", "99999"]

    reader = CountingReader(log)
    try:
        tail = logs._tail_bytes(reader, 50, logs.BLOCK)  # type: ignore[arg-type]
    finally:
        reader.close()
    assert tail.count(b"\n") == 50
    assert tail.startswith(b"2024-01-01 12:00:00 INFO line 99950 ")
    assert reader.read_bytes <= logs.BLOCK  # one block from the end, not the 4 MB


def test_a_log_with_fewer_lines_than_asked_for_is_shown_whole(tmp_path: Path) -> None:
    log = tmp_path / "seat.log"
    log.write_text("one\ntwo\nthree\n", encoding="utf-8")
    assert logs.last_lines(log, 50) == ["one", "two", "three"]
    assert logs.last_lines(log, 2) == ["two", "three"]
    assert logs.last_lines(log, 0) == []
    log.write_text("one\r\ntwo\nno line end yet", encoding="utf-8")
    assert logs.last_lines(log, 2) == ["two", "no line end yet"]
    log.write_text("", encoding="utf-8")
    assert logs.last_lines(log, 5) == []


@pytest.mark.parametrize("block", [1, 2, 3, 7, 64])
def test_the_tail_is_the_same_whatever_the_block_size(tmp_path: Path, block: int) -> None:
    log = tmp_path / "seat.log"
    log.write_bytes("a\n\nbé\nccc\n\nd\n".encode())
    every = log.read_bytes().splitlines(keepends=True)
    with open(log, "rb") as handle:
        for count in range(8):
            expected = b"".join(every[-count:] if count else [])
            assert logs._tail_bytes(handle, count, block) == expected, count


def scripted(actions: list[Callable[[], None]]) -> Callable[[float], None]:
    """A `sleep` for `follow` that does the test's next step instead of waiting."""

    def sleep(_seconds: float) -> None:
        assert actions, "follow polled again with nothing left to happen"
        actions.pop(0)()

    return sleep


def read_until(found: Iterator[str], wanted: str) -> str:
    """What `follow` gives until `wanted` is in it."""
    text = ""
    while wanted not in text:
        text += next(found)
    return text


def append(path: Path, text: str) -> Callable[[], None]:
    def write() -> None:
        with open(path, "a", encoding="utf-8") as out:
            out.write(text)

    return write


def test_following_gives_the_last_lines_then_each_appended_one(tmp_path: Path) -> None:
    log = tmp_path / "council.log"
    log.write_text("old 1\nold 2\nold 3\n", encoding="utf-8")
    actions = [lambda: None, append(log, "new 1\n"), append(log, "new 2\nnew 3\n")]
    found = logs.follow(log, 2, sleep=scripted(actions))
    assert next(found) == "old 2\nold 3\n"
    assert read_until(found, "new 1\n") == "new 1\n"
    assert read_until(found, "new 3\n") == "new 2\nnew 3\n"
    found.close()


def test_following_goes_on_in_the_new_file_after_a_rotation(tmp_path: Path) -> None:
    log = tmp_path / "council.log"
    log.write_text("before\n", encoding="utf-8")

    def rotate() -> None:
        append(log, "last of the old file\n")()
        os.replace(log, log.with_name("council.log.1"))
        log.write_text("first of the new file\n", encoding="utf-8")

    def rotate_with_a_gap() -> None:  # the moment between the rename and the new file
        os.replace(log, log.with_name("council.log.1"))

    actions = [
        rotate,
        append(log, "second of the new file\n"),
        rotate_with_a_gap,
        lambda: None,
        append(log, "after the gap\n"),
    ]
    found = logs.follow(log, 5, sleep=scripted(actions))
    assert next(found) == "before\n"
    text = read_until(found, "first of the new file\n")
    assert text == "last of the old file\nfirst of the new file\n"
    assert read_until(found, "second") == "second of the new file\n"
    assert read_until(found, "after the gap\n") == "after the gap\n"
    found.close()


def test_following_reads_a_truncated_log_again_from_its_start(tmp_path: Path) -> None:
    log = tmp_path / "seat.log"
    log.write_text("a long first run of the engine\n", encoding="utf-8")

    def truncate() -> None:
        with open(log, "r+", encoding="utf-8") as out:
            out.truncate(0)
            out.write("short\n")

    found = logs.follow(log, 1, sleep=scripted([truncate]))
    assert next(found) == "a long first run of the engine\n"
    assert read_until(found, "short\n") == "short\n"
    found.close()


def test_following_waits_for_a_log_that_is_not_there_yet(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "council.log"
    waited: list[bool] = []

    def appear() -> None:
        log.parent.mkdir()
        log.write_text("council is serving http://127.0.0.1:8710\n", encoding="utf-8")

    actions = [lambda: None, appear, append(log, "more\n")]
    found = logs.follow(log, 50, sleep=scripted(actions), waiting=lambda: waited.append(True))
    assert read_until(found, "serving") == "council is serving http://127.0.0.1:8710\n"
    assert waited == [True]
    assert read_until(found, "more\n") == "more\n"
    found.close()


def test_a_character_split_between_two_writes_comes_out_whole(tmp_path: Path) -> None:
    log = tmp_path / "seat.log"
    log.write_bytes(b"")
    encoded = "é\n".encode()

    def write(data: bytes) -> Callable[[], None]:
        def do() -> None:
            with open(log, "ab") as out:
                out.write(data)

        return do

    found = logs.follow(log, 1, sleep=scripted([write(encoded[:1]), write(encoded[1:])]))
    assert read_until(found, "\n") == "é\n"
    found.close()


# --- which file is a seat's --------------------------------------------------------------------


@pytest.fixture
def folder(tmp_path: Path) -> DataFolder:
    (tmp_path / "stick").mkdir()
    data = DataFolder(tmp_path / "stick")
    data.prepare()
    write_demo_model(data.models / "a.gguf", seed=1)
    write_demo_model(data.models / "b.gguf", seed=2)
    return data


def seats(folder: DataFolder, *configured: SeatConfig) -> None:
    save_config(folder, HubConfig(seats=configured))


def test_without_a_hub_a_seat_sharing_an_engine_reads_its_first_seats_log(
    folder: DataFolder,
) -> None:
    seats(
        folder,
        SeatConfig("careful", "a.gguf", temperature=0.2),
        SeatConfig("other", "b.gguf"),
        SeatConfig("bold", "a.gguf", temperature=1.1),
        SeatConfig("off", "b.gguf", enabled=False),
        SeatConfig("lost", "missing.gguf"),
    )
    assert logs.seat_log(folder, "careful") == folder.logs / "careful.log"
    assert logs.seat_log(folder, "bold") == folder.logs / "careful.log"
    assert logs.seat_log(folder, "other") == folder.logs / "other.log"
    assert logs.seat_log(folder, "off") == folder.logs / "off.log"  # its own, from before
    assert logs.seat_log(folder, "lost") == folder.logs / "lost.log"


def test_without_a_hub_unknown_and_remote_seats_are_refused(folder: DataFolder) -> None:
    seats(folder, SeatConfig("one", "a.gguf"))
    save_remotes(folder, [RemoteSeatConfig("cloud", "https://api.example.invalid", "big")])
    with pytest.raises(NotFound, match=r"^no seat 'x': the seats are one, cloud$"):
        logs.seat_log(folder, "x")
    with pytest.raises(NotFound) as refused:
        logs.seat_log(folder, "cloud")
    assert str(refused.value) == (
        "seat 'cloud' is a remote seat: it runs elsewhere and has no log here"
    )
    seats(folder)
    save_remotes(folder, [])
    with pytest.raises(NotFound, match=r"^no seat 'x': there are no seats$"):
        logs.seat_log(folder, "x")


def test_with_a_hub_its_rows_name_the_engine(
    folder: DataFolder, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows: list[dict[str, Any]] = [
        {"name": "careful", "kind": "local", "engine": "careful", "reason": None},
        {"name": "bold", "kind": "local", "engine": "careful", "reason": None},
        {"name": "lost", "kind": "local", "engine": None, "reason": "model file not found: x"},
        {"name": "cloud", "kind": "remote"},
        {"name": "tab-1", "kind": "browser"},
    ]
    monkeypatch.setattr(logs, "_hub_rows", lambda folder: rows)
    assert logs.seat_log(folder, "bold") == folder.logs / "careful.log"
    seats(folder, SeatConfig("careful", "a.gguf"), SeatConfig("off", "a.gguf", enabled=False))
    assert logs.seat_log(folder, "off") == folder.logs / "off.log"  # not the hub's: disabled
    with pytest.raises(NotFound, match=r"^no log yet for seat 'lost' \(model file not found: x\)$"):
        logs.seat_log(folder, "lost")
    with pytest.raises(NotFound, match="'tab-1' is a browser seat: it runs elsewhere"):
        logs.seat_log(folder, "tab-1")
    with pytest.raises(NotFound) as unknown:
        logs.seat_log(folder, "x")
    assert str(unknown.value) == "no seat 'x': the seats are careful, bold, lost, cloud, tab-1"


def test_without_a_hub_the_stick_decides(folder: DataFolder) -> None:
    seats(folder, SeatConfig("one", "a.gguf"))
    assert logs._hub_rows(folder) is None  # no council.lock held: no hub
