"""A seat whose engine dies by a signal says what to do, and SIGILL is not retried.

The engine is the fake llama-server (tests/fake_llama_server.py) that dies by SIGILL the way a
build with trapping instructions does, so this runs the same on every CPU.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.fake_engines import install_fake_engine
from tests.hubs import HubProcess

StartHub = Callable[..., HubProcess]


def seat(health: dict[str, Any], name: str) -> dict[str, Any]:
    return next(item for item in health["seats"] if item["name"] == name)


def starts(engine: Path) -> int:
    return len((engine.parent / "fake-engine.runs").read_text().splitlines())


def test_an_engine_killed_by_sigill_mid_answer_fails_its_seat_for_good_with_the_fix(
    start_hub: StartHub, tmp_path: Path
) -> None:
    engine = install_fake_engine(tmp_path / "engine", features=["AMX_INT8"], trap=["AMX_INT8"])
    hub = start_hub(None, "--llama-server", str(engine))
    hub.wait_ok()
    body = {"model": "demo-1", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    reply = httpx.post(f"{hub.url}/v1/chat/completions", json=body, timeout=30)
    assert reply.status_code >= 500
    assert "error" in reply.json()

    failed = seat(hub.wait_for(lambda h: seat(h, "demo-1")["state"] == "failed"), "demo-1")
    assert failed["reason"].startswith("killed by SIGILL: this engine uses CPU instructions")
    assert "named by --llama-server was built for another CPU" in failed["reason"]
    assert failed["restarts"] == 0
    before = starts(engine)
    time.sleep(1.5)  # longer than the first restart backoff
    assert starts(engine) == before
    assert seat(hub.health(), "demo-1")["state"] == "failed"
    assert seat(hub.health(), "demo-2")["state"] == "healthy"
    assert "seat demo-1 failed: killed by SIGILL" in hub.text()


def test_engines_that_die_by_sigill_while_loading_are_named_when_council_up_reports(
    start_hub: StartHub, tmp_path: Path
) -> None:
    engine = install_fake_engine(tmp_path / "engine", trap_always=True, trap_on_start=True)
    hub = start_hub(None, "--llama-server", str(engine))
    health = hub.wait_for(lambda h: all(s["state"] == "failed" for s in h["seats"]))
    assert health["status"] == "degraded"
    assert all(s["reason"].startswith("killed by SIGILL") for s in health["seats"])
    deadline = time.monotonic() + 10
    # The summary line comes first and each seat's line after it: wait for the last one.
    while "  seat demo-3 failed: " not in hub.text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "0 of 3 seats healthy" in hub.text()
    assert "  seat demo-1 failed: killed by SIGILL: this engine uses CPU instructions" in hub.text()
