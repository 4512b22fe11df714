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
from council.deliberation.seats import (
    GUESSED_TEMPLATE,
    Completion,
    Message,
    OnDelta,
    Sampling,
    TemplateCost,
)
from council.store import db as store_db
from tests.running import run

QUESTION = "What should a council of machines decide first?"
MAX_TOKENS = 128


class CountingSeat:
    """A seat as fitting sees it: a context size and a tokenizer (or none)."""

    kind = "local"
    grammar = False

    def __init__(
        self,
        name: str,
        ctx_size: int,
        tokens_of: object = None,
        template: TemplateCost | None = None,
    ) -> None:
        self.name = name
        self._ctx_size = ctx_size
        self.tokens_of = tokens_of
        self.template = template
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

    async def template_cost(self) -> TemplateCost | None:
        return self.template


def round_for(
    seat: CountingSeat,
    tmp_path: Path,
    events: list[Event],
    history: Sequence[tuple[str, str]] = (),
) -> Round:
    return Round(
        store_db.connect(tmp_path / "council.db"),
        {seat.name: seat},
        conversation_id="c",
        message_id="m",
        question=QUESTION,
        history=history,
        options=RoundOptions(sampling=Sampling(max_tokens=MAX_TOKENS)),
        emit=events.append,
    )


def fitted(seat: CountingSeat, answers: Sequence[str], tmp_path: Path) -> tuple[str, list[Event]]:
    events: list[Event] = []
    round_ = round_for(seat, tmp_path, events)

    def render(texts: Sequence[str]) -> str:
        return prompts.review_prompt(QUESTION, list(zip("ABC", texts, strict=False)))

    return run(round_.fit(seat.name, answers, render)), events


def room(seat: CountingSeat) -> int:
    assert seat.ctx_size is not None
    return seat.ctx_size - MAX_TOKENS - (seat.template or GUESSED_TEMPLATE).of(1) - TEMPLATE_MARGIN


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
    assert token_bound([prompt]) <= room(seat)


def test_answers_with_no_room_at_all_are_left_out_and_say_so(tmp_path: Path) -> None:
    seat = CountingSeat("tiny", 1024)  # the prompt's own words take most of it, at worst
    prompt, _ = fitted(seat, ["word " * 300, "another answer " * 80, "x" * 900], tmp_path)
    assert prompt.count(f":\n{LEFT_OUT}\n") == 3
    assert SHORTENED not in prompt
    assert token_bound([prompt]) <= room(seat)


def test_the_prompts_own_words_are_counted_as_they_are_so_the_worst_tokenizer_still_fits(
    tmp_path: Path,
) -> None:
    """A vocabulary of bytes alone (the demo model's) spends three tokens on every space: the
    prompt around the answers counts as what it is, not as a fixed allowance."""
    seat = CountingSeat("demo", 2048, lambda text: token_bound([text]))
    answers = ["a b c d e f " * 120 for _ in range(3)]
    prompt, _ = fitted(seat, answers, tmp_path)
    assert SHORTENED in prompt
    assert token_bound([prompt]) <= room(seat)


def test_a_measured_template_cost_is_what_the_room_is_counted_by(tmp_path: Path) -> None:
    cheap = CountingSeat("cheap", 1024, lambda text: len(text) // 4, TemplateCost(3, 5))
    dear = CountingSeat("dear", 1024, lambda text: len(text) // 4, TemplateCost(200, 100))
    answers = ["alpha " * 200, "beta " * 200, "gamma " * 200]
    (tmp_path / "cheap").mkdir()
    (tmp_path / "dear").mkdir()
    cheap_prompt, _ = fitted(cheap, answers, tmp_path / "cheap")
    dear_prompt, _ = fitted(dear, answers, tmp_path / "dear")
    assert len(dear_prompt) < len(cheap_prompt)
    for seat, prompt in ((cheap, cheap_prompt), (dear, dear_prompt)):
        assert len(prompt) // 4 <= room(seat)


def test_history_is_trimmed_by_the_templates_cost_for_every_message(tmp_path: Path) -> None:
    """Twenty exchanges of 40-token turns: 1,600 tokens of words alone fit 2048, but not with
    32 template tokens on each of the 41 messages."""
    template = TemplateCost(fixed=23, per_message=32)
    seat = CountingSeat("demo", 2048, lambda text: len(text) // 4, template)
    history = [(f"question {i} " + "q" * 146, f"answer {i} " + "a" * 148) for i in range(20)]
    events: list[Event] = []
    round_ = round_for(seat, tmp_path, events, history)

    messages = run(round_.messages_for(seat, "And now?"))

    total = template.of(len(messages)) + sum(len(m["content"]) // 4 for m in messages)
    assert total + MAX_TOKENS + TEMPLATE_MARGIN <= 2048
    assert 2 < len(messages) < 41
    assert messages[-1] == {"role": "user", "content": "And now?"}
    assert messages[-2]["content"].startswith("answer 19 ")  # the newest exchanges are kept
    (note,) = [event.data["text"] for event in events]
    assert note.startswith("demo: left out the ")
