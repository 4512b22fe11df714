"""A paired device's browser tabs: few per device, answering that device's rounds only, and
no answer (from a tab, or any seat) grows without end."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from council.deliberation import rounds
from council.deliberation.browser_seat import MAX_PER_DEVICE, BrowserSeats
from council.deliberation.events import EventType
from council.deliberation.rounds import RoundOptions
from council.deliberation.seats import Completion, Message, OnDelta, Sampling, Seat, SeatFailure
from council.deliberation.service import CouncilService
from council.errors import NotFound
from council.settings import RoundDefaults
from council.store import conversations
from council.store.access import Store
from council.types import Usage
from tests.running import run
from tests.scripted_seats import PausingSeat


def test_a_device_holds_a_few_registrations_and_cannot_take_the_laptops() -> None:
    tabs = BrowserSeats()
    for _ in range(MAX_PER_DEVICE):
        tabs.register("browser (phone)", None, set(), "phone-1")
    with pytest.raises(SeatFailure, match=f"this device has {MAX_PER_DEVICE} browser seats"):
        tabs.register("browser (phone)", None, set(), "phone-1")
    assert tabs.register("browser (phone)", None, set(), "phone-2").device_id == "phone-2"
    laptop = tabs.register("browser (this tab)", None, set())
    assert laptop.device_id is None


def roster_service(db: Store) -> CouncilService:
    seats: dict[str, Any] = {"local": PausingSeat("local", 0)}
    for name, device in (("laptop-tab", None), ("phone-tab", "phone-1"), ("other-tab", "phone-2")):
        tab = PausingSeat(name, 0)
        tab.device_id = device  # type: ignore[attr-defined]
        seats[name] = tab
    return CouncilService(db, lambda: seats, RoundDefaults)


def test_the_owners_default_round_leaves_out_a_phones_tab_unless_it_is_named(db: Store) -> None:
    service = roster_service(db)
    assert service.options({}).seats == ("local", "laptop-tab")
    named = service.options({"seats": ["local", "phone-tab"]})
    assert named.seats == ("local", "phone-tab")


def test_a_phones_round_uses_its_own_tab_and_never_another_devices(db: Store) -> None:
    service = roster_service(db)
    assert service.options({}, device_id="phone-1").seats == ("local", "laptop-tab", "phone-tab")
    with pytest.raises(NotFound, match="unknown seat 'other-tab'"):
        service.options({"seats": ["other-tab"]}, device_id="phone-1")
    with pytest.raises(NotFound, match="unknown chair 'other-tab'"):
        service.options({"chair": "other-tab"}, device_id="phone-1")


class Endless(PausingSeat):
    """Sends far past any max_tokens, as a remote server or a tab may."""

    async def complete(
        self, messages: list[Message], sampling: Sampling, on_delta: OnDelta
    ) -> Completion:
        for _ in range(10_000):
            on_delta("x" * 100)
            await asyncio.sleep(0)
        return Completion("never", Usage(), "stop")


def test_an_answer_past_its_size_fails_that_seat_and_keeps_what_fits(
    db: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rounds, "MAX_OUTPUT", 1000)
    seats: dict[str, Seat] = {"endless": Endless("endless", 0), "fine": PausingSeat("fine", 0)}
    service = CouncilService(db, lambda: seats, RoundDefaults)
    conversation = db.submit(conversations.create_conversation, "x").result()
    options = RoundOptions(seats=("endless", "fine"), chair="fine", sampling=Sampling(8))

    async def main() -> list[tuple[str, dict[str, Any]]]:
        handle = await service.start(conversation, "Say something.", options)
        return [(str(event.type), event.data) async for event in handle.events()]

    events = run(main())
    (error,) = [data for kind, data in events if kind == EventType.SEAT_ERROR]
    assert error["seat"] == "endless"
    assert error["error"] == "the answer passed 1,000 characters and was cut off"
    assert len(error["content"]) == 1000
    assert events[-1][1]["status"] == "done"  # the round went on without it


def test_a_tabs_answer_past_its_size_fails_its_task_and_tells_the_tab_to_stop() -> None:
    async def main() -> tuple[bool, str, tuple[str, dict[str, Any]] | None]:
        tabs = BrowserSeats()
        tab = tabs.register("browser (phone)", None, set(), "phone-1")
        written = 0

        def on_delta(delta: str) -> None:
            nonlocal written
            written += len(delta)
            if written > 10:
                raise SeatFailure("the answer passed 10 characters and was cut off")

        answer = asyncio.create_task(tab.complete([], Sampling(8), on_delta))
        kind, data = await tab.next_event()
        assert kind == "task"
        accepted = tab.deliver(data["task"], {"deltas": ["0123456789", "more"]})
        try:
            await answer
            raised = ""
        except SeatFailure as exc:
            raised = str(exc)
        return accepted, raised, await tab.next_event()

    accepted, raised, told = run(main())
    assert not accepted  # the post is refused: this task has ended
    assert raised == "the answer passed 10 characters and was cut off"
    assert told is not None
    assert told[0] == "cancel"
