"""Seats for tests of round orchestration, which need no model: they answer on a script."""

from __future__ import annotations

import asyncio

from council.deliberation.seats import Completion, Message, OnDelta, Sampling, TemplateCost
from council.types import Usage


class PausingSeat:
    """A seat that thinks for `pause` seconds before each answer, like a real model on a CPU
    reading a long review prompt."""

    kind = "local"
    ctx_size = 4096

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
