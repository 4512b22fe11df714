"""Per-device limits and revocation, with a hand-driven clock."""

from __future__ import annotations

import asyncio

import pytest

from council.server.gate import DeviceSessions, counted
from council.settings import DeviceLimits
from tests.running import run as run_coroutine


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def sessions(clock: Clock, streams: int = 2, per_minute: int = 3) -> DeviceSessions:
    return DeviceSessions(lambda: DeviceLimits(streams, per_minute), clock)


def test_work_for_the_engines_and_every_change_is_counted_but_reading_is_not() -> None:
    assert counted({"path": "/v1/models", "method": "GET"})
    assert counted({"path": "/v1/chat/completions", "method": "POST"})
    assert counted({"path": "/api/conversations/x/messages", "method": "POST"})
    for method in ("PATCH", "PUT", "DELETE"):  # each may rewrite a file on the stick
        assert counted({"path": "/api/conversations/x", "method": method})
    assert not counted({"path": "/api/conversations", "method": "GET"})
    assert not counted({"path": "/static/app.js", "method": "GET"})


def test_a_device_may_start_its_requests_per_minute_then_waits_for_the_oldest_to_age() -> None:
    clock = Clock()
    gate = sessions(clock, streams=10)
    for _ in range(3):
        assert gate.refusal("phone") is None
        gate.close(gate.open("phone"))
        clock.now += 10
    reason, wait = gate.refusal("phone") or ("", 0.0)
    assert reason == "3 requests a minute"
    assert wait == pytest.approx(30.0)  # the first start, at 1000, ages out at 1060
    assert gate.refusal("tablet") is None  # limits are per device
    clock.now += 30
    assert gate.refusal("phone") is None


def test_a_device_may_hold_its_streams_open_and_no_more() -> None:
    clock = Clock()
    gate = sessions(clock, streams=2, per_minute=100)
    first, _second = gate.open("phone"), gate.open("phone")
    assert gate.refusal("phone") == ("2 open at once", 1.0)
    assert gate.counts() == {"phone": 2}
    gate.close(first)
    assert gate.refusal("phone") is None


def test_revoking_cancels_exactly_that_devices_open_requests() -> None:
    run_coroutine(revoking())


async def revoking() -> None:
    gate = sessions(Clock(), streams=5, per_minute=100)
    started = asyncio.Event()

    async def request(device: str) -> str:
        entry = gate.open(device)
        try:
            started.set()
            await asyncio.sleep(60)
            return "finished"
        except asyncio.CancelledError:
            return "revoked" if entry.revoked else "cancelled"
        finally:
            gate.close(entry)

    phone = [asyncio.create_task(request("phone")) for _ in range(2)]
    tablet = asyncio.create_task(request("tablet"))
    await asyncio.sleep(0)
    assert gate.revoke("phone") == 2
    assert await asyncio.gather(*phone) == ["revoked", "revoked"]
    assert not tablet.done()
    assert gate.counts() == {"tablet": 1}
    tablet.cancel()
    assert await tablet == "cancelled"
    assert gate.revoke("nobody") == 0


def test_a_browser_seats_task_stream_holds_no_stream_slot_but_is_tracked_for_revocation() -> None:
    gate = sessions(Clock(), streams=1, per_minute=1)
    tab = gate.open("phone", counted=False)
    assert gate.refusal("phone") is None  # neither a stream slot nor a start was used
    assert gate.counts() == {"phone": 1}
    assert gate.revoke("phone") == 1
    assert tab.revoked
