"""A review or a vote that a local engine's text leaves unreadable is asked for its ranking or
answer line under a grammar; remote seats and readable answers are never asked twice."""

from __future__ import annotations

import asyncio
import itertools
import re
from typing import Any

from council.deliberation.grammars import answer_grammar, ranking_grammar
from council.deliberation.seats import Completion, Message, OnDelta, Sampling
from council.store.access import Store
from council.types import Mode
from tests.scripted_seats import FAIL, ScriptedSeat
from tests.unit.test_modes import RANK_A, round_of

NO_RANKING = "Response A is right about scattering."


def _reviews(events: list[tuple[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    return {data["seat"]: data for kind, data in events if kind == "review_done"}


def test_the_ranking_grammar_admits_each_permutation_of_the_labels_once() -> None:
    grammar = ranking_grammar(["A", "B", "C"])
    assert grammar is not None
    alternatives = re.findall(
        r'"1\. Response (\w)\\n2\. Response (\w)\\n3\. Response (\w)"', grammar
    )
    assert sorted(alternatives) == sorted(itertools.permutations("ABC"))
    assert grammar.startswith('root ::= "FINAL RANKING:\\n" (')
    assert ranking_grammar(list("ABCDEFG")) is None  # 5040 alternatives: the text parser alone


def test_a_vote_grammar_exists_for_numbers_and_letters_but_not_for_a_regex() -> None:
    assert answer_grammar("number") == 'root ::= "Answer: " "-"? [0-9]{1,15} ("." [0-9]{1,10})?'
    assert answer_grammar("choice:XY") == 'root ::= "Answer: " ( "X" | "Y" )'
    assert answer_grammar("regex:(\\d+)") is None


def test_a_review_without_a_ranking_is_asked_for_one_under_the_grammar(db: Store) -> None:
    seats = {
        "a": ScriptedSeat("a", "Scattering.", NO_RANKING, RANK_A, "Final.", grammar=True),
        "b": ScriptedSeat("b", "Blue light.", RANK_A, grammar=True),
    }
    reviews = _reviews(round_of(db, seats, "a"))
    assert reviews["a"]["ranking"] == ["b"]
    assert reviews["a"]["ranking_by"] == "grammar"
    assert reviews["b"]["ranking_by"] == "text"  # readable: asked once
    assert seats["a"].grammars[1] is None
    assert seats["a"].grammars[2] == ranking_grammar(["A"])
    assert "final ranking" in seats["a"].prompts[2].lower()
    assert seats["b"].grammars == [None, None]  # b: its answer and its review, nothing more


def test_a_seat_that_knows_no_grammar_keeps_the_text_parser_alone(db: Store) -> None:
    seats = {
        "a": ScriptedSeat("a", "Scattering.", NO_RANKING, "Final."),
        "b": ScriptedSeat("b", "Blue light.", RANK_A),
    }
    reviews = _reviews(round_of(db, seats, "a"))
    assert reviews["a"]["ranking"] is None
    assert reviews["a"]["ranking_by"] is None
    assert all(grammar is None for grammar in seats["a"].grammars)


def test_a_failed_follow_up_leaves_the_review_standing_and_says_so(db: Store) -> None:
    seats = {
        "a": ScriptedSeat("a", "Scattering.", NO_RANKING, FAIL, "Final.", grammar=True),
        "b": ScriptedSeat("b", "Blue light.", RANK_A),
    }
    events = round_of(db, seats, "a")
    review = _reviews(events)["a"]
    assert review["status"] == "done"
    assert review["ranking"] is None
    assert any(
        "asked again for its review's end" in note for note in events[-1][1]["result"]["notes"]
    )


def test_a_vote_without_an_answer_line_is_asked_for_one(db: Store) -> None:
    seats = {
        "a": ScriptedSeat("a", "Six times seven is a classic.", "Answer: 42", grammar=True),
        "b": ScriptedSeat("b", "Answer: 42", grammar=True),
    }
    events = round_of(db, seats, "a", mode=Mode.VOTE, extractor="number")
    done = events[-1][1]
    assert done["answer"] == "42"
    assert done["result"]["votes"] == 2
    assert seats["a"].grammars == [None, answer_grammar("number")]
    assert seats["b"].grammars == [None]


class StallsWhenAskedAgain(ScriptedSeat):
    """Answers at once, but takes its time over a follow-up under a grammar."""

    async def complete(
        self, messages: list[Message], sampling: Sampling, on_delta: OnDelta
    ) -> Completion:
        if sampling.grammar is not None:
            await asyncio.sleep(30)
        return await super().complete(messages, sampling, on_delta)


def test_a_follow_up_that_runs_out_of_time_leaves_the_review_as_written(db: Store) -> None:
    seats = {
        "a": StallsWhenAskedAgain("a", "Scattering.", NO_RANKING, "Final.", grammar=True),
        "b": ScriptedSeat("b", "Blue light.", RANK_A),
    }
    events = round_of(db, seats, "a", stage_timeout=1.0)
    review = _reviews(events)["a"]
    assert review["status"] == "done"
    assert review["ranking"] is None
    done = [d for k, d in events if k == "seat_done" and d["stage"] == "review"]
    (stored,) = [d for d in done if d["seat"] == "a"]
    assert stored["content"] == NO_RANKING
    assert "a: no time left to ask for its review's end" in events[-1][1]["result"]["notes"]
    assert events[-1][1]["status"] == "done"
