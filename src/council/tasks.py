"""Waiting for tasks to end without cancelling them again."""

from __future__ import annotations

import asyncio
from typing import Any


async def settled(*tasks: asyncio.Future[Any]) -> None:
    """Wait until every task has ended, whatever its outcome, and pass no cancellation on.

    `asyncio.gather` cancels what it waits for when the waiter is cancelled, and a waiter can be
    cancelled again and again: Starlette ends a response with an anyio cancel scope, which
    cancels at every await until the response is gone. Each of those reached a stopping council
    round as one more cancellation, which cut its clean-up short: httpcore then marked an
    engine's response closed without closing the socket, and the engine went on generating for
    nobody. A task that was told to stop once is left to finish its clean-up; a cancelled waiter
    stops waiting and nothing more.
    """
    if tasks:
        await asyncio.shield(asyncio.gather(*tasks, return_exceptions=True))
