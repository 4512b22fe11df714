"""Vote mode's verdict: the winner alone is the answer, the tally beside it says majority or
plurality, and no note shows a Python value."""

from __future__ import annotations

from typing import Any

from council.deliberation.rounds import RoundOptions
from council.deliberation.seats import Sampling, Seat
from council.deliberation.service import CouncilService
from council.render import TerminalRenderer
from council.settings import RoundDefaults
from council.store import conversations
from council.store.access import Store
from council.types import Mode
from tests.running import run
from tests.scripted_seats import ScriptedSeat


def vote(db: Store, seats: dict[str, Seat], chair: str) -> list[tuple[str, dict[str, Any]]]:
    service = CouncilService(db, lambda: seats, RoundDefaults)
    conversation = db.submit(conversations.create_conversation, "x").result()
    options = RoundOptions(
        mode=Mode.VOTE, seats=tuple(s for s in seats if s != "chair"), chair=chair,
        sampling=Sampling(8), extractor="number",
    )  # fmt: skip

    async def main() -> list[tuple[str, dict[str, Any]]]:
        handle = await service.start(conversation, "What is 6 + 7?", options)
        return [(str(event.type), event.data) async for event in handle.events()]

    return run(main())


def test_more_than_half_the_votes_is_a_majority_and_the_answer_is_the_winner_alone(
    db: Store,
) -> None:
    seats: dict[str, Seat] = {
        "a": ScriptedSeat("a", "It is 13."),
        "b": ScriptedSeat("b", "13"),
        "c": ScriptedSeat("c", "Surely 12."),
    }
    done = vote(db, seats, "a")[-1][1]
    assert done["answer"] == "13"
    assert (done["result"]["votes"], done["result"]["voters"]) == (2, 3)
    assert done["result"]["decided_by"] == "majority"


def test_the_most_votes_but_not_more_than_half_is_a_plurality(db: Store) -> None:
    seats: dict[str, Seat] = {
        "a": ScriptedSeat("a", "13"),
        "b": ScriptedSeat("b", "13"),
        "c": ScriptedSeat("c", "12"),
        "d": ScriptedSeat("d", "11"),
        "chair": ScriptedSeat("chair", "13"),
    }
    done = vote(db, seats, "chair")[-1][1]
    assert done["answer"] == "13"
    assert (done["result"]["votes"], done["result"]["voters"]) == (2, 4)
    assert done["result"]["decided_by"] == "plurality"


def test_a_chair_that_names_no_tied_answer_is_noted_in_words_and_the_first_is_taken(
    db: Store,
) -> None:
    seats: dict[str, Seat] = {
        "a": ScriptedSeat("a", "13"),
        "b": ScriptedSeat("b", "12"),
        "chair": ScriptedSeat("chair", "I cannot decide."),
    }
    events = vote(db, seats, "chair")
    done = events[-1][1]
    assert done["status"] == "done"
    assert done["result"]["decided_by"] == "first tied answer"
    assert done["answer"] == "12"  # the tally orders tied answers by their text
    assert done["result"]["notes"] == ["the chair named none of the tied answers; taking the first"]
    assert all("None" not in note for note in done["result"]["notes"])


def test_the_terminal_shows_a_tied_votes_winner_and_its_tally_after_the_chairs_text() -> None:
    written: list[str] = []
    renderer = TerminalRenderer(written.append, tty=False)
    renderer.on_stage_start({"stage": "chair", "layer": 0, "seats": ["chair"]})
    renderer.on_chair_delta({"seat": "chair", "delta": "Both are close; I pick 13."})
    result = {"winner": "13", "votes": 1, "voters": 2, "decided_by": "the chair (chair)"}
    renderer.on_done({"status": "done", "answer": "13", "result": result})
    text = "".join(written)
    assert text.endswith("── answer\n13\n(votes: 1 of 2; decided by the chair (chair))\n")
