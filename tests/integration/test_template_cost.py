"""A seat's chat template is measured on its own engine, and the measure holds: what a
conversation's words cost plus the template's cost is at least what the engine counts."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from council.deliberation.seats import HttpSeat, TemplateCost
from council.engine.binary import EngineBinary
from council.models.demo import write_demo_model
from council.types import Endpoint
from tests.hubs import llama_server
from tests.running import run

CONVERSATIONS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [
        {"role": "user", "content": "Name a river."},
        {"role": "assistant", "content": "The Loire, which runs through the middle of France."},
        {"role": "user", "content": "And the longest one in the world?"},
    ],
    [
        {"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i} " * 9}
        for i in range(9)
    ],
]


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return write_demo_model(tmp_path / "seat.gguf", seed=3)


def test_the_measured_template_cost_bounds_what_the_engine_counts(
    engine_binary: EngineBinary, model: Path
) -> None:
    with llama_server(engine_binary.path, model, "-c", "2048") as base:

        async def measure() -> tuple[TemplateCost, list[int]]:
            async with httpx.AsyncClient() as client:
                seat = HttpSeat("demo", "local", lambda: Endpoint(base, ""), client, tokenize=True)
                cost = await seat.template_cost()
                assert cost is not None
                words = []
                for conversation in CONVERSATIONS:
                    counts = [await seat.count_tokens(m["content"]) for m in conversation]
                    words.append(sum(count or 0 for count in counts))
                assert await seat.template_cost() is cost  # measured once
                return cost, words

        cost, words = run(measure())
        counted = [
            httpx.post(
                f"{base}/v1/chat/completions",
                json={"messages": conversation, "max_tokens": 1},
                timeout=60,
            ).json()["usage"]["prompt_tokens"]
            for conversation in CONVERSATIONS
        ]
    assert cost.per_message > 8  # the demo vocabulary spells <|im_start|> byte by byte
    for conversation, word_tokens, engine_count in zip(CONVERSATIONS, words, counted, strict=True):
        estimate = word_tokens + cost.of(len(conversation))
        # Never under what the engine counts; over by a few tokens a message (each text counted
        # alone, and the measuring word): measured 4 to 13 over for 1 to 9 messages.
        assert engine_count <= estimate <= engine_count + 5 * len(conversation) + 5
