"""Waiting for tasks without cancelling them again."""

from __future__ import annotations

import asyncio

from council.tasks import settled
from tests.running import run


def test_a_cancelled_waiter_leaves_the_task_it_waits_for_running() -> None:
    async def main() -> tuple[bool, str]:
        release = asyncio.Event()

        async def work() -> str:
            await release.wait()
            return "finished"

        task = asyncio.create_task(work())
        waiter = asyncio.create_task(settled(task))
        await asyncio.sleep(0)
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
        still_running = not task.done()
        release.set()
        return still_running, await task

    assert run(main()) == (True, "finished")


def test_settled_returns_once_every_task_has_ended_whatever_its_outcome() -> None:
    async def main() -> list[bool]:
        async def fails() -> None:
            raise ValueError("boom")

        tasks = [asyncio.create_task(fails()), asyncio.create_task(asyncio.sleep(3600))]
        tasks[1].cancel()
        await settled(*tasks)
        await settled()  # nothing to wait for
        return [task.done() for task in tasks]

    assert run(main()) == [True, True]
