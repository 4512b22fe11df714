"""The council service around a round, on scripted seats: what it refuses, what it stores for
a round that fails, stops or meets a bug, and a tied vote the chair settles."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from council.deliberation.rounds import RoundOptions
from council.deliberation.seats import Completion, Message, OnDelta, Sampling, Seat
from council.deliberation.service import MAX_QUESTION, CouncilService
from council.errors import BadRequest
from council.settings import RoundDefaults
from council.store import conversations
from council.store.access import Store
from tests.running import run
from tests.scripted_seats import FAIL, PausingSeat, ScriptedSeat
from tests.unit.test_vote import vote

Events = list[tuple[str, dict[str, Any]]]


class BuggySeat(ScriptedSeat):
    """A seat whose code has a bug: it raises what no seat may raise."""

    async def complete(
        self, messages: list[Message], sampling: Sampling, on_delta: OnDelta
    ) -> Completion:
        raise RuntimeError("a bug in a seat")


def _service(db: Store, seats: dict[str, Seat]) -> CouncilService:
    return CouncilService(db, lambda: seats, RoundDefaults)


def _options(seats: dict[str, Seat], chair: str) -> RoundOptions:
    return RoundOptions(seats=tuple(seats), chair=chair, sampling=Sampling(8), shuffle_seed=1)


def _stored(db: Store, conversation: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = db.submit(conversations.get_conversation, conversation).result()[
        "messages"
    ]
    return found


def _round(db: Store, seats: dict[str, Seat], chair: str) -> tuple[str, Events]:
    conversation = db.submit(conversations.create_conversation, "x").result()

    async def main() -> Events:
        handle = await _service(db, seats).start(conversation, "Why?", _options(seats, chair))
        return [(str(event.type), event.data) async for event in handle.events()]

    return conversation, run(main())


@pytest.mark.parametrize(
    ("question", "message"),
    [("   ", "the question is empty"), ("x" * (MAX_QUESTION + 1), "longer than")],
)
def test_a_refused_question_makes_no_conversation_and_stores_nothing(
    db: Store, question: str, message: str
) -> None:
    seats: dict[str, Seat] = {"a": ScriptedSeat("a", "fine")}
    before = db.submit(conversations.list_conversations).result()

    async def main() -> None:
        await _service(db, seats).start(None, question, _options(seats, "a"))

    with pytest.raises(BadRequest, match=message):
        run(main())
    assert db.submit(conversations.list_conversations).result() == before


def test_a_round_nobody_answers_is_stored_failed_with_the_reason_and_an_error_event(
    db: Store,
) -> None:
    seats: dict[str, Seat] = {"a": ScriptedSeat("a", FAIL), "b": ScriptedSeat("b", FAIL)}
    conversation, events = _round(db, seats, "a")
    (error,) = [data for kind, data in events if kind == "error"]
    (message,) = _stored(db, conversation)
    assert message["status"] == "failed"
    assert message["error"] == error["message"]
    assert "failed as scripted" in message["error"]
    assert events[-1][1]["saved"] is True


def test_a_bug_in_a_seat_ends_the_round_failed_in_words_and_never_hangs_the_stream(
    db: Store,
) -> None:
    seats: dict[str, Seat] = {"a": BuggySeat("a", "x")}
    conversation, events = _round(db, seats, "a")
    assert events[-1][0] == "done"
    assert events[-1][1]["status"] == "failed"
    (message,) = _stored(db, conversation)
    assert message["error"] == "internal error: RuntimeError('a bug in a seat')"


def test_a_stopped_round_is_stored_cancelled_with_what_its_seats_had_written(db: Store) -> None:
    seats: dict[str, Seat] = {"slow": PausingSeat("slow", 30)}
    conversation = db.submit(conversations.create_conversation, "x").result()

    async def main() -> Events:
        handle = await _service(db, seats).start(conversation, "Why?", _options(seats, "slow"))
        await asyncio.sleep(0.1)
        handle.stop()
        return [(str(event.type), event.data) async for event in handle.events()]

    events = run(main())
    assert events[-1][1]["status"] == "cancelled"
    (message,) = _stored(db, conversation)
    assert message["status"] == "cancelled"
    assert [output["status"] for output in message["outputs"]] == ["cancelled"]


def test_a_tied_vote_goes_to_the_tied_answer_the_chair_picks(db: Store) -> None:
    seats: dict[str, Seat] = {
        "a": ScriptedSeat("a", "Answer: 13"),
        "b": ScriptedSeat("b", "Answer: 12"),
        "chair": ScriptedSeat("chair", "Six and seven make thirteen. Answer: 13"),
    }
    done = vote(db, seats, "chair")[-1][1]
    assert done["answer"] == "13"
    assert done["result"]["decided_by"] == "the chair (chair)"
    assert (done["result"]["votes"], done["result"]["voters"]) == (1, 2)
