"""The hub's own engines as seats: each reads its engine's current port and key when asked."""

from __future__ import annotations

import functools

from council.config import HubConfig
from council.deliberation.seats import HttpSeat
from council.engine.fleet import Fleet


def local_seats(config: HubConfig, fleet: Fleet) -> dict[str, HttpSeat]:
    seats = {}
    for planned in fleet.planned:
        seat = planned.config
        trained = planned.model.context_length if planned.model else None
        # llama-server caps a slot's context at what the model was trained for.
        configured = seat.ctx_size or trained
        context = min(configured, trained) if configured and trained else configured
        seats[seat.name] = HttpSeat(
            seat.name,
            "local",
            functools.partial(fleet.target, seat.name),
            fleet.client,
            model=seat.name,
            ctx_size=context,
            tokenize=True,
        )
    return seats
