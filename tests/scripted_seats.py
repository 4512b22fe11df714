"""Seats for tests of round orchestration, which need no model: they answer on a script."""

from __future__ import annotations

import asyncio

from council.deliberation.seats import (
    Completion,
    Message,
    OnDelta,
    Sampling,
    SeatFailure,
    TemplateCost,
)
from council.types import Usage


class PausingSeat:
    """A seat that thinks for `pause` seconds before each answer, like a real model on a CPU
    reading a long review prompt."""

    kind = "local"
    ctx_size = 4096
    grammar = False

    def __init__(self, name: str, pause: float) -> None:
        self.name = name
        self.pause = pause
        self.answered = 0

    def unavailable(self) -> str | None:
        return None

    async def complete(
        self, messages: list[Message], sampling: Sampling, on_delta: OnDelta
    ) -> Completion:
        await asyncio.sleep(self.pause)
        self.answered += 1
        text = f"answer {self.answered} from {self.name}"
        on_delta(text)
        return Completion(text, Usage(completion_tokens=4), "stop")

    async def count_tokens(self, text: str) -> int | None:
        return len(text) // 2

    async def template_cost(self) -> TemplateCost | None:
        return TemplateCost(fixed=8, per_message=4)


FAIL = "<fail>"  # a reply that makes the seat fail instead of answering


class ScriptedSeat(PausingSeat):
    """A seat that gives its replies in order, the last one again once they run out; a reply
    of `FAIL` fails that prompt."""

    def __init__(self, name: str, *replies: str, grammar: bool = False) -> None:
        super().__init__(name, 0)
        self.replies = list(replies)
        self.prompts: list[str] = []
        self.grammars: list[str | None] = []  # the grammar each prompt came with
        self.grammar = grammar  # True: like llama-server, it is asked for follow-ups

    async def complete(
        self, messages: list[Message], sampling: Sampling, on_delta: OnDelta
    ) -> Completion:
        self.prompts.append(str(messages[-1]["content"]))
        self.grammars.append(sampling.grammar)
        text = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if text == FAIL:
            raise SeatFailure(f"{self.name} failed as scripted")
        on_delta(text)
        return Completion(text, Usage(completion_tokens=len(text.split())), "stop")
