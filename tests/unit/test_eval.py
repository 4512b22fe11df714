"""`council eval`'s figures and its runner, against a scripted hub whose answers are known:
accuracy, the bootstrap interval and the judges' biases equal values worked out by hand; a
JSONL is read strictly; an interrupted run asks nothing twice."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from council.deliberation.events import Event
from council.errors import BadRequest
from council.evaluation.records import Answer, Run
from council.evaluation.report import render, results
from council.evaluation.runner import SELF_CONSISTENCY, Evaluation, plan_systems
from council.evaluation.stats import bootstrap_ci, position_bias, self_preference
from council.evaluation.tasks import Task, answer_of, jsonl_task
from tests.running import run

QUESTIONS = [("What is 2+2?", "4"), ("What is 3*3?", "9"), ("What is 10-7?", "3"), ("1+1?", "2")]


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def task(tmp_path: Path) -> Task:
    rows = [{"question": q, "answer": a} for q, a in QUESTIONS]
    return jsonl_task(write_jsonl(tmp_path / "q.jsonl", rows), "number")


class ScriptedHub:
    """Answers each round from a script: (system, question) -> answer text; synthesize rounds
    also send the review events given. Records every round it was asked for."""

    def __init__(self, answers: dict[tuple[str, str], str], reviews: list[dict[str, Any]]) -> None:
        self.answers = answers
        self.reviews = reviews
        self.asked: list[dict[str, Any]] = []
        self.deleted: list[str] = []

    async def ask(
        self, conversation: str | None, question: str, options: dict[str, Any]
    ) -> AsyncIterator[Event]:
        self.asked.append({"question": question, **options})
        mode = options.get("mode")
        seats = options["seats"]
        system = mode if mode else f"seat:{seats[0]}"
        if options.get("sample") is not None and not mode:
            system = f"sample{options['sample']}:{seats[0]}"
        key = (system, question.split("\n", maxsplit=1)[0])
        ids = {"conversation_id": f"c{len(self.asked)}", "message_id": "m"}
        yield Event("run_start", {**ids, "mode": mode or "synthesize", "seats": seats})
        yield Event("seat_done", {**ids, "prompt_tokens": 10, "completion_tokens": 5})
        if mode == "synthesize":
            for review in self.reviews:
                yield Event("review_done", {**ids, **review})
        text = self.answers.get(key, self.answers.get((system.split(":")[0], key[1]), "no idea"))
        yield Event("done", {**ids, "status": "done", "answer": text})

    async def delete_conversation(self, conversation_id: str) -> None:
        self.deleted.append(conversation_id)


def run_evaluation(
    hub: ScriptedHub, task: Task, systems: list[str], stored: tuple[Answer, ...] = ()
) -> list[Answer]:
    plan = plan_systems(["a", "b"], systems, 64)
    kept: list[Answer] = []
    evaluation = Evaluation(
        hub,  # type: ignore[arg-type]
        task=task,
        plan=plan,
        stored=stored,
        store=kept.append,
        progress=lambda *_: None,
    )
    run(evaluation.run())
    return kept


def as_run(task: Task, answers: list[Answer], systems: list[str], **spec: Any) -> Run:
    return Run(
        "r1",
        "2026-12-07T00:00:00.000Z",
        None,
        task.name,
        {"systems": systems, **spec},
        "done",
        task.items,
        tuple(answers),
    )


def test_a_two_item_bootstrap_interval_is_what_the_resampling_gives_by_hand() -> None:
    # Resampling [right, wrong]: a mean of 0 a quarter of the time, 1/2 half, 1 a quarter.
    # The 2.5th percentile is then 0 and the 97.5th is 1.
    assert bootstrap_ci([True, False], seed=3) == (0.0, 1.0)
    assert bootstrap_ci([True] * 5) == (1.0, 1.0)
    assert bootstrap_ci([False] * 5) == (0.0, 0.0)
    assert bootstrap_ci([]) is None
    low, high = bootstrap_ci([True] * 30 + [False] * 70, seed=1) or (0.0, 0.0)
    assert low < 0.3 < high
    assert bootstrap_ci([True] * 30 + [False] * 70, seed=1) == (low, high)  # repeatable


def test_position_bias_and_self_preference_count_what_reviewers_ranked_first() -> None:
    reviews = [
        {"reviewer": "a", "labels": {"A": "b", "B": "c"}, "ranking": ["b", "c"]},  # first shown
        {"reviewer": "b", "labels": {"A": "a", "B": "c"}, "ranking": ["a", "c"]},  # first shown
        {"reviewer": "c", "labels": {"A": "b", "B": "a", "C": "c"}, "ranking": ["c", "b", "a"]},
        {"reviewer": "a", "labels": {"A": "c", "B": "b"}, "ranking": None},  # unranked: left out
    ]
    position = position_bias(reviews)
    assert (position.hits, position.n) == (2, 3)
    assert position.chance == pytest.approx((1 / 2 + 1 / 2 + 1 / 3) / 3)
    own = self_preference(reviews)  # only c saw its own answer, and put it first
    assert (own.hits, own.n, own.rate) == (1, 1, 1.0)
    assert own.chance == pytest.approx(1 / 3)


def test_every_system_is_scored_exactly_on_known_answers(task: Task) -> None:
    answers = {
        # seat a: right on 3 of 4; seat b: right on 1 of 4
        ("seat:a", "What is 2+2?"): "Answer: 4",
        ("seat:a", "What is 3*3?"): "I think 9.\nAnswer: 9",
        ("seat:a", "What is 10-7?"): "The answer is 3.",
        ("seat:a", "1+1?"): "Answer: 3",
        ("seat:b", "What is 2+2?"): "Answer: 4",
        ("sample0", "What is 2+2?"): "Answer: 4",
        ("sample1", "What is 2+2?"): "Answer: 5",
        ("sample2", "What is 2+2?"): "Answer: 4",
        ("synthesize", "What is 2+2?"): "Answer: 4",
        ("synthesize", "What is 3*3?"): "Answer: 9",
        ("synthesize", "What is 10-7?"): "Answer: 3",
        ("synthesize", "1+1?"): "Answer: 2",
    }
    reviews = [
        {"seat": "a", "labels": {"A": "b"}, "ranking": ["b"]},
        {"seat": "b", "labels": {"A": "a", "B": "b"}, "ranking": ["b", "a"]},
    ]
    hub = ScriptedHub(answers, reviews)
    systems = ["seats", SELF_CONSISTENCY, "synthesize"]
    stored = run_evaluation(hub, task, systems)
    report = results(as_run(task, stored, list(plan_systems(["a", "b"], systems, 64).systems)))
    by = {row["system"]: row for row in report["results"]}
    assert (by["seat:a"]["correct"], by["seat:a"]["accuracy"]) == (3, 0.75)
    assert (by["seat:b"]["correct"], by["seat:b"]["accuracy"]) == (1, 0.25)
    assert (by["synthesize"]["correct"], by["synthesize"]["accuracy"]) == (4, 1.0)
    assert by["synthesize"]["ci95"] == [1.0, 1.0]
    # self-consistency asks the best seat alone (a) five times: 2 x 2 seats + a chair
    samples = [r for r in hub.asked if r.get("sample") is not None]
    assert {tuple(r["seats"]) for r in samples} == {("a",)}
    assert sorted({r["sample"] for r in samples}) == [0, 1, 2, 3, 4]
    # item 0: samples 0 and 2 say 4, 1 says 5, the rest no answer: 4 wins, right
    assert report["items"][0]["answers"][SELF_CONSISTENCY]["extracted"] == "4"
    assert by[SELF_CONSISTENCY]["correct"] == 1
    # every round costs 15 tokens in this script
    assert by["seat:a"]["tokens"] == 4 * 15
    assert by[SELF_CONSISTENCY]["tokens"] == 4 * 5 * 15
    # 2 ranked reviews per synthesize round, 4 rounds: one of the two puts "A" first
    assert report["bias"]["position"]["n"] == 8
    assert report["bias"]["position"]["hits"] == 4
    assert report["bias"]["position"]["chance"] == pytest.approx(0.75)
    assert len(hub.deleted) == len(hub.asked)  # every round's conversation is gone again
    table = render(report)
    assert re.search(r"^seat:a\s+4\s+3\s+75%\s+", table, re.MULTILINE)
    assert "50% of 8 rankings put the first-shown answer first (chance 75%)" in table


def test_an_interrupted_run_asks_nothing_twice(task: Task) -> None:
    hub = ScriptedHub({("seat:a", "What is 2+2?"): "Answer: 4"}, [])
    first = run_evaluation(hub, task, ["seat:a"])
    assert len(first) == 4
    hub.asked.clear()
    kept = run_evaluation(hub, task, ["seats"], stored=tuple(first[:4]))
    assert [r["seats"] for r in hub.asked] == [["b"]] * 4  # seat a's items were stored
    assert {a.system for a in kept} == {"seat:b"}


def test_the_answer_line_is_read_however_a_model_words_it() -> None:
    assert answer_of("Let me think.\nAnswer: 42") == "42"
    assert answer_of("**Final answer:** Yes.") == "Yes"
    assert answer_of("The answer is: 7") == "7"
    assert answer_of("The answer to the question is: No.") == "No"
    assert answer_of("I can give a helpful answer. The answer is Yes.") == "Yes"
    assert answer_of("The final answer to this problem is 13.225.") == "13.225"
    assert answer_of("blah\nanswer = 12") == "12"
    assert answer_of("no line says it\nbut this is last") == "but this is last"
    assert answer_of("") is None
    assert answer_of(None) is None


def test_a_jsonl_with_mixed_right_and_wrong_answers_scores_exactly(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "c.jsonl",
        [
            {"question": "Pick", "answer": "B"},
            {"question": "Pick again", "answer": "C"},
            {"question": "Pick a third", "answer": "D"},
        ],
    )
    choice = jsonl_task(path, "choice")
    assert [
        choice.score(text, item)
        for text, item in zip(["Answer: B", "Answer: (C)", "Answer: A"], choice.items, strict=True)
    ] == [1.0, 1.0, 0.0]
    exact = jsonl_task(
        write_jsonl(tmp_path / "e.jsonl", [{"question": "Capital?", "answer": "Paris"}]), "exact"
    )
    assert exact.score("paris", exact.items[0]) == 1.0
    assert exact.score("Lyon", exact.items[0]) == 0.0
    regex = jsonl_task(
        write_jsonl(tmp_path / "r.jsonl", [{"question": "Code?", "answer": "X-12"}]),
        r"regex:([A-Z]-\d+)",
    )
    assert regex.score("the code is X-12", regex.items[0]) == 1.0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            '{"question": "a", "answer": "1"}\n{"question": "b", "answer": \n',
            r"q\.jsonl:2: not JSON",
        ),
        ('["a", "b"]\n', r"q\.jsonl:1: a line must be an object"),
        ('{"question": "", "answer": "1"}\n', r'q\.jsonl:1: "question" must be non-empty'),
        ('{"question": "a", "answer": true}\n', r'q\.jsonl:1: "answer" must be text or a number'),
        ('{"question": "a", "answer": "none"}\n', r"q\.jsonl:1: the number extractor reads no"),
        ("\n\n", r"q\.jsonl holds no questions"),
    ],
)
def test_a_bad_jsonl_is_one_error_naming_its_line(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(BadRequest, match=message):
        jsonl_task(path, "number")


def test_unknown_systems_tasks_extractors_and_sizes_are_refused(tmp_path: Path) -> None:
    from council.evaluation.tasks import reasoning_gym_task

    with pytest.raises(BadRequest, match="unknown system 'chaos'"):
        plan_systems(["a"], ["chaos"], 64)
    with pytest.raises(BadRequest, match="no reasoning-gym task 'arithmetik'"):
        reasoning_gym_task("arithmetik", 3, 0)
    with pytest.raises(BadRequest, match="--size must be 1 to 1000, not 0"):
        reasoning_gym_task("basic_arithmetic", 0, 0)
    path = write_jsonl(tmp_path / "q.jsonl", [{"question": "a", "answer": "1"}])
    with pytest.raises(BadRequest, match="unknown extractor"):
        jsonl_task(path, "vibes")


def test_reasoning_gym_items_are_the_same_for_a_seed_and_scored_by_the_task() -> None:
    from council.evaluation.tasks import reasoning_gym_task

    first = reasoning_gym_task("basic_arithmetic", 3, 7)
    again = reasoning_gym_task("basic_arithmetic", 3, 7)
    assert [i.question for i in first.items] == [i.question for i in again.items]
    item = first.items[0]
    assert first.score(first.extract(f"Working...\nAnswer: {item.gold}.", item), item) == 1.0
    assert first.score(first.extract("Answer: 123456789", item), item) == 0.0
    assert first.vote_extractor == "number"


def test_a_yes_no_task_reads_the_word_and_votes_on_it() -> None:
    from council.deliberation.extract import make_extractor
    from council.evaluation.tasks import reasoning_gym_task

    task = reasoning_gym_task("syllogism", 4, 1)
    item = task.items[0]
    assert item.gold in ("Yes", "No")
    assert task.extract("The answer to the question is: no, because.", item) == "No"
    assert task.extract("Hmm.\nYes, it follows.", item) == "Yes"
    assert task.extract("It is unclear", item) is None
    vote = make_extractor(task.vote_extractor)
    assert vote("So the answer is: Yes, since all parents are lawyers.") == "Yes"
    assert vote("no answer stated") is None
