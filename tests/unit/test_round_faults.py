"""A round survives what happens to its seats while it runs."""

from __future__ import annotations

import asyncio

from council.deliberation.events import EventType
from council.deliberation.rounds import RoundOptions
from council.deliberation.seats import Sampling, Seat
from council.deliberation.service import CouncilService
from council.settings import RoundDefaults
from council.store import conversations
from council.store.access import Store
from tests.running import run
from tests.scripted_seats import PausingSeat


def test_a_seat_removed_mid_round_fails_its_later_prompts_and_the_round_completes(
    db: Store,
) -> None:
    seats: dict[str, Seat] = {"a": PausingSeat("a", 0.05), "b": PausingSeat("b", 0.05)}
    service = CouncilService(db, lambda: seats, RoundDefaults)
    conversation = db.submit(conversations.create_conversation, "x").result()
    options = RoundOptions(seats=("a", "b"), chair="a", sampling=Sampling(max_tokens=8))

    async def main() -> list[tuple[str, dict[str, object]]]:
        handle = await service.start(conversation, "Why is the sky blue?", options)
        seen = []
        async for event in handle.events():
            seen.append((str(event.type), event.data))
            if event.type == EventType.STAGE_START and event.data["stage"] == "answer":
                del seats["b"]  # the owner removes the seat while it answers
        await asyncio.sleep(0)
        return seen

    events = run(main())
    errors = [(d["seat"], d["error"]) for kind, d in events if kind == "seat_error"]
    assert errors == [("b", "the seat was removed")]
    done = events[-1][1]
    assert done["status"] == "done"
    assert str(done["answer"]).startswith("answer")
    assert [kind for kind, _ in events].count("error") == 0
