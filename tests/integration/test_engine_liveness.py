"""An engine that stops answering (SIGSTOP here; a wedged driver or a swap storm in life) is
reported unresponsive, killed and restarted; nothing waits on it forever."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import psutil

from tests.hubs import HubProcess, gone


def seat_row(health: dict[str, Any], name: str) -> dict[str, Any]:
    (row,) = [row for row in health["seats"] if row["name"] == name]
    return row


def engine_of_seat(hub: HubProcess, name: str) -> psutil.Process:
    (engine,) = [
        engine
        for engine in hub.engines()
        if engine.cmdline()[engine.cmdline().index("--alias") + 1] == name
    ]
    return engine


def ask_directly(hub: HubProcess, seat: str) -> httpx.Response:
    body = {"model": seat, "messages": [{"role": "user", "content": "Hello?"}], "max_tokens": 4}
    return httpx.post(f"{hub.url}/v1/chat/completions", json=body, timeout=90)


def test_a_hung_engine_is_reported_unresponsive_then_killed_and_restarted(
    hub: HubProcess,
) -> None:
    victim = engine_of_seat(hub, "demo-2")
    os.kill(victim.pid, signal.SIGSTOP)
    try:
        with ThreadPoolExecutor(1) as pool:
            began = time.monotonic()
            waiting = pool.submit(ask_directly, hub, "demo-2")  # sent to the hung engine
            unresponsive = hub.wait_for(
                lambda health: seat_row(health, "demo-2")["state"] == "unresponsive", timeout=30
            )
            assert unresponsive["status"] == "degraded"
            assert "/health" in seat_row(unresponsive, "demo-2")["reason"]

            refused = ask_directly(hub, "demo-2")  # a new request is told why at once
            assert refused.status_code == 503
            assert "unresponsive" in refused.json()["error"]["message"]

            answered = waiting.result(timeout=90)  # the hung request ends when the engine does
            assert time.monotonic() - began < 60
            assert answered.status_code >= 500
            assert "error" in answered.json()
        restarted = hub.wait_for(
            lambda health: (
                seat_row(health, "demo-2")["state"] == "healthy"
                and seat_row(health, "demo-2")["restarts"] >= 1
            ),
            timeout=60,
        )
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim.pid, signal.SIGCONT)
    assert restarted["status"] == "ok"
    assert gone(victim.pid)
    assert engine_of_seat(hub, "demo-2").pid != victim.pid
    assert ask_directly(hub, "demo-2").status_code == 200
    assert "hung" in (hub.data / "logs" / "demo-2.log").read_text()
