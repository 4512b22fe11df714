"""The starter model on an empty stick: three seats of SmolLM2-135M-Instruct sharing one
llama-server, answering in words, every review ranked. Real text, so short answers."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.hubs import HubProcess, ask_round, new_conversation

pytestmark = pytest.mark.empty_stick

StartHub = Callable[..., HubProcess]
STARTER_SEATS = ["smollm2-careful", "smollm2-balanced", "smollm2-bold"]
WORDS = re.compile(r"[A-Za-z]{3,}")


@pytest.fixture
def starter_hub(start_hub: StartHub) -> HubProcess:
    hub = start_hub()
    hub.wait_ok(timeout=180)
    return hub


def _of(events: list[tuple[str, dict[str, Any]]], kind: str) -> list[dict[str, Any]]:
    return [data for found, data in events if found == kind]


def test_an_empty_stick_seats_the_starter_three_times_in_one_engine_and_says_it_is_tiny(
    starter_hub: HubProcess,
) -> None:
    health = starter_hub.health()
    assert [seat["name"] for seat in health["seats"]] == STARTER_SEATS
    assert "tiny: real words, weak answers" in health["demo_hint"]
    assert len(starter_hub.engines()) == 1
    assert "seats: smollm2-careful, smollm2-balanced, smollm2-bold (1 engine)" in starter_hub.text()


def test_a_synthesize_round_of_starter_seats_ranks_every_review_and_the_chair_writes_words(
    starter_hub: HubProcess,
) -> None:
    conversation = new_conversation(starter_hub)
    events = ask_round(
        starter_hub, conversation, "Why is the sky blue? One sentence.", max_tokens=40
    )
    reviews = _of(events, "review_done")
    assert len(reviews) == 3
    assert all(review["ranking"] for review in reviews), reviews
    assert {review["ranking_by"] for review in reviews} <= {"text", "grammar"}
    done = events[-1][1]
    assert done["status"] == "done"
    assert WORDS.search(done["answer"]), done["answer"]


def test_a_vote_on_a_number_reads_every_seats_answer(starter_hub: HubProcess) -> None:
    conversation = new_conversation(starter_hub)
    events = ask_round(
        starter_hub,
        conversation,
        "What is 6 times 7?",
        mode="vote",
        extractor="number",
        max_tokens=40,
    )
    answers = [data for data in _of(events, "seat_done") if data["stage"] == "answer"]
    assert len(answers) == 3
    assert all(answer["details"]["extracted"] is not None for answer in answers), answers
    done = events[-1][1]
    assert done["result"]["voters"] == 3
    assert done["answer"] == done["result"]["winner"]


def _ask_seat(hub: HubProcess, seat: str, max_tokens: int = 24) -> httpx.Response:
    body = {
        "model": seat,
        "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": "Name a colour."}],
    }
    return httpx.post(f"{hub.url}/v1/chat/completions", json=body, timeout=120)


def test_one_seat_timing_out_mid_answer_leaves_the_other_two_answering_in_the_same_engine(
    starter_hub: HubProcess,
) -> None:
    (engine,) = starter_hub.engines()
    conversation = new_conversation(starter_hub)
    rounds: list[list[tuple[str, dict[str, Any]]]] = []
    # A long story takes a careful seat well over 2 s (it writes on to max_tokens).
    options = {"seats": ["smollm2-careful"], "max_tokens": 1500, "stage_timeout": 2}

    failed: list[BaseException] = []

    def long_round() -> None:
        question = "Write a very long story about a dragon who learns to bake bread."
        try:
            rounds.append(ask_round(starter_hub, conversation, question, **options))
        except BaseException as exc:  # re-raised below, in the test's thread
            failed.append(exc)

    replies: dict[str, httpx.Response] = {}

    def ask(seat: str) -> None:
        replies[seat] = _ask_seat(starter_hub, seat)

    threads = [threading.Thread(target=long_round)]
    threads += [
        threading.Thread(target=ask, args=(s,)) for s in ("smollm2-balanced", "smollm2-bold")
    ]
    for thread in threads:  # the two questions arrive while careful writes
        thread.start()
    for thread in threads:
        thread.join(120)
    if failed:
        raise failed[0]
    for reply in replies.values():
        assert reply.status_code == 200, reply.text
        assert WORDS.search(reply.json()["choices"][0]["message"]["content"])
    (events,) = rounds
    finished = [data.get("content") for data in _of(events, "seat_done")]
    assert _of(events, "seat_error"), f"the seat finished within the timeout: {finished}"
    (cut,) = _of(events, "seat_error")
    assert cut["status"] == "timeout", cut  # cut off mid-answer, its slot freed
    assert _ask_seat(starter_hub, "smollm2-careful", 8).status_code == 200
    assert [e.pid for e in starter_hub.engines()] == [engine.pid]


def test_removing_one_seat_leaves_the_others_serving_from_the_same_engine(
    starter_hub: HubProcess,
) -> None:
    (engine,) = starter_hub.engines()
    removed = httpx.delete(f"{starter_hub.url}/api/seats/smollm2-bold", timeout=30)
    assert removed.status_code == 204, removed.text
    assert [e.pid for e in starter_hub.engines()] == [engine.pid]
    for seat in ("smollm2-careful", "smollm2-balanced"):
        assert _ask_seat(starter_hub, seat, 8).status_code == 200
    assert _ask_seat(starter_hub, "smollm2-bold", 8).status_code == 404
    health = starter_hub.health()
    assert [seat["name"] for seat in health["seats"]] == STARTER_SEATS[:2]
    assert health["status"] == "ok"


def test_a_follow_up_question_carries_the_history_in_the_real_tokenizer(
    starter_hub: HubProcess,
) -> None:
    conversation = new_conversation(starter_hub)
    options = {"seats": ["smollm2-careful"], "chair": "smollm2-careful", "max_tokens": 16}
    first = ask_round(starter_hub, conversation, "My name is Ada.", **options)
    second = ask_round(starter_hub, conversation, "What is my name?", **options)

    def answer_prompt(events: list[tuple[str, dict[str, Any]]]) -> int:
        (answer,) = [d for d in _of(events, "seat_done") if d["stage"] == "answer"]
        return int(answer["prompt_tokens"])

    grown = answer_prompt(second) - answer_prompt(first)
    # The second prompt holds the first exchange: its question and the council's answer.
    assert grown >= len(["My", "name", "is", "Ada."]) + 2, (answer_prompt(first), grown)
