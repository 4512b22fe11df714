"""Types shared across layers: what a council round produces, as the store keeps it, and
where a seat answers."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, NamedTuple


class Endpoint(NamedTuple):
    """Where a seat answers now: an OpenAI-compatible base URL and the key it wants."""

    url: str
    key: str


class Mode(enum.StrEnum):
    SYNTHESIZE = "synthesize"
    MOA = "moa"
    VOTE = "vote"


class Stage(enum.StrEnum):
    ANSWER = "answer"  # stage 1 of synthesize and vote; a proposer layer in moa
    REVIEW = "review"
    CHAIR = "chair"  # the final answer: the chair in synthesize and vote, the aggregator in moa


class OutputStatus(enum.StrEnum):
    DONE = "done"
    FAILED = "failed"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"


class MessageStatus(enum.StrEnum):
    RUNNING = "running"
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # the hub stopped (or the stick was pulled) mid-run


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    prompt_ms: float = 0.0  # the engine's own timings, where it reports them
    generation_ms: float = 0.0
    wall_ms: float = 0.0  # as council measured it, request to last byte

    def plus(self, other: Usage) -> Usage:
        """Two requests' usage together (an answer and its follow-up)."""
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.prompt_ms + other.prompt_ms,
            self.generation_ms + other.generation_ms,
            self.wall_ms + other.wall_ms,
        )


@dataclass(slots=True)
class StageOutput:
    stage: Stage
    seat: str
    content: str
    status: OutputStatus
    layer: int = 0
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)
    started_at: str = ""
    finished_at: str = ""
