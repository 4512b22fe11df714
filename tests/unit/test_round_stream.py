"""A round's SSE stream: silence gets heartbeats and never stops the round; a client that goes
away does, cleanly."""

from __future__ import annotations

import asyncio
import json
import logging
from contextlib import closing
from typing import Any, cast

import anyio
import pytest
from starlette.requests import Request

from council.deliberation.events import Event
from council.deliberation.rounds import RoundOptions
from council.deliberation.seats import Sampling
from council.deliberation.service import CouncilService, RunHandle
from council.server import api
from council.settings import RoundDefaults
from council.store import conversations
from council.store.access import Store
from council.store.db import connect
from tests.running import run
from tests.scripted_seats import PausingSeat

HEARTBEAT = (
    0.05  # patched over api.HEARTBEAT: a pause of a few heartbeats takes a fraction of a second
)


class Client:
    """What `_sse` needs of a request: its `receive`, which reports a disconnect when told."""

    def __init__(self) -> None:
        self.gone = asyncio.Event()

    async def receive(self) -> dict[str, Any]:
        await self.gone.wait()
        return {"type": "http.disconnect"}


def stored_status(db: Store, message_id: str) -> tuple[str] | None:
    with closing(connect(db.path)) as reader:
        row = reader.execute("SELECT status FROM messages WHERE id = ?", (message_id,)).fetchone()
    return None if row is None else (str(row[0]),)


async def start(db: Store, seat: PausingSeat) -> tuple[CouncilService, Any]:
    service = CouncilService(db, lambda: {seat.name: seat}, RoundDefaults)
    conversation = await db.write(conversations.create_conversation, "x")
    options = RoundOptions(seats=(seat.name,), chair=seat.name, sampling=Sampling(max_tokens=8))
    return service, await service.start(conversation, "Why is the sky blue?", options)


def kinds(chunks: list[bytes]) -> list[str]:
    return [
        "ping"
        if chunk == b": ping\n\n"
        else chunk.split(b"\n")[0].removeprefix(b"event: ").decode()
        for chunk in chunks
    ]


def test_a_seat_silent_for_several_heartbeats_still_finishes_the_round(
    db: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api, "HEARTBEAT", HEARTBEAT)
    seat = PausingSeat("slow", pause=HEARTBEAT * 6)

    async def main() -> tuple[list[bytes], str]:
        _, handle = await start(db, seat)
        stream = api._sse(handle, cast(Request, Client()))
        chunks = [chunk async for chunk in stream]
        return chunks, handle.message_id

    chunks, message_id = run(main())
    seen = kinds(chunks)
    assert seen.count("ping") >= 3
    assert seen[-1] == "done"
    done = json.loads(chunks[-1].split(b"data: ", 1)[1])
    assert done["status"] == "done"
    assert done["answer"].startswith("answer")
    stored = stored_status(db, message_id)
    assert stored == ("done",)


def test_a_client_that_goes_away_stops_the_round_without_an_error(
    db: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(api, "HEARTBEAT", HEARTBEAT)
    seat = PausingSeat("slow", pause=30)  # never answers before the client leaves

    async def main() -> tuple[list[bytes], str, bool]:
        _, handle = await start(db, seat)
        client = Client()
        stream = api._sse(handle, cast(Request, client))
        chunks = [await anext(stream)]
        while chunks[-1] != b": ping\n\n":  # the round has started and gone quiet
            chunks.append(await anext(stream))
        client.gone.set()
        chunks += [chunk async for chunk in stream]
        await stream.aclose()
        return chunks, handle.message_id, handle.task.done()

    with caplog.at_level(logging.ERROR):
        chunks, message_id, ended = run(main())
    assert ended
    assert kinds(chunks)[0] == "run_start"
    assert "ping" in kinds(chunks)
    stored = stored_status(db, message_id)
    assert stored == ("cancelled",)
    assert "already running" not in caplog.text
    assert seat.answered == 0


def test_a_stream_cancelled_at_every_wait_as_starlette_cancels_it_stops_the_round_at_once() -> None:
    """Starlette's own disconnect listener cancels the response with an anyio scope, which cancels
    again at every await. If that lands just as a next event was read, the stream's clean-up
    awaits are cut short, and the round went on until the garbage collector found the
    abandoned event generator (seconds later, with the engine still generating). The round must
    be stopped before the response has finished leaving."""

    async def main() -> bool:
        round_task = asyncio.create_task(asyncio.sleep(3600))
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        handle = RunHandle("conversation", "message", round_task, queue)
        stream = api._sse(handle, cast(Request, Client()))
        first = asyncio.Event()
        scope = anyio.CancelScope()
        stopped: list[bool] = []

        async def respond() -> None:
            with scope:
                async for _ in stream:
                    first.set()
            stopped.append(round_task.cancelling() > 0 or round_task.done())

        queue.put_nowait(Event("seat_delta", {"delta": "a"}))
        response = asyncio.create_task(respond())
        await first.wait()
        await asyncio.sleep(0)  # the stream now waits for its next event
        queue.put_nowait(Event("seat_delta", {"delta": "b"}))
        scope.cancel()
        await response
        round_task.cancel()
        await asyncio.gather(round_task, return_exceptions=True)
        await stream.aclose()
        return stopped == [True]

    assert run(main())


def test_a_stopped_round_finishes_its_clean_up_however_often_the_response_is_cancelled() -> None:
    """The response's scope cancels it at every await while it waits for the round to end;
    none of those may reach the round, whose clean-up (closing its engine connections) must
    run to the end after its one cancellation."""
    cut_short: list[bool] = []

    async def round_body() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            try:
                for _ in range(20):  # clean-up that takes a few turns of the loop
                    await asyncio.sleep(0)
                cut_short.append(False)
            except asyncio.CancelledError:
                cut_short.append(True)
            raise

    async def main() -> None:
        round_task = asyncio.create_task(round_body())
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        handle = RunHandle("conversation", "message", round_task, queue)
        stream = api._sse(handle, cast(Request, Client()))
        first = asyncio.Event()
        scope = anyio.CancelScope()

        async def respond() -> None:
            with scope:
                async for _ in stream:
                    first.set()

        queue.put_nowait(Event("seat_delta", {"delta": "a"}))
        response = asyncio.create_task(respond())
        await first.wait()
        await asyncio.sleep(0)
        scope.cancel()
        await response
        await asyncio.gather(round_task, return_exceptions=True)
        await stream.aclose()

    run(main())
    assert cut_short == [False]
