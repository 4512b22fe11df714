"""Every branch of the council's modes, on scripted seats: no engine, no noise, so each
outcome is the one the branch must give."""

from __future__ import annotations

from typing import Any

from council.deliberation.rounds import RoundOptions
from council.deliberation.seats import Sampling, Seat
from council.deliberation.service import CouncilService
from council.settings import RoundDefaults
from council.store import conversations
from council.store.access import Store
from council.types import Mode
from tests.running import run
from tests.scripted_seats import FAIL, ScriptedSeat

RANK_AB = "Both fine.\n\nFINAL RANKING:\n1. Response A\n2. Response B"
RANK_A = "FINAL RANKING:\n1. Response A"


def round_of(
    db: Store, seats: dict[str, ScriptedSeat], chair: str, mode: Mode = Mode.SYNTHESIZE, **more: Any
) -> list[tuple[str, dict[str, Any]]]:
    roster: dict[str, Seat] = dict(seats)
    service = CouncilService(db, lambda: roster, RoundDefaults)
    conversation = db.submit(conversations.create_conversation, "x").result()
    options = RoundOptions(
        mode=mode, seats=tuple(seats), chair=chair, sampling=Sampling(16), shuffle_seed=1, **more
    )

    async def main() -> list[tuple[str, dict[str, Any]]]:
        handle = await service.start(conversation, "Why is the sky blue?", options)
        return [(str(event.type), event.data) async for event in handle.events()]

    return run(main())


def test_a_synthesize_round_reviews_ranks_and_ends_with_the_chairs_text(db: Store) -> None:
    seats = {
        "a": ScriptedSeat("a", "Rayleigh scattering.", RANK_A, "The chair says: scattering."),
        "b": ScriptedSeat("b", "Blue light scatters.", RANK_A),
    }
    events = round_of(db, seats, "a")
    (ranking,) = [data for kind, data in events if kind == "ranking"]
    assert ranking["valid"] == 2
    done = events[-1][1]
    assert done["status"] == "done"
    assert done["answer"] == "The chair says: scattering."
    assert done["result"]["chair"] == "a"
    chair_prompt = seats["a"].prompts[-1]
    assert "FINAL RANKING" not in chair_prompt  # reviewers' labels mean nothing to the chair
    assert "1. a (mean rank" in chair_prompt  # the aggregate, by seat name, instead


def test_a_chair_that_fails_gives_way_to_the_best_ranked_seat_that_can_answer(
    db: Store,
) -> None:
    seats = {
        "a": ScriptedSeat("a", "First.", RANK_A, FAIL),
        "b": ScriptedSeat("b", "Second.", RANK_A, "b writes the final answer."),
    }
    done = round_of(db, seats, "a")[-1][1]
    assert done["status"] == "done"
    assert done["answer"] == "b writes the final answer."
    assert done["result"]["chair"] == "b"
    assert any("takes the chair" in note for note in done["result"]["notes"])


def test_a_single_survivor_is_the_answer_without_reviews_or_chair(db: Store) -> None:
    seats = {"a": ScriptedSeat("a", "Only me."), "b": ScriptedSeat("b", FAIL)}
    events = round_of(db, seats, "a")
    assert "review_done" not in [kind for kind, _ in events]
    done = events[-1][1]
    assert (done["status"], done["answer"], done["result"]["chair"]) == ("done", "Only me.", None)


def test_a_round_in_which_no_seat_answers_fails_saying_why(db: Store) -> None:
    seats = {"a": ScriptedSeat("a", FAIL), "b": ScriptedSeat("b", FAIL)}
    done = round_of(db, seats, "a")[-1][1]
    assert done["status"] == "failed"
    assert done["error"]


def test_moa_layers_show_each_layer_the_answers_of_the_one_before(db: Store) -> None:
    seats = {
        "a": ScriptedSeat("a", "a layer one", "a layer two", "aggregate"),
        "b": ScriptedSeat("b", "b layer one", "b layer two"),
    }
    done = round_of(db, seats, "a", Mode.MOA, layers=2)[-1][1]
    assert done["status"] == "done"
    assert done["answer"] == "aggregate"
    assert done["result"]["layers"] == 2
    second_layer_prompt = seats["b"].prompts[1]
    assert "a layer one" in second_layer_prompt
    assert "b layer one" in second_layer_prompt
    assert "a layer two" in seats["a"].prompts[2]  # the chair aggregates the last layer


def test_a_tied_vote_with_review_ties_goes_to_the_best_ranked_answer(db: Store) -> None:
    seats = {
        "a": ScriptedSeat("a", "12", RANK_AB),
        "b": ScriptedSeat("b", "13", RANK_AB),
    }
    done = round_of(
        db, seats, "a", Mode.VOTE, extractor="number", review_ties=True, exclude_self=False
    )[-1][1]
    assert done["status"] == "done"
    assert done["result"]["decided_by"] == "ranking"
    assert done["answer"] == done["result"]["winner"]
    # Both reviewers put "Response A" first; with shuffle_seed 1 the seat shown as A to both
    # (exclude_self off) is b, so b's answer has the better rank.
    assert done["answer"] == "13"
    assert done["result"]["standings"][0]["seat"] == "b"
