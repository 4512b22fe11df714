"""What a stage shows a seat is fitted to the seat's context: the prompt's own words counted as
they are, the answers shortened to equal shares of what is left, by the seat's token count, or
by the most tokens a text can be when the seat cannot count."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from council.deliberation import prompts
from council.deliberation.events import Event
from council.deliberation.rounds import (
    LEFT_OUT,
    SHORTENED,
    TEMPLATE_MARGIN,
    Round,
    RoundOptions,
    token_bound,
)
from council.deliberation.seats import Completion, Message, OnDelta, Sampling
from council.store import db as store_db
from tests.running import run

QUESTION = "What should a council of machines decide first?"
MAX_TOKENS = 128


class CountingSeat:
    """A seat as fitting sees it: a context size and a tokenizer (or none)."""

    kind = "local"

    def __init__(self, name: str, ctx_size: int, tokens_of: object = None) -> None:
        self.name = name
        self._ctx_size = ctx_size
        self.tokens_of = tokens_of
        self.counted: list[str] = []

    @property
    def ctx_size(self) -> int | None:
        return self._ctx_size

    def unavailable(self) -> str | None:
        return None

    async def complete(
        self, messages: list[Message], sampling: Sampling, on_delta: OnDelta
    ) -> Completion:
        raise AssertionError("fitting never asks a seat to answer")

    async def count_tokens(self, text: str) -> int | None:
        self.counted.append(text)
        return self.tokens_of(text) if callable(self.tokens_of) else None


def fitted(seat: CountingSeat, answers: Sequence[str], tmp_path: Path) -> tuple[str, list[Event]]:
    events: list[Event] = []
    round_ = Round(
        store_db.connect(tmp_path / "council.db"),
        {seat.name: seat},
        conversation_id="c",
        message_id="m",
        question=QUESTION,
        history=[],
        options=RoundOptions(sampling=Sampling(max_tokens=MAX_TOKENS)),
        emit=events.append,
    )

    def render(texts: Sequence[str]) -> str:
        return prompts.review_prompt(QUESTION, list(zip("ABC", texts, strict=False)))

    return run(round_.fit(seat.name, answers, render)), events


def room(seat: CountingSeat) -> int:
    assert seat.ctx_size is not None
    return seat.ctx_size - MAX_TOKENS - TEMPLATE_MARGIN


def test_a_prompt_that_fits_at_worst_is_shown_whole_and_nothing_is_counted(tmp_path: Path) -> None:
    seat = CountingSeat("roomy", 8192, len)
    prompt, events = fitted(seat, ["Paris.", "Lyon, surely.", "Marseille."], tmp_path)
    assert "Lyon, surely." in prompt
    assert SHORTENED not in prompt
    assert seat.counted == []
    assert events == []


def test_long_answers_are_cut_to_equal_shares_by_the_seats_own_count(tmp_path: Path) -> None:
    seat = CountingSeat("small", 1024, lambda text: len(text) // 4)  # ~4 characters a token
    answers = ["alpha " * 600, "beta " * 100, "gamma " * 900]
    prompt, events = fitted(seat, answers, tmp_path)
    assert len(prompt) // 4 <= room(seat)
    assert "beta " * 100 in prompt  # short enough to stay whole
    assert prompt.count(SHORTENED) == 2
    assert [event.data["text"] for event in events] == [
        "small: shortened the answers it was shown to fit its 1024-token context"
    ]


def test_a_seat_that_cannot_count_is_fitted_by_the_most_tokens_its_text_can_be(
    tmp_path: Path,
) -> None:
    seat = CountingSeat("tab", 2048)  # no tokenizer
    prompt, _ = fitted(seat, ["word " * 300, "another answer " * 80, "x" * 900], tmp_path)
    assert prompt.count(SHORTENED) == 3
    assert token_bound([prompt], 0) <= room(seat)


def test_answers_with_no_room_at_all_are_left_out_and_say_so(tmp_path: Path) -> None:
    seat = CountingSeat("tiny", 1024)  # the prompt's own words take most of it, at worst
    prompt, _ = fitted(seat, ["word " * 300, "another answer " * 80, "x" * 900], tmp_path)
    assert prompt.count(f":\n{LEFT_OUT}\n") == 3
    assert SHORTENED not in prompt
    assert token_bound([prompt], 0) <= room(seat)


def test_the_prompts_own_words_are_counted_as_they_are_so_the_worst_tokenizer_still_fits(
    tmp_path: Path,
) -> None:
    """A vocabulary of bytes alone (the demo model's) spends three tokens on every space: the
    prompt around the answers counts as what it is, not as a fixed allowance."""
    seat = CountingSeat("demo", 2048, lambda text: token_bound([text], 0))
    answers = ["a b c d e f " * 120 for _ in range(3)]
    prompt, _ = fitted(seat, answers, tmp_path)
    assert SHORTENED in prompt
    assert token_bound([prompt], 0) <= room(seat)
