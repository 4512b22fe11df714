"""One council round's plumbing: asking seats, streaming their tokens, storing what they said.

The modes (modes.py) describe *what* is asked of whom; a `Round` does the asking the same way
for every stage: per-seat timeout, failures kept with their reason instead of dropped, every
finished output committed to the store at once, and cancellation that stores what was produced
so far before it lets go.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from council.deliberation.events import Emit, Event, EventType
from council.deliberation.grammars import FollowUp
from council.deliberation.prompts import history_messages
from council.deliberation.seats import (
    GUESSED_TEMPLATE,
    Completion,
    Message,
    OnDelta,
    Sampling,
    Seat,
    SeatFailure,
    TemplateCost,
)
from council.errors import StoreError
from council.store import conversations as store
from council.store.access import Store
from council.timestamps import stamp
from council.types import Mode, OutputStatus, Stage, StageOutput

# Room kept beyond the chat template's measured cost: a text counted on its own can take a
# token or two more or less inside the rendered conversation.
TEMPLATE_MARGIN = 16
SHORTENED = " […shortened to fit this seat's context]"
LEFT_OUT = "[…]"  # an answer that had no room at all
# Characters one seat's answer at one stage may have: max_tokens bounds an engine, but a remote
# seat or a browser tab can send without end, into memory, the page and council.db.
MAX_OUTPUT = 1_000_000


@dataclass(frozen=True, slots=True)
class RoundOptions:
    mode: Mode = Mode.SYNTHESIZE
    seats: tuple[str, ...] = ()
    chair: str = ""
    sampling: Sampling = field(default_factory=Sampling)
    stage_timeout: float = 300.0
    exclude_self: bool = True  # a reviewer does not rank its own answer
    layers: int = 1  # mixture-of-agents proposer layers
    extractor: str = "number"  # vote mode: number | choice[:LETTERS] | regex:PATTERN
    review_ties: bool = False  # vote mode: settle ties by a review round instead of the chair
    shuffle_seed: int | None = None  # reproducible review orders (tests, benchmarks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode.value,
            "seats": list(self.seats),
            "chair": self.chair,
            "max_tokens": self.sampling.max_tokens,
            "temperature": self.sampling.temperature,
            "stage_timeout": self.stage_timeout,
            "exclude_self": self.exclude_self,
            "layers": self.layers,
            "extractor": self.extractor,
            "review_ties": self.review_ties,
        }


class Round:
    def __init__(
        self,
        db: Store,
        seats: Mapping[str, Seat],
        *,
        conversation_id: str,
        message_id: str,
        question: str,
        history: Sequence[tuple[str, str]],
        options: RoundOptions,
        emit: Emit,
    ) -> None:
        self.db = db
        self.seats = seats
        self.conversation_id = conversation_id
        self.message_id = message_id
        self.question = question
        self.history = list(history)
        self.options = options
        self._emit = emit
        self.notes: list[str] = []
        self.unsaved: StoreError | None = None  # the first write the stick refused
        self._token_counts: dict[tuple[str, str], int] = {}

    def emit(self, kind: EventType, **data: Any) -> None:
        self._emit(
            Event(
                kind,
                {"conversation_id": self.conversation_id, "message_id": self.message_id, **data},
            )
        )

    def seat(self, name: str) -> Seat:
        """The seat called `name` now; one removed while the round runs fails what it is
        asked from then on."""
        try:
            return self.seats[name]
        except KeyError:
            raise SeatFailure("the seat was removed") from None

    def can_answer(self, name: str) -> bool:
        seat = self.seats.get(name)
        return seat is not None and not seat.unavailable()

    def note(self, text: str) -> None:
        self.notes.append(text)
        self.emit(EventType.NOTE, text=text)

    async def ask_all(
        self,
        stage: Stage,
        seats: Sequence[str],
        prompt_for: Callable[[str], Awaitable[str]],
        layer: int = 0,
    ) -> list[StageOutput]:
        """Ask every seat in parallel; each result is kept, failed or not, in seat order."""
        self.emit(EventType.STAGE_START, stage=stage.value, layer=layer, seats=list(seats))

        async def one(seat: str) -> StageOutput:
            return await self.ask(stage, seat, await prompt_for(seat), layer=layer)

        return list(await asyncio.gather(*(one(seat) for seat in seats)))

    async def ask(
        self,
        stage: Stage,
        seat_name: str,
        prompt: str,
        *,
        layer: int = 0,
        annotate: Callable[[StageOutput], None] | None = None,
        follow_up: FollowUp | None = None,
    ) -> StageOutput:
        """Ask one seat; `annotate` adds what the stage reads from the answer (a review's parsed
        ranking, a vote's extracted answer) before the output is stored and announced. With
        `follow_up`, a seat that obeys grammars and whose answer lacks that part is asked for it
        under the grammar (grammars.py); `details["followed_up"]` says whether it was."""
        output = StageOutput(
            stage, seat_name, "", OutputStatus.DONE, layer=layer, started_at=stamp()
        )
        parts: list[str] = []
        written = 0
        delta_event = EventType.CHAIR_DELTA if stage is Stage.CHAIR else EventType.SEAT_DELTA

        def on_delta(delta: str) -> None:
            nonlocal written
            written += len(delta)
            if written > MAX_OUTPUT:  # a remote or a tab can send past any max_tokens
                raise SeatFailure(f"the answer passed {MAX_OUTPUT:,} characters and was cut off")
            parts.append(delta)
            self.emit(delta_event, stage=stage.value, layer=layer, seat=seat_name, delta=delta)

        started = time.monotonic()
        answered: Completion | None = None  # the answer itself, before any follow-up
        try:
            async with asyncio.timeout(self.options.stage_timeout):
                seat = self.seat(seat_name)
                messages = await self.messages_for(seat, prompt)
                completion = answered = await seat.complete(
                    messages, self.options.sampling, on_delta
                )
                if follow_up is not None:
                    completion = await self._follow_up(
                        seat, messages, completion, follow_up, on_delta, output=output
                    )
            output.content, output.usage = completion.text, completion.usage
            if not output.content.strip():
                output.status, output.error = OutputStatus.FAILED, "the answer was empty"
        except TimeoutError:
            if answered is not None and answered.text.strip():
                # The time ran out in the follow-up: the answer stands without what it asked.
                output.content, output.usage = answered.text, answered.usage
                output.details["followed_up"] = False
                self.note(f"{seat_name}: no time left to ask for its {stage.value}'s end")
            else:
                output.status = OutputStatus.TIMEOUT
                output.error = f"no answer within {self.options.stage_timeout:g} s"
        except SeatFailure as exc:
            output.status, output.error = OutputStatus.FAILED, str(exc)
        except asyncio.CancelledError:
            output.status, output.error = OutputStatus.CANCELLED, "stopped"
            output.content = "".join(parts)
            await self._finish(output, started)
            raise
        if output.status is not OutputStatus.DONE:
            output.content = output.content or "".join(parts)
        if annotate is not None:
            annotate(output)
        await self._finish(output, started)
        return output

    async def _follow_up(
        self,
        seat: Seat,
        messages: list[Message],
        first: Completion,
        follow_up: FollowUp,
        on_delta: OnDelta,
        *,
        output: StageOutput,
    ) -> Completion:
        """The first answer with the grammar-bound reply appended, or the first answer alone
        where none was needed or possible (a failed follow-up is noted, not the seat's
        failure: its answer stands)."""
        output.details["followed_up"] = False
        if not seat.grammar or not first.text.strip() or not follow_up.needed(first.text):
            return first
        asked = [
            *messages,
            {"role": "assistant", "content": first.text},
            {"role": "user", "content": follow_up.prompt},
        ]
        sampling = replace(
            self.options.sampling, max_tokens=follow_up.max_tokens, grammar=follow_up.grammar
        )
        separated = False

        def appended(delta: str) -> None:
            nonlocal separated
            if not separated:  # the page shows the reply below the answer, as it is stored
                separated = True
                on_delta("\n\n")
            on_delta(delta)

        try:
            second = await seat.complete(asked, sampling, appended)
        except SeatFailure as exc:
            self.note(f"{seat.name}: asked again for its {output.stage.value}'s end: {exc}")
            return first
        output.details["followed_up"] = True
        usage = first.usage.plus(second.usage)
        return Completion(f"{first.text}\n\n{second.text}", usage, second.finish_reason)

    async def _finish(self, output: StageOutput, started: float) -> None:
        """Store the output, then announce it. A stick that refuses the write does not stop
        the round: the people asking still get their answer, told it was not saved."""
        output.finished_at = stamp()
        if not output.usage.wall_ms:
            output.usage.wall_ms = (time.monotonic() - started) * 1000
        if self.unsaved is None:
            try:
                await self.db.write(store.add_output, self.message_id, output)
            except StoreError as exc:
                self.unsaved = exc
        payload = store.output_dict(output)
        if output.status is OutputStatus.DONE:
            self.emit(EventType.SEAT_DONE, **payload)
        else:
            self.emit(EventType.SEAT_ERROR, **payload)

    async def messages_for(self, seat: Seat, prompt: str) -> list[Message]:
        """History plus this stage's prompt, oldest turns dropped until it fits the seat: each
        message costs its words plus what the seat's chat template adds to it."""
        if reason := seat.unavailable():
            raise SeatFailure(reason)
        history = history_messages(self.history)
        current: Message = {"role": "user", "content": prompt}
        if seat.ctx_size is None or not history:
            return [*history, current]
        template = await self._template(seat)
        budget = seat.ctx_size - self.options.sampling.max_tokens - template.fixed
        budget -= TEMPLATE_MARGIN
        words = token_bound([prompt, *(m["content"] for m in history)])
        if words + template.per_message * (len(history) + 1) <= budget:
            return [*history, current]  # fits even at the worst a tokenizer can do
        used = await self._tokens(seat, prompt) + template.per_message
        kept: list[Message] = []
        # Walk back from the newest turn pair; a pair is kept whole or not at all.
        for index in range(len(history) - 2, -1, -2):
            pair = history[index : index + 2]
            cost = sum([await self._tokens(seat, message["content"]) for message in pair])
            cost += template.per_message * len(pair)
            if used + cost > budget:
                break
            used += cost
            kept = pair + kept
        if len(kept) < len(history):
            dropped = (len(history) - len(kept)) // 2
            self.emit(
                EventType.NOTE,
                text=f"{seat.name}: left out the {dropped} oldest exchange(s) to "
                f"fit its {seat.ctx_size}-token context",
            )
        return [*kept, current]

    async def fit(
        self, seat_name: str, texts: Sequence[str], render: Callable[[Sequence[str]], str]
    ) -> str:
        """The prompt `render(texts)`, with the texts (the answers a stage shows this seat)
        shortened, if need be, so that it fits the seat's context with room left to answer:
        the prompt's own words are counted as they are, and every text gets an equal share of
        what is left."""
        seat = self.seats.get(seat_name)
        whole = render(texts)
        if seat is None or seat.ctx_size is None or not texts or seat.unavailable():
            return whole
        template = await self._template(seat)
        room = seat.ctx_size - self.options.sampling.max_tokens - template.of(1) - TEMPLATE_MARGIN
        if token_bound([whole]) <= room:
            return whole  # fits even at the worst a tokenizer can do: nothing to count
        frame = await self._tokens(seat, render([""] * len(texts)))
        counts = [await self._tokens(seat, text) for text in texts]
        budget = room - frame
        if sum(counts) <= budget:
            return whole
        share = max(0, budget // len(texts))
        words = share - await self._tokens(seat, SHORTENED)  # what a shortened text keeps
        fitted = []
        for text, count in zip(texts, counts, strict=True):
            if count <= share:
                fitted.append(text)
            elif words > 0:
                # Characters per token vary; cut by the text's own ratio, with a safety margin.
                fitted.append(text[: int(len(text) * words / count * 0.9)].rstrip() + SHORTENED)
            else:  # no room for any of it
                fitted.append(LEFT_OUT)
        self.emit(
            EventType.NOTE,
            text=f"{seat_name}: shortened the answers it was shown to fit its "
            f"{seat.ctx_size}-token context",
        )
        return render(fitted)

    async def _tokens(self, seat: Seat, text: str) -> int:
        """`text`'s tokens for `seat`; where the seat cannot count, the most they can be, so
        that what is fitted by that bound fits for certain."""
        key = (seat.name, text)
        if key not in self._token_counts:
            counted = await seat.count_tokens(text)
            self._token_counts[key] = token_bound([text]) if counted is None else counted
        return self._token_counts[key]

    async def _template(self, seat: Seat) -> TemplateCost:
        """What `seat`'s chat template costs; where it cannot say, a guess above any measured."""
        return await seat.template_cost() or GUESSED_TEMPLATE


def token_bound(texts: Sequence[str]) -> int:
    """The most tokens `texts` can be, with no tokenizer at hand: one per byte (what byte
    fallback gives at worst), plus two per space (SentencePiece writes a space as the 3-byte
    "▁", which a vocabulary of bytes alone spells in three tokens). The chat template's own
    tokens are not in it: they are the seat's `template_cost()`."""
    return sum(len(text.encode()) + 2 * text.count(" ") for text in texts)


def done(outputs: Sequence[StageOutput]) -> list[StageOutput]:
    return [output for output in outputs if output.status is OutputStatus.DONE]
