"""Running an evaluation against the hub: every system answers every item, scored and stored.

Systems, in the order they run:

- `seat:NAME`: one seat alone (a round of that seat only, so its own sampling and system
  prompt apply, as they do in a council);
- `self-consistency`: the seat that scored best alone, asked k times with different samples
  (the round's `sample` offsets every seed), the majority of its answers; k is the number of
  model calls a synthesize round makes with these seats (n answers, n reviews, one chair);
- `synthesize`, `moa`, `vote`: a council round in that mode with the council's defaults.

Each round's conversation is deleted once its answer is stored here: an evaluation does not
fill the history. Answers are stored one at a time; a run interrupted (Ctrl-C, a crash, the
hub going away) is resumed by the same command, which skips what is stored.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from council.deliberation.events import Event
from council.deliberation.extract import tally
from council.errors import BadRequest
from council.evaluation.records import Answer
from council.evaluation.tasks import Item, Task

MODES = ("synthesize", "moa", "vote")
SELF_CONSISTENCY = "self-consistency"
SEAT = "seat:"


class Hub(Protocol):
    """What the runner needs of the hub: client.py's Hub, or a test's script."""

    def ask(
        self, conversation_id: str | None, question: str, options: dict[str, Any]
    ) -> AsyncIterator[Event]: ...

    async def delete_conversation(self, conversation_id: str) -> None: ...


Store = Callable[[Answer], None]
Progress = Callable[[str, int, int, float | None], None]  # system, done, total, running accuracy


@dataclass(frozen=True, slots=True)
class Plan:
    seats: tuple[str, ...]
    systems: tuple[str, ...]
    max_tokens: int

    @property
    def calls(self) -> int:
        """Model calls of a synthesize round of every seat: self-consistency's samples."""
        return 2 * len(self.seats) + 1 if len(self.seats) > 1 else 1


def check_names(chosen: Sequence[str]) -> None:
    """Refuse a system no hub could have, before one is started for the run."""
    known = ("seats", SELF_CONSISTENCY, *MODES)
    for name in chosen:
        if name not in known and not (name.startswith(SEAT) and len(name) > len(SEAT)):
            raise BadRequest(
                f"unknown system {name!r}: use seat:NAME, seats, {SELF_CONSISTENCY}, "
                + ", ".join(MODES)
            )


def plan_systems(seats: Sequence[str], chosen: Sequence[str] | None, max_tokens: int) -> Plan:
    """Every system by default; `chosen` picks some (`seats` stands for every seat alone)."""
    if not seats:
        raise BadRequest("the hub has no seats that answer: nothing to evaluate")
    every = [f"{SEAT}{seat}" for seat in seats] + [SELF_CONSISTENCY, *MODES]
    if not chosen:
        return Plan(tuple(seats), tuple(every), max_tokens)
    picked: list[str] = []
    for name in chosen:
        expanded = [f"{SEAT}{s}" for s in seats] if name == "seats" else [name]
        for system in expanded:
            if system not in every:
                raise BadRequest(f"unknown system {name!r}: the systems are {', '.join(every)}")
            if system not in picked:
                picked.append(system)
    # self-consistency needs the seats alone first, to know which is best
    if SELF_CONSISTENCY in picked:
        picked = [s for s in every if s.startswith(SEAT)] + [
            s for s in picked if not s.startswith(SEAT)
        ]
    return Plan(tuple(seats), tuple(picked), max_tokens)


def best_seat(answers: Sequence[Answer], seats: Sequence[str]) -> str:
    """The seat with the most correct answers alone (the first listed on a tie)."""
    scores = {seat: 0 for seat in seats}
    for answer in answers:
        if answer.system.startswith(SEAT) and answer.system[len(SEAT) :] in scores:
            scores[answer.system[len(SEAT) :]] += answer.correct
    return max(seats, key=lambda seat: scores[seat])


@dataclass(slots=True)
class Outcome:
    """What one round gave: its final answer, the tokens it cost, its reviews."""

    answer: str | None = None
    tokens: int = 0
    reviews: list[dict[str, Any]] | None = None
    error: str | None = None


async def ask_round(hub: Hub, question: str, options: dict[str, Any]) -> Outcome:
    outcome = Outcome(reviews=[])
    conversation = None
    try:
        async for event in hub.ask(None, question, options):
            conversation = event.data.get("conversation_id", conversation)
            data = event.data
            if event.type in ("seat_done", "seat_error"):
                outcome.tokens += int(data.get("prompt_tokens") or 0)
                outcome.tokens += int(data.get("completion_tokens") or 0)
            elif event.type == "review_done" and outcome.reviews is not None:
                outcome.reviews.append(
                    {
                        "reviewer": data.get("seat"),
                        "labels": data.get("labels") or {},
                        "ranking": data.get("ranking"),
                    }
                )
            elif event.type == "done":
                outcome.answer = data.get("answer")
                if data.get("status") != "done":
                    outcome.error = data.get("error") or data.get("status")
    finally:
        if conversation:
            await hub.delete_conversation(conversation)
    return outcome


class Evaluation:
    """One run's systems over one task's items; `stored` holds what is already answered."""

    def __init__(
        self,
        hub: Hub,
        *,
        task: Task,
        plan: Plan,
        stored: Sequence[Answer],
        store: Store,
        progress: Progress,
    ) -> None:
        self.hub, self.task, self.plan = hub, task, plan
        self.answers = list(stored)
        self.store, self.progress = store, progress

    async def run(self) -> None:
        for system in self.plan.systems:
            done = {a.item_no for a in self.answers if a.system == system}
            total = len(self.task.items)
            self._report(system, len(done), total)
            for item in self.task.items:
                if item.number in done:
                    continue
                answer = await self._answer(system, item)
                self.store(answer)
                self.answers.append(answer)
                done.add(item.number)
                self._report(system, len(done), total)

    def _report(self, system: str, done: int, total: int) -> None:
        mine = [a.correct for a in self.answers if a.system == system]
        self.progress(system, done, total, sum(mine) / len(mine) if mine else None)

    async def _answer(self, system: str, item: Item) -> Answer:
        began = time.monotonic()
        prompt = self.task.prompt(item)
        base = {"max_tokens": self.plan.max_tokens, "seed": item.number}
        details: dict[str, Any] = {}
        if system.startswith(SEAT):
            outcome = await ask_round(self.hub, prompt, {**base, "seats": [system[len(SEAT) :]]})
            raw, tokens = outcome.answer, outcome.tokens
        elif system == SELF_CONSISTENCY:
            raw, tokens, details = await self._self_consistency(prompt, base, item)
        else:
            options = {**base, "mode": system, "seats": list(self.plan.seats)}
            if system == "vote":
                options["extractor"] = self.task.vote_extractor
            outcome = await ask_round(self.hub, prompt, options)
            raw, tokens = outcome.answer, outcome.tokens
            if outcome.reviews:
                details["reviews"] = outcome.reviews
            if outcome.error:
                details["error"] = outcome.error
        extracted = self.task.extract(raw, item)
        return Answer(
            system,
            item.number,
            raw,
            extracted,
            self.task.score(extracted, item),
            tokens,
            round((time.monotonic() - began) * 1000),
            details,
        )

    async def _self_consistency(
        self, prompt: str, base: dict[str, Any], item: Item
    ) -> tuple[str | None, int, dict[str, Any]]:
        seat = best_seat(self.answers, self.plan.seats)
        samples: list[str | None] = []
        extracted: dict[str, str | None] = {}
        tokens = 0
        for sample in range(self.plan.calls):
            outcome = await ask_round(self.hub, prompt, {**base, "seats": [seat], "sample": sample})
            samples.append(outcome.answer)
            extracted[str(sample)] = self.task.extract(outcome.answer, item)
            tokens += outcome.tokens
        votes = tally(extracted)
        winner = votes.leaders[0] if votes.leaders else None
        # the raw answer stored is the first sample that gave the winning answer
        raw = next(
            (s for s in samples if winner is not None and self.task.extract(s, item) == winner),
            None,
        )
        details = {"seat": seat, "samples": len(samples), "votes": votes.counts}
        return raw, tokens, details
