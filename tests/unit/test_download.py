"""One file fetched against the loopback Hub stand-in, in process: stalls, a full stick, two
writers, a cancel. Each ends with the file whole or the partial kept for the next run."""

from __future__ import annotations

import errno
import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import urllib3

from council.errors import Conflict, PullCancelled, StickFull
from council.pull import download
from council.pull.download import Wanted, fetch, partial_paths, pending, read_state
from tests.fake_hf import FakeHub, running_hub

SIZE = 3 * 1024 * 1024 + 12345


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[FakeHub]:
    blob = tmp_path / "blob-Q4_0.gguf"
    blob.write_bytes(hashlib.sha256(b"seed").digest() * (SIZE // 32) + b"x" * (SIZE % 32))
    with running_hub() as fake:
        fake.add("o/m", {"blob-Q4_0.gguf": blob})
        yield fake


def wanted(hub: FakeHub) -> Wanted:
    item = hub.repos["o/m"].files["blob-Q4_0.gguf"]
    commit = hub.repos["o/m"].commit
    url = f"{hub.url}/o/m/resolve/{commit}/blob-Q4_0.gguf"
    return Wanted("o/m", commit, "blob-Q4_0.gguf", item.size, item.sha256, url)


def client() -> urllib3.PoolManager:
    return download.pool({})


def test_a_stall_is_noticed_and_the_download_goes_on_from_where_it_stopped(
    hub: FakeHub, tmp_path: Path
) -> None:
    hub.faults.pause["blob-Q4_0.gguf"] = (SIZE // 2, 3.0)
    with client() as http:
        got = fetch(wanted(hub), tmp_path / "downloads", http, stall=0.5)
    assert got.sha256 == hub.repos["o/m"].files["blob-Q4_0.gguf"].sha256
    ranges = hub.ranges("blob-Q4_0.gguf")
    assert ranges[0] is None
    assert int(ranges[1].removeprefix("bytes=").rstrip("-")) >= SIZE // 2 - 64 * 1024


def test_a_stick_without_room_is_refused_before_the_first_byte(
    hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Usage:
        free = 1024 * 1024

    monkeypatch.setattr(download.shutil, "disk_usage", lambda _path: Usage)
    downloads = tmp_path / "downloads"
    with client() as http, pytest.raises(StickFull, match=r"needs 3\.2 MB more"):
        fetch(wanted(hub), downloads, http)
    assert hub.ranges("blob-Q4_0.gguf") == []
    assert list(downloads.iterdir()) == []  # nothing for a later start to resume


def test_a_stick_that_fills_up_keeps_the_partial_for_the_next_run(
    hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = download._Writer.write
    monkeypatch.setattr(download, "CHECKPOINT", 1024 * 1024)

    def filling(self: download._Writer, data: bytes) -> None:
        if self.offset > 2 * 1024 * 1024:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(self, data)

    monkeypatch.setattr(download._Writer, "write", filling)
    downloads = tmp_path / "downloads"
    with client() as http, pytest.raises(StickFull, match="are kept; make room"):
        fetch(wanted(hub), downloads, http)
    (state,) = pending(downloads)
    assert state.checkpoint >= 1024 * 1024

    monkeypatch.setattr(download._Writer, "write", real_write)
    with client() as http:
        got = fetch(wanted(hub), downloads, http)
    assert got.resumed_from == state.checkpoint
    assert got.path.read_bytes() == (hub.repos["o/m"].files["blob-Q4_0.gguf"].path).read_bytes()


def test_two_writers_of_one_partial_are_refused(hub: FakeHub, tmp_path: Path) -> None:
    from council.datafolder import lock_exclusively

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    _, _, lock = partial_paths(downloads, wanted(hub))
    with open(lock, "a+b") as held:
        lock_exclusively(held)
        with client() as http, pytest.raises(Conflict, match="another council process"):
            fetch(wanted(hub), downloads, http)


def test_a_cancelled_download_keeps_what_arrived_for_later(hub: FakeHub, tmp_path: Path) -> None:
    hub.faults.throttle = 2_000_000
    stop = threading.Event()
    downloads = tmp_path / "downloads"

    def progress(done: int, _total: int) -> None:
        if done > SIZE // 3:
            stop.set()

    with client() as http, pytest.raises(PullCancelled):
        fetch(wanted(hub), downloads, http, progress=progress, stop=stop)
    part, state_path, _ = partial_paths(downloads, wanted(hub))
    state = read_state(state_path)
    assert state is not None
    assert state.checkpoint == part.stat().st_size > SIZE // 3
