"""The typed events a council round streams (documented in docs/events.md).

Every event carries the conversation and message ids, so a client that follows several rounds,
or reconnects, always knows what an event belongs to.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

EVENT_TYPES = (
    "run_start",  # mode, seats, chair
    "stage_start",  # stage, layer, seats
    "seat_delta",  # stage, layer, seat, delta
    "seat_done",  # stage, layer, seat, content, usage
    "seat_error",  # stage, layer, seat, status (failed|timeout|cancelled), error, content
    "review_done",  # seat, labels, ranking | null, problem, content
    "ranking",  # standings
    "vote",  # tally
    "chair_delta",  # seat, delta
    "note",  # text: what the council decided on its own (a fallback chair, one survivor)
    "done",  # status, answer, result
    "error",  # message
)


@dataclass(frozen=True, slots=True)
class Event:
    type: str
    data: dict[str, Any]

    def sse(self) -> bytes:
        return f"event: {self.type}\ndata: {json.dumps(self.data)}\n\n".encode()


Emit = Callable[[Event], None]
