"""`council logs` in a terminal: the hub's log and the seats' engine logs, following one, and
the seats that have none."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

from council.config import HubConfig, SeatConfig, save_config
from council.datafolder import DataFolder
from council.defaults import demo_seats
from council.engine.binary import EngineBinary
from council.remotes import RemoteSeatConfig, save_remotes
from council.store import conversations
from council.store.db import connect
from tests.hubs import HubProcess, run_council

StartHub = Callable[..., HubProcess]
INTERRUPTED = "1 answer(s) were interrupted when the last hub stopped"


def council(engine: EngineBinary, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COUNCIL_LLAMA_SERVER": str(engine.path)}
    return run_council(*args, env=env, timeout=60)


def an_interrupted_answer(folder: DataFolder) -> None:
    """A round left running in council.db, as a killed hub leaves it: the next hub logs it."""
    db = connect(folder.database)
    try:
        conversation = conversations.create_conversation(db, "cut short")
        conversations.start_message(db, conversation, "Still there?", "synthesize", {})
    finally:
        db.close()


def one_line_refusal(result: subprocess.CompletedProcess[str], text: str) -> None:
    assert result.returncode == 1, result
    assert result.stdout == ""
    assert result.stderr.strip() == f"Error: {text}"
    assert len(result.stderr.strip().splitlines()) == 1


def test_logs_shows_the_hubs_log_and_each_seats_engine_log(
    engine_binary: EngineBinary, isolated_data: DataFolder, start_hub: StartHub
) -> None:
    one_line_refusal(
        council(engine_binary, "logs"), "no hub log yet: `./council up` writes logs/council.log"
    )
    one_line_refusal(
        council(engine_binary, "logs", "demo-1"),
        "no log yet for seat 'demo-1' (logs/demo-1.log: its engine has not started)",
    )
    # A fourth seat of demo-1's model and settings shares its engine, and so its log.
    save_config(
        isolated_data,
        HubConfig(seats=(*demo_seats(), SeatConfig("twin", "demo/demo-1.gguf", temperature=1.0))),
    )
    save_remotes(isolated_data, [RemoteSeatConfig("cloud", "https://api.example.invalid", "big")])
    an_interrupted_answer(isolated_data)
    hub = start_hub()
    hub.wait_ok()

    hub_log = council(engine_binary, "logs")
    assert hub_log.returncode == 0, hub_log.stderr
    assert INTERRUPTED in hub_log.stdout
    assert hub_log.stdout.splitlines()[-1].endswith(
        (isolated_data.logs / "council.log").read_text().splitlines()[-1]
    )

    engine_log = isolated_data.logs / "demo-1.log"
    last = council(engine_binary, "logs", "demo-1", "-n", "5")
    assert last.returncode == 0, last.stderr
    assert last.stdout.splitlines() == engine_log.read_text().splitlines()[-5:]
    assert len(last.stdout.splitlines()) == 5
    whole = council(engine_binary, "logs", "twin", "--lines", "100000")
    assert whole.returncode == 0, whole.stderr
    assert "=== council: starting seat demo-1 on port " in whole.stdout
    assert "=== council: starting seat demo-2" not in whole.stdout
    assert "starting seat demo-2 on port" in council(engine_binary, "logs", "demo-2").stdout

    one_line_refusal(
        council(engine_binary, "logs", "nobody"),
        "no seat 'nobody': the seats are demo-1, demo-2, demo-3, twin, cloud",
    )
    one_line_refusal(
        council(engine_binary, "logs", "cloud"),
        "seat 'cloud' is a remote seat: it runs elsewhere and has no log here",
    )

    hub.stop()  # without a hub, config.toml says which engine a seat is in
    again = council(engine_binary, "logs", "twin", "-n", "100000")
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == engine_log.read_text().splitlines()
    one_line_refusal(
        council(engine_binary, "logs", "cloud"),
        "seat 'cloud' is a remote seat: it runs elsewhere and has no log here",
    )
    one_line_refusal(
        council(engine_binary, "logs", "nobody"),
        "no seat 'nobody': the seats are demo-1, demo-2, demo-3, twin, cloud",
    )


class Following:
    """`council logs --follow ...` as a child whose stdout a thread reads line by line, so a
    test can wait for a line with a deadline; killed by its PID and its pipes closed on exit."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "council", "logs", "--follow", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self._lines: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)

    def until(self, text: str, timeout: float = 30) -> list[str]:
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while not any(text in line for line in seen):
            left = deadline - time.monotonic()
            assert left > 0, f"no line with {text!r} in {seen}"
            with contextlib.suppress(queue.Empty):
                seen.append(self._lines.get(timeout=left))
        return seen

    def stderr_line(self) -> str:
        assert self.process.stderr is not None
        return self.process.stderr.readline()

    def ctrl_c(self) -> tuple[int, str]:
        """Ctrl-C, then the exit status and what is left on stderr."""
        self.process.send_signal(signal.SIGINT)
        status = self.process.wait(timeout=20)
        assert self.process.stderr is not None
        return status, self.process.stderr.read()

    def __enter__(self) -> Following:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._reader.join(timeout=10)
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()


def test_logs_follow_prints_what_the_hub_writes_after_it_started_and_stops_on_ctrl_c(
    engine_binary: EngineBinary, isolated_data: DataFolder, start_hub: StartHub
) -> None:
    an_interrupted_answer(isolated_data)
    hub = start_hub()
    hub.wait_ok()
    env = {**os.environ, "COUNCIL_LLAMA_SERVER": str(engine_binary.path)}
    with Following("-n", "20", env=env) as following:
        assert any(INTERRUPTED in line for line in following.until(INTERRUPTED))
        log = isolated_data.logs / "council.log"
        with open(log, "a", encoding="utf-8") as out:
            out.write("2030-01-01 00:00:00,000 INFO a line written after `logs -f` began\n")
        following.until("a line written after `logs -f` began")

        # The log rotated (RotatingFileHandler renames it to council.log.1): the new one's lines.
        os.replace(log, log.with_name("council.log.1"))
        log.write_text("2030-01-01 00:00:01,000 INFO the first line of a new log\n")
        following.until("the first line of a new log")

        assert following.ctrl_c() == (0, "")  # quietly: no traceback, no "Aborted!"


def test_logs_follow_waits_for_a_log_that_is_not_there_yet(isolated_data: DataFolder) -> None:
    with Following() as following:
        assert following.stderr_line() == "waiting for logs/council.log…\n"
        (isolated_data.logs / "council.log").write_text("council is serving, at last\n")
        following.until("council is serving, at last")
        assert following.ctrl_c() == (0, "")
