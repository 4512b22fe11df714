"""A stick that fills up, turns read-only or stalls while the hub runs on it: the round in flight
ends saying so, writes are refused with that reason, reads and `/v1` keep working, health says
what is wrong, and a stall never freezes the hub.

The stick is a loop-mounted ext4 image the test makes (root only; skipped where the kernel
refuses). "Read-only" is ext4's own reaction to an error on a stick (`errors=remount-ro`),
set off through `/sys/fs/ext4/<dev>/trigger_fs_error`; "stalled" is `fsfreeze`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from council.config import HubConfig, save_config
from council.datafolder import DataFolder
from council.defaults import demo_seats
from tests.hubs import HubProcess, engines_frozen, new_conversation, sse_events


@dataclass
class Stick:
    mount_point: Path
    device: str  # e.g. loop3

    @property
    def data(self) -> Path:
        """The whole stick is the data folder, so the hub's terminal output (kept beside the
        data folder by `HubProcess`) is not on the failing stick."""
        return self.mount_point

    def fill(self) -> Path:
        """Write a file until the kernel says there is no room (root's reserve included)."""
        filler = self.mount_point / "filler"
        with open(filler, "wb", buffering=0) as out, contextlib.suppress(OSError):
            while True:
                out.write(b"\0" * 65536)
        with contextlib.suppress(OSError), open(self.mount_point / "filler-2", "wb") as out:
            while True:  # the last few blocks, smaller than one chunk
                out.write(b"\0" * 512)
                out.flush()
                os.fsync(out.fileno())
        return filler

    def make_room(self) -> None:
        for name in ("filler", "filler-2"):
            (self.mount_point / name).unlink(missing_ok=True)

    def turn_read_only(self) -> None:
        """Set off an ext4 error; with errors=remount-ro the kernel turns the filesystem
        read-only in work of its own, a moment later: wait until a write is refused."""
        Path(f"/sys/fs/ext4/{self.device}/trigger_fs_error").write_text("council test\n")
        probe = self.mount_point / ".read-only-yet"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with open(probe, "wb") as out:
                    out.write(b"x")
                    out.flush()
                    os.fsync(out.fileno())
            except OSError as exc:
                if exc.errno == errno.EROFS:
                    return
                raise
            time.sleep(0.01)
        pytest.fail("the filesystem did not turn read-only within 10 s")

    def freeze(self) -> None:
        subprocess.run(["fsfreeze", "--freeze", str(self.mount_point)], check=True, timeout=30)

    def thaw(self) -> None:
        subprocess.run(["fsfreeze", "--unfreeze", str(self.mount_point)], check=False)


@pytest.fixture
def stick(tmp_path: Path) -> Iterator[Stick]:
    image, mount_point = tmp_path / "stick.img", tmp_path / "stick"
    mount_point.mkdir()
    with open(image, "wb") as out:
        out.truncate(96 * 1024 * 1024)
    made = subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], capture_output=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"mkfs.ext4 failed: {made.stderr.decode().strip()}")
    mounted = subprocess.run(
        ["mount", "-o", "loop,errors=remount-ro", str(image), str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"the kernel refused a loop mount (needs root): {mounted.stderr.strip()}")
    source = subprocess.run(
        ["findmnt", "-n", "-o", "SOURCE", str(mount_point)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    made_stick = Stick(mount_point, Path(source).name)
    try:
        yield made_stick
    finally:
        made_stick.thaw()  # never leave a frozen filesystem behind, whatever failed
        for _ in range(20):  # the hub's engines may take a moment to let go of their files
            if subprocess.run(["umount", "-l", str(mount_point)], check=False).returncode == 0:
                break
            time.sleep(0.5)


def hub_on(stick: Stick, start_hub: Any) -> HubProcess:
    folder = DataFolder(stick.data)
    folder.prepare()
    save_config(folder, HubConfig(seats=demo_seats()))
    hub: HubProcess = start_hub(stick.data)
    hub.wait_ok(timeout=90)
    return hub


def round_while(hub: HubProcess, stick_fails: Any) -> list[tuple[str, dict[str, Any]]]:
    """A one-seat round in which the stick fails after the question was stored."""
    conversation = new_conversation(hub)
    url = f"{hub.url}/api/conversations/{conversation}/messages"
    body = {"question": "Is the stick fine?", "seats": ["demo-1"], "max_tokens": 24}
    events: list[tuple[str, dict[str, Any]]] = []
    deadline = time.monotonic() + 60

    def lines(response: httpx.Response) -> Iterator[str]:
        for line in response.iter_lines():  # heartbeats arrive even when the round never ends
            if time.monotonic() > deadline:
                pytest.fail(f"the round never ended; events so far: {[k for k, _ in events]}")
            yield line

    with httpx.stream("POST", url, json=body, timeout=60) as response:
        assert response.status_code == 200
        stream = sse_events(lines(response))
        with engines_frozen(hub):  # a moment, well inside the liveness timeout
            events.append(next(stream))  # run_start: the message row is on the stick
            stick_fails()
        events += list(stream)
    return events


def test_a_stick_that_fills_mid_round_ends_it_saying_so_and_keeps_serving_reads(
    stick: Stick, start_hub: Any
) -> None:
    hub = hub_on(stick, start_hub)
    events = round_while(hub, stick.fill)

    kinds = [kind for kind, _ in events]
    assert kinds[0] == "run_start"
    assert kinds[-1] == "done"  # the stream ends properly, not with a reset
    (error,) = [data["message"] for kind, data in events if kind == "error"]
    assert "the stick is full" in error
    done = events[-1][1]
    assert done["status"] == "failed"
    assert done["saved"] is False
    assert "not saved" in done["error"]

    health = hub.health()
    assert health["status"] == "degraded"
    assert "the stick is full" in health["stick"]

    with httpx.Client(base_url=hub.url, timeout=30) as client:  # one kept-alive connection
        refused = client.post("/api/conversations", json={"title": "more"})
        assert refused.status_code == 507
        assert "the stick is full" in refused.json()["error"]["message"]
        assert str(stick.mount_point) not in refused.text  # phones read this: no laptop paths
        assert client.get("/api/conversations").status_code == 200  # the same connection
        council = client.post(
            "/v1/chat/completions",
            json={"model": "council", "messages": [{"role": "user", "content": "Hi?"}]},
        )
        assert council.status_code == 507
        assert set(council.json()["error"]) == {"message", "type", "param", "code"}
        passthrough = client.post(
            "/v1/chat/completions",
            json={
                "model": "demo-2",
                "messages": [{"role": "user", "content": "Hi?"}],
                "max_tokens": 4,
            },
        )
        assert passthrough.status_code == 200  # the engines need no stick to answer

        stick.make_room()
        hub.wait_for(lambda health: health["status"] == "ok" and health["stick"] is None)
        assert client.post("/api/conversations", json={"title": "again"}).status_code == 201
        # The round's end, kept aside while the stick was full, is on the stick now.
        stored = client.get(f"/api/conversations/{done['conversation_id']}").json()
        (message,) = stored["messages"]
        assert message["status"] == "failed"
        assert "not saved" in message["error"]


def test_a_stick_that_turns_read_only_mid_round_ends_it_saying_so(
    stick: Stick, start_hub: Any
) -> None:
    if not Path(f"/sys/fs/ext4/{stick.device}/trigger_fs_error").exists():
        pytest.skip("this kernel cannot set off an ext4 error on purpose")
    hub = hub_on(stick, start_hub)
    events = round_while(hub, stick.turn_read_only)

    assert [kind for kind, _ in events][-1] == "done"
    (error,) = [data["message"] for kind, data in events if kind == "error"]
    assert "the stick is read-only" in error
    health = hub.health()
    assert health["status"] == "degraded"
    assert "read-only" in health["stick"]
    with httpx.Client(base_url=hub.url, timeout=30) as client:
        refused = client.post("/api/conversations", json={"title": "more"})
        assert refused.status_code == 503
        assert "the stick is read-only" in refused.json()["error"]["message"]
        listed = client.get("/api/conversations")
        assert listed.status_code == 200
        assert len(listed.json()["conversations"]) == 1  # what was stored is still read


def test_a_stalled_stick_leaves_health_and_other_users_streams_answering(
    stick: Stick, start_hub: Any
) -> None:
    hub = hub_on(stick, start_hub)
    with httpx.Client(base_url=hub.url, timeout=30) as client, ThreadPoolExecutor(2) as pool:
        stick.freeze()
        try:
            began = time.monotonic()
            blocked = pool.submit(client.post, "/api/conversations", json={"title": "waits"})
            latencies, stalled = [], None
            while time.monotonic() - began < 6:
                sent = time.monotonic()
                health = httpx.get(f"{hub.url}/api/health", timeout=3).json()
                latencies.append(time.monotonic() - sent)
                if health["stick"]:
                    stalled = health
                time.sleep(0.2)
            streamed = httpx.post(
                f"{hub.url}/v1/chat/completions",
                json={
                    "model": "demo-3",
                    "messages": [{"role": "user", "content": "Hi?"}],
                    "max_tokens": 8,
                    "stream": True,
                },
                timeout=5,
            )
            assert not blocked.done()  # the write waits for the stick, and only it
        finally:
            stick.thaw()
        print(f"/api/health during a 6 s freeze: max {max(latencies) * 1000:.0f} ms")
        assert streamed.status_code == 200
        assert "data: [DONE]" in streamed.text
        assert stalled is not None
        assert stalled["status"] == "degraded"
        assert "has not finished a write" in stalled["stick"]
        assert blocked.result(timeout=30).status_code == 201  # it went through once thawed
        hub.wait_for(lambda health: health["stick"] is None, timeout=10)
