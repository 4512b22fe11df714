"""Browser tabs that joined the council: each is a `Seat` whose engine is wllama in a web page.

A tab registers (`BrowserSeats.register`) and receives a seat id and a secret; it then holds an
event stream open (`BrowserSeat.events`) on which the hub sends it stage prompts (`task`) and
stop orders (`cancel`). The tab answers each task with small batches of text and a last batch
that says `done` (or `error`); every batch reaches the round's `on_delta` at once, so the council
page streams a tab's answer as it is written, as it does an engine's.

A seat is a council member only while its stream is open. When the stream closes (the tab was
closed, reloaded, or lost its network) the seat leaves the roster and any task it was answering
fails with "the browser tab went away", the way any failing seat fails. Cancelling `complete()`
(the round was stopped, or the stage timed out) sends the tab `cancel` for that task; whatever
the tab posts for it afterwards is refused, which tells the tab to stop generating too.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from council.deliberation.seats import (
    Completion,
    Message,
    OnDelta,
    Sampling,
    SeatFailure,
    TemplateCost,
)
from council.engine.tokenizer import Tokenizer
from council.types import Usage

GONE = "the browser tab went away"
CONNECT_WITHIN = 60.0  # seconds a registration may wait for its tab to open the task stream
MAX_SEATS = 32  # the laptop's own registrations at once: a page in a loop cannot exhaust memory
MAX_PER_DEVICE = 4  # a paired device's: one phone cannot take the seats the laptop's tabs need


@dataclass(slots=True)
class _Task:
    messages: list[Message]
    sampling: Sampling
    on_delta: OnDelta
    answer: asyncio.Future[Completion]
    parts: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)


class BrowserSeat:
    """One registered tab, as the council sees it: `kind` "browser", `label` for people."""

    kind = "browser"
    grammar = False  # a tab's engine is asked in plain text

    def __init__(
        self,
        seat_id: str,
        name: str,
        label: str,
        ctx_size: int | None,
        device_id: str | None = None,
    ) -> None:
        self.id = seat_id
        self.device_id = device_id  # the paired device whose tab this is; None: the laptop's
        self.model: str | None = None  # the catalog path of the tab's model, once it names it
        self.tokenizer: Tokenizer | None = None  # that model's
        self.name = name
        self.label = label
        self.secret = secrets.token_urlsafe(32)
        self.registered = time.monotonic()
        self.connected = False
        self.gone = False
        self._ctx_size = ctx_size
        self._outbox: asyncio.Queue[tuple[str, dict[str, Any]] | None] = asyncio.Queue()
        self._tasks: dict[str, _Task] = {}
        self._numbers = itertools.count(1)

    @property
    def ctx_size(self) -> int | None:
        return self._ctx_size

    def unavailable(self) -> str | None:
        return GONE if self.gone else None

    def owned_by(self, secret: str) -> bool:
        return secrets.compare_digest(self.secret.encode(), secret.encode())

    async def complete(
        self, messages: list[Message], sampling: Sampling, on_delta: OnDelta
    ) -> Completion:
        if self.gone:
            raise SeatFailure(GONE)
        task_id = f"t{next(self._numbers)}"
        task = _Task(messages, sampling, on_delta, asyncio.get_running_loop().create_future())
        self._tasks[task_id] = task
        self._send(
            "task",
            task=task_id,
            messages=messages,
            max_tokens=sampling.max_tokens,
            temperature=sampling.temperature,
            seed=sampling.seed_for(),
        )
        try:
            return await task.answer
        except asyncio.CancelledError:
            if self._tasks.pop(task_id, None) is not None:
                self._send("cancel", task=task_id)  # the tab stops generating
            raise
        finally:
            self._tasks.pop(task_id, None)

    async def count_tokens(self, text: str) -> int | None:
        # The tab's own model, tokenized beside the hub's engine: wllama has no tokenize call,
        # and a round trip to a busy tab would wait behind its answer.
        return await self.tokenizer.count(text) if self.tokenizer is not None else None

    async def template_cost(self) -> TemplateCost | None:
        return None  # llama-tokenize cannot render a chat template: fitting guesses

    def deliver(self, task_id: str, update: dict[str, Any]) -> bool:
        """Apply one batch from the tab: `deltas` (strings, in order), then optionally `done`
        (with `finish_reason`, `usage`) or `error`. False when the task is no longer wanted."""
        task = self._tasks.get(task_id)
        if task is None or task.answer.done():
            return False
        for delta in update.get("deltas") or ():
            if isinstance(delta, str) and delta:
                task.parts.append(delta)
                try:
                    task.on_delta(delta)
                except SeatFailure as exc:  # the round refuses more (an answer over its size)
                    task.answer.set_exception(exc)
                    self._send("cancel", task=task_id)
                    return False
        if isinstance(error := update.get("error"), str):
            task.answer.set_exception(SeatFailure(f"{self.name}: {error[:300]}"))
        elif update.get("done") is True:
            task.answer.set_result(self._completion(task, update))
        return True

    def _completion(self, task: _Task, update: dict[str, Any]) -> Completion:
        usage = Usage(wall_ms=(time.monotonic() - task.started) * 1000)
        reported = update.get("usage")
        if isinstance(reported, dict):
            for key in ("prompt_tokens", "completion_tokens"):
                value = reported.get(key)
                if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                    setattr(usage, key, value)
        reason = update.get("finish_reason")
        return Completion("".join(task.parts), usage, reason if isinstance(reason, str) else None)

    def _send(self, kind: str, **data: Any) -> None:
        self._outbox.put_nowait((kind, data))

    async def next_event(self) -> tuple[str, dict[str, Any]] | None:
        """The next thing to tell the tab (`task` or `cancel`), in order; None once closed."""
        return await self._outbox.get()

    def close(self) -> None:
        """The tab went away: fail what it was answering, end its event stream."""
        self.gone = True
        for task in self._tasks.values():
            if not task.answer.done():
                task.answer.set_exception(SeatFailure(GONE))
        self._tasks.clear()
        self._outbox.put_nowait(None)

    def describe(self) -> dict[str, Any]:
        model = f"{self.model} (in the tab)" if self.model else "in the tab"
        return {
            "name": self.name,
            "kind": self.kind,
            "label": self.label,
            "model": model,
            "state": "ready",
            "demo": False,
            # A paired device's tab joins the laptop's rounds only when they name it.
            "from_device": self.device_id is not None,
            "ctx_size": self.ctx_size,
            "size_bytes": None,
            "quantization": None,
            "parameters": None,
        }


class BrowserSeats:
    """Every registered tab by seat id; `members()` are those whose stream is open."""

    def __init__(self) -> None:
        self._seats: dict[str, BrowserSeat] = {}

    def register(
        self, label: str, ctx_size: int | None, taken: set[str], device_id: str | None = None
    ) -> BrowserSeat:
        """A new seat for a tab of the laptop (`device_id` None) or of a paired device, each
        held to its own number of registrations."""
        self._forget_unconnected()
        held = sum(seat.device_id == device_id for seat in self._seats.values())
        if device_id is None and held >= MAX_SEATS:
            raise SeatFailure(f"{MAX_SEATS} browser seats are registered already")
        if device_id is not None and held >= MAX_PER_DEVICE:
            raise SeatFailure(f"this device has {MAX_PER_DEVICE} browser seats registered already")
        while True:
            seat_id = secrets.token_hex(3)
            name = f"browser-{seat_id}"
            if seat_id not in self._seats and name not in taken:
                break
        seat = BrowserSeat(seat_id, name, label, ctx_size, device_id)
        self._seats[seat_id] = seat
        return seat

    def get(self, seat_id: str) -> BrowserSeat | None:
        return self._seats.get(seat_id)

    def remove(self, seat: BrowserSeat) -> None:
        if self._seats.get(seat.id) is seat:
            del self._seats[seat.id]
        seat.close()

    def members(self) -> Iterator[BrowserSeat]:
        return (seat for seat in self._seats.values() if seat.connected and not seat.gone)

    def close_all(self) -> None:
        for seat in list(self._seats.values()):
            self.remove(seat)

    def _forget_unconnected(self) -> None:
        cutoff = time.monotonic() - CONNECT_WITHIN
        for seat in list(self._seats.values()):
            if not seat.connected and seat.registered < cutoff:
                self.remove(seat)
