"""Running council rounds for the hub: validation, the round's task, its event stream.

A round runs in its own task and speaks through a queue of events; whoever started it (an SSE
response, the CLI, the /v1 endpoint) reads the queue and, when it goes away, cancels the task.
Cancelling reaches every seat's HTTP stream, so the engines stop generating too, and what was
produced so far is stored as cancelled.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from council.deliberation.events import Event, EventType
from council.deliberation.modes import RoundFailed, run_mode
from council.deliberation.rounds import Round, RoundOptions
from council.deliberation.seats import Sampling, Seat
from council.errors import BadRequest, NotFound, StoreError
from council.settings import RoundDefaults, ranges
from council.store import conversations as store
from council.store.access import Store
from council.tasks import settled
from council.types import MessageStatus, Mode

log = logging.getLogger("council")
MAX_QUESTION = 100_000


@dataclass(slots=True)
class RunHandle:
    conversation_id: str
    message_id: str
    task: asyncio.Task[None]
    queue: asyncio.Queue[Event | None] = field(default_factory=asyncio.Queue)
    # What `council status` shows of a round that is running.
    mode: str = ""
    seats: tuple[str, ...] = ()
    device_id: str | None = None
    started: float = field(default_factory=time.monotonic)

    async def events(self) -> AsyncGenerator[Event, None]:
        """The round's events until it ends; closing this iterator early stops the round."""
        try:
            while (event := await self.queue.get()) is not None:
                yield event
        finally:
            self.stop()
            await settled(self.task)

    def stop(self) -> None:
        """Cancel the round, once: a second cancellation could cut its clean-up short."""
        if not self.task.done() and not self.task.cancelling():
            self.task.cancel()


class CouncilService:
    def __init__(
        self,
        db: Store,
        seats: Callable[[], Mapping[str, Seat]],
        defaults: Callable[[], RoundDefaults],
    ) -> None:
        self.db = db
        self._seats = seats
        self._defaults = defaults
        self.running: dict[str, RunHandle] = {}

    async def stop_all(self) -> None:
        handles = list(self.running.values())
        for handle in handles:
            handle.stop()
        await settled(*(handle.task for handle in handles))

    def options(self, request: Mapping[str, Any], *, device_id: str | None = None) -> RoundOptions:
        """The request's choices over the defaults, validated; unknown names are a clear 4xx.
        Which seats a round may use depends on who asks (`roster`)."""
        may_name, by_default = self.roster(device_id)
        return round_options(self._defaults(), request, may_name, by_default)

    def roster(self, device_id: str | None) -> tuple[list[str], list[str]]:
        """The seats a round asked by `device_id` (None: the owner) may name, and those it gets
        when it names none. A paired device's browser tab answers that device's rounds only:
        another device never sees it, and the owner's rounds use it only when they name it
        (its prompts would otherwise go to a phone)."""
        seats = self._seats()

        def tab_of(name: str) -> str | None:
            return getattr(seats[name], "device_id", None)  # only a browser seat has one

        if device_id is None:
            return list(seats), [name for name in seats if tab_of(name) is None]
        mine = [name for name in seats if tab_of(name) in {None, device_id}]
        return mine, mine

    async def start(
        self,
        conversation_id: str | None,
        question: str,
        options: RoundOptions,
        *,
        device_id: str | None = None,
    ) -> RunHandle:
        """Start a round on `question` in a conversation, or (`None`) in a new one, which is
        made only once the question is accepted (a refused question stores nothing) and
        belongs to `device_id`'s paired device, or to the owner."""
        question = question.strip()
        if not question:
            raise BadRequest("the question is empty")
        if len(question) > MAX_QUESTION:
            raise BadRequest(f"the question is longer than {MAX_QUESTION} characters")
        if conversation_id is None:
            conversation_id = await self.db.write(store.create_conversation, "", device_id)
        history = await self.db.read(store.history, conversation_id)
        message_id = await self.db.write(
            store.start_message, conversation_id, question, options.mode.value, options.to_dict()
        )
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        round_ = Round(
            self.db,
            self._seats(),
            conversation_id=conversation_id,
            message_id=message_id,
            question=question,
            history=history,
            options=options,
            emit=queue.put_nowait,
        )
        task = asyncio.create_task(self._run(round_, queue), name=f"round:{message_id}")
        handle = RunHandle(
            conversation_id,
            message_id,
            task,
            queue,
            mode=options.mode.value,
            seats=tuple(options.seats),
            device_id=device_id,
        )
        self.running[message_id] = handle
        task.add_done_callback(lambda _: self.running.pop(message_id, None))
        return handle

    async def _run(self, round_: Round, queue: asyncio.Queue[Event | None]) -> None:
        options = round_.options
        round_.emit(
            EventType.RUN_START,
            mode=options.mode.value,
            seats=list(options.seats),
            chair=options.chair,
            question=round_.question,
        )
        status, answer, result, error = MessageStatus.DONE, None, {}, None
        try:
            verdict = await run_mode(round_)
            answer, result = verdict.answer, verdict.result
        except RoundFailed as exc:
            status, error = MessageStatus.FAILED, str(exc)
        except asyncio.CancelledError:
            status, error = MessageStatus.CANCELLED, "stopped before the council finished"
            raise
        except Exception as exc:  # a bug must end the round visibly, never hang the stream
            log.exception("council round %s failed", round_.message_id)
            status, error = MessageStatus.FAILED, f"internal error: {exc!r}"
        finally:
            result.setdefault("notes", round_.notes)
            finish = functools.partial(store.finish_message, message_id=round_.message_id)
            unsaved = round_.unsaved
            if unsaved is None:
                try:
                    await self.db.write(
                        finish, status=status, answer=answer, result=result, error=error
                    )
                except StoreError as exc:
                    unsaved = exc
            if unsaved is not None:
                # The answer is still shown; the stick gets the round's end once it recovers.
                status, error = MessageStatus.FAILED, f"{unsaved}; this answer was not saved"
                self.db.defer(finish, status=status, answer=answer, result=result, error=error)
            if error and status is MessageStatus.FAILED:
                round_.emit(EventType.ERROR, message=error)
            round_.emit(
                EventType.DONE,
                status=status.value,
                answer=answer,
                result=result,
                error=error,
                saved=unsaved is None,
            )
            queue.put_nowait(None)


def round_options(
    defaults: RoundDefaults,
    request: Mapping[str, Any],
    seats: Sequence[str],
    by_default: Sequence[str] | None = None,
) -> RoundOptions:
    """`request`'s choices over `defaults`, checked against the settings' ranges and the seat
    names (`seats` may be named; `by_default`, all of them unless given, take part when none
    are): the one validation a question from the page, `/v1`, the CLI and `[council]` in
    config.toml (checked by `council up`) all go through."""
    merged = {**asdict(defaults), **{k: v for k, v in request.items() if v is not None}}
    try:
        mode = Mode(merged["mode"])
    except ValueError:
        modes = ", ".join(m.value for m in Mode)
        raise BadRequest(f"unknown mode {merged['mode']!r}: use {modes}") from None
    named = merged["seats"]
    if not isinstance(named, list | tuple) or not all(isinstance(n, str) for n in named):
        raise BadRequest("'seats' must be a list of seat names")
    chosen = tuple(named or (seats if by_default is None else by_default))
    if not chosen:
        raise BadRequest("'seats' must be a list of seat names")
    unknown = [name for name in chosen if name not in seats]
    if unknown:
        raise NotFound(f"unknown seat {unknown[0]!r}: the seats are {', '.join(seats)}")
    if len(set(chosen)) != len(chosen):
        raise BadRequest("a seat may take part once per round")
    chair = merged["chair"] or chosen[0]
    if not isinstance(chair, str):
        raise BadRequest("'chair' must be a seat name")
    if chair not in seats:
        raise NotFound(f"unknown chair {chair!r}: the seats are {', '.join(seats)}")
    if mode is Mode.VOTE:
        from council.deliberation.extract import make_extractor

        try:
            make_extractor(str(merged["extractor"]))
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
    seed = merged.get("seed")
    seed = seed if isinstance(seed, int) and not isinstance(seed, bool) else None
    sample = merged.get("sample") or 0
    if not isinstance(sample, int) or isinstance(sample, bool) or not 0 <= sample <= MAX_SAMPLE:
        raise BadRequest(f"sample must be a whole number from 0 to {MAX_SAMPLE}")
    return RoundOptions(
        mode=mode,
        seats=chosen,
        chair=chair,
        sampling=Sampling(
            max_tokens=_bounded(merged, "max_tokens"),
            temperature=float(_bounded(merged, "temperature")),
            seed=seed,
            sample=sample,
        ),
        stage_timeout=float(_bounded(merged, "stage_timeout")),
        exclude_self=bool(merged["exclude_self"]),
        layers=_bounded(merged, "layers"),
        extractor=str(merged["extractor"]),
        review_ties=bool(merged["review_ties"]),
        shuffle_seed=seed,
    )


_RANGES = ranges(RoundDefaults)
MAX_SAMPLE = 1000


def _bounded(request: Mapping[str, Any], key: str) -> Any:
    value, allowed = request[key], _RANGES[key]
    whole = isinstance(allowed.low, int)
    if value not in allowed or (whole and not isinstance(value, int)):
        kind = "a whole number" if whole else "a number"
        raise BadRequest(f"{key} must be {kind} {allowed.describe()}")
    return value
