"""The typed events a council round streams (documented in docs/events.md).

Every event carries the conversation and message ids, so a client that follows several rounds,
or reconnects, always knows what an event belongs to.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class EventType(StrEnum):
    """Every event a round can emit (an emitter naming another is a mypy error)."""

    RUN_START = "run_start"  # mode, seats, chair
    STAGE_START = "stage_start"  # stage, layer, seats
    SEAT_DELTA = "seat_delta"  # stage, layer, seat, delta
    SEAT_DONE = "seat_done"  # stage, layer, seat, content, usage
    SEAT_ERROR = (
        "seat_error"  # stage, layer, seat, status (failed|timeout|cancelled), error, content
    )
    REVIEW_DONE = "review_done"  # seat, labels, ranking | null, problem, content
    RANKING = "ranking"  # standings
    VOTE = "vote"  # tally
    CHAIR_DELTA = "chair_delta"  # seat, delta
    NOTE = "note"  # text: what the council decided on its own (a fallback chair, one survivor)
    DONE = "done"  # status, answer, result
    ERROR = "error"  # message


@dataclass(frozen=True, slots=True)
class Event:
    type: str
    data: dict[str, Any]

    def sse(self) -> bytes:
        return f"event: {self.type}\ndata: {json.dumps(self.data)}\n\n".encode()


Emit = Callable[[Event], None]
