"""A seat is anything that speaks OpenAI chat completions; the council never knows which kind.

`HttpSeat` streams from an OpenAI-compatible endpoint: a local engine (its per-run key and
current port are read from the supervised process at request time, so a restart on a new port is
invisible here), another council hub, or an opt-in cloud endpoint. A browser seat will implement
the same `Seat` protocol over its own transport.

Cancelling the task that awaits `complete()` closes the HTTP stream; llama-server notices the
closed connection and frees the slot, so "stop" reaches the engine and not only the page.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

import httpx

from council.engine.process import engine_headers
from council.errors import SeatError
from council.security.outbound import OutboundRefused
from council.types import Endpoint, Usage

Message = dict[str, str]
OnDelta = Callable[[str], None]


class SeatFailure(Exception):
    """A seat could not answer: the message says why, in words a person can act on."""


SEED_SPACE = 2**32  # llama.cpp's seeds are 32-bit


@dataclass(frozen=True, slots=True)
class Sampling:
    max_tokens: int = 512
    temperature: float = 0.7
    seed: int | None = None
    # A GBNF grammar the answer must match (llama-server's `grammar` field); only for a seat
    # whose `grammar` is True.
    grammar: str | None = None
    # Which sample of a question asked again this is (`council eval`'s self-consistency): it
    # offsets every seed, a seat's own included, so that k samples differ and stay repeatable.
    sample: int = 0

    def seed_for(self, own: int | None = None) -> int | None:
        """The seed a seat sends: its own if it has one, else the round's; offset by `sample`."""
        base = self.seed if own is None else own
        return None if base is None else (base + self.sample) % SEED_SPACE


@dataclass(frozen=True, slots=True)
class Style:
    """A seat's own sampling and standing instructions (config.toml's temperature, seed and
    system_prompt): where set, they replace the round's for this seat alone."""

    temperature: float | None = None
    seed: int | None = None
    system_prompt: str = ""

    def applied(self, sampling: Sampling) -> Sampling:
        return replace(
            sampling,
            temperature=sampling.temperature if self.temperature is None else self.temperature,
            seed=sampling.seed_for(self.seed),
            sample=0,  # applied: the seed above has its offset
        )

    def framed(self, messages: list[Message]) -> list[Message]:
        """The messages with the seat's system prompt first (before the round's own, if any:
        one system message, as every chat template expects)."""
        if not self.system_prompt:
            return messages
        if messages and messages[0].get("role") == "system":
            merged = f"{self.system_prompt}\n\n{messages[0]['content']}"
            return [{"role": "system", "content": merged}, *messages[1:]]
        return [{"role": "system", "content": self.system_prompt}, *messages]


@dataclass(frozen=True, slots=True)
class TemplateCost:
    """The tokens a seat's chat template adds around a conversation's own words: `fixed` once
    (BOS, a default system prompt, the assistant header it ends with) and `per_message` for
    each turn. They differ by far between models: a ChatML template costs about 5 a message in
    a real vocabulary and 32 in the demo models' vocabulary of bytes."""

    fixed: int
    per_message: int

    def of(self, messages: int) -> int:
        return self.fixed + self.per_message * messages


# Where a seat cannot measure its template (a browser tab, a cloud endpoint): more than the
# templates measured so far cost, so that what is fitted by it fits.
GUESSED_TEMPLATE = TemplateCost(fixed=64, per_message=32)


@dataclass(slots=True)
class Completion:
    text: str
    usage: Usage
    finish_reason: str | None


class Seat(Protocol):
    name: str
    kind: str  # "local", "remote" or "browser"
    grammar: bool  # whether `Sampling.grammar` is obeyed (llama-server's GBNF)

    @property
    def ctx_size(self) -> int | None: ...

    def unavailable(self) -> str | None:
        """Why this seat cannot answer right now (None when it can)."""
        ...

    async def complete(
        self, messages: list[Message], sampling: Sampling, on_delta: OnDelta
    ) -> Completion: ...

    async def count_tokens(self, text: str) -> int | None: ...

    async def template_cost(self) -> TemplateCost | None:
        """What the seat's chat template costs, measured; None when it cannot say."""
        ...


Target = Callable[[], Endpoint]  # where the seat answers now; raises SeatError when it cannot


class HttpSeat:
    """An OpenAI-compatible chat endpoint, streamed."""

    def __init__(
        self,
        name: str,
        kind: str,
        target: Target,
        client: httpx.AsyncClient,
        *,
        model: str | None = None,
        ctx_size: int | None = None,
        tokenize: bool = False,
        style: Style | None = None,
    ) -> None:
        self.name = name
        self.kind = kind
        self.grammar = tokenize  # llama-server: /tokenize and GBNF grammars go together
        self._style = style or Style()
        self._target = target
        self._client = client
        self._model = model or name
        self._ctx_size = ctx_size
        self._tokenize = tokenize  # llama-server's /tokenize; other endpoints have none
        self._template: TemplateCost | None = None  # measured once: the model does not change

    @property
    def ctx_size(self) -> int | None:
        return self._ctx_size

    def unavailable(self) -> str | None:
        try:
            self._target()
        except SeatError as exc:
            return str(exc)
        return None

    async def complete(
        self, messages: list[Message], sampling: Sampling, on_delta: OnDelta
    ) -> Completion:
        base_url, key = self._resolve()
        sampling = self._style.applied(sampling)
        body: dict[str, Any] = {
            "model": self._model,
            "messages": self._style.framed(messages),
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": sampling.max_tokens,
            "temperature": sampling.temperature,
        }
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        if sampling.grammar is not None and self.grammar:
            body["grammar"] = sampling.grammar
        started = time.monotonic()
        parts: list[str] = []
        usage = Usage()
        finish_reason = None
        read_to_end = False
        try:
            request = self._client.build_request(
                "POST",
                f"{base_url}/v1/chat/completions",
                json=body,
                headers=engine_headers(key, stream=True) if self.kind == "local" else _auth(key),
                timeout=httpx.Timeout(30.0, read=None),
            )
            response = await self._client.send(request, stream=True)
            try:
                if response.status_code >= 400:
                    said = await response.aread()
                    remote = self.kind == "remote"
                    raise SeatFailure(_error_text(said, response.status_code, remote=remote))
                async for data in _sse_data(response):
                    chunk = json.loads(data)
                    if (error := chunk.get("error")) is not None:
                        # llama-server (and OpenAI) report a failure after the 200 this way.
                        raise SeatFailure(f"{self.name} failed mid-answer: {_message(error)}")
                    for choice in chunk.get("choices") or ():
                        delta = (choice.get("delta") or {}).get("content")
                        if delta:
                            parts.append(delta)
                            on_delta(delta)
                        finish_reason = choice.get("finish_reason") or finish_reason
                    _read_usage(chunk, usage)
                read_to_end = True
            finally:
                # Closing the connection is how the engine learns to stop generating: shield it,
                # so that a second cancellation cannot leave the socket open and the slot busy.
                await asyncio.shield(_close(response, read_to_end))
        except httpx.HTTPError as exc:
            if isinstance(exc.__cause__, OutboundRefused):
                raise SeatFailure(f"{self.name} was not called: {exc.__cause__}") from None
            raise SeatFailure(f"lost the connection to {self.name}: {exc!r}") from None
        except ValueError:
            raise SeatFailure(f"{self.name} sent a stream council cannot read") from None
        usage.wall_ms = (time.monotonic() - started) * 1000
        return Completion("".join(parts), usage, finish_reason)

    async def count_tokens(self, text: str) -> int | None:
        if not self._tokenize:
            return None
        base_url, key = self._resolve()
        try:
            response = await self._client.post(
                f"{base_url}/tokenize", json={"content": text}, headers=_auth(key), timeout=30
            )
            response.raise_for_status()
            return len(response.json()["tokens"])
        except (httpx.HTTPError, KeyError, ValueError):
            return None

    async def template_cost(self) -> TemplateCost | None:
        """Measured on llama-server: one turn and three turns of one-token words, rendered by
        the model's own template (`/apply-template`) and tokenized as a completion's prompt is
        (with BOS). Each message's word is counted in `per_message`: a token of margin."""
        if not self._tokenize:
            return None
        if self._template is None:
            turns = [{"role": role, "content": "x"} for role in ("user", "assistant", "user")]
            one, three = (
                await self._templated_tokens(turns[:1]),
                await self._templated_tokens(turns),
            )
            if one is None or three is None or three <= one:
                return None  # not now (the engine restarting); measured on a later round
            per_message = -(-(three - one) // 2)
            fixed = max(0, one - per_message)
            if self._style.system_prompt:  # sent with every request, so part of the template
                words = await self.count_tokens(self._style.system_prompt)
                if words is None:
                    return None
                fixed += words + per_message
            self._template = TemplateCost(fixed, per_message)
        return self._template

    async def _templated_tokens(self, messages: list[Message]) -> int | None:
        base_url, key = self._resolve()
        try:
            rendered = await self._client.post(
                f"{base_url}/apply-template",
                json={"messages": messages},
                headers=_auth(key),
                timeout=30,
            )
            rendered.raise_for_status()
            response = await self._client.post(
                f"{base_url}/tokenize",
                json={"content": rendered.json()["prompt"], "add_special": True},
                headers=_auth(key),
                timeout=30,
            )
            response.raise_for_status()
            return len(response.json()["tokens"])
        except (httpx.HTTPError, KeyError, TypeError, ValueError):
            return None

    def _resolve(self) -> Endpoint:
        try:
            return self._target()
        except SeatError as exc:
            raise SeatFailure(str(exc)) from None


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


async def _close(response: httpx.Response, read_to_end: bool) -> None:
    """Close a streamed answer. One left unfinished also has its socket closed outright:
    httpcore marks a response closed before it closes the connection, so a cancellation that
    lands in between (a stop on top of a shutdown) would leave the socket open, and the engine
    would go on generating for nobody. Aborting a socket is immediate and cannot be cut short."""
    stream = response.extensions.get("network_stream")
    try:
        await response.aclose()
    finally:
        if not read_to_end and stream is not None:
            await stream.aclose()


async def _sse_data(response: httpx.Response) -> AsyncIterator[str]:
    """The `data:` payloads of a server-sent event stream, until `[DONE]`."""
    async for line in response.aiter_lines():
        if not line.startswith("data:"):
            continue  # comments (": ping"), event names and blank separators
        data = line[5:].strip()
        if data == "[DONE]":
            return
        if data:
            yield data


def _read_usage(chunk: dict[str, Any], usage: Usage) -> None:
    if reported := chunk.get("usage"):
        usage.prompt_tokens = int(reported.get("prompt_tokens") or 0)
        usage.completion_tokens = int(reported.get("completion_tokens") or 0)
    if timings := chunk.get("timings"):  # llama-server's own measurements
        usage.prompt_ms = float(timings.get("prompt_ms") or 0.0)
        usage.generation_ms = float(timings.get("predicted_ms") or 0.0)


def _message(error: object) -> str:
    """The words of an OpenAI-shaped `error` (an object with a message, or a string)."""
    found = error.get("message") if isinstance(error, dict) else error
    return str(found)[:500] if found else "no details"


def _error_text(body: bytes, status: int, *, remote: bool = False) -> str:
    """An error answer in words: its OpenAI-shaped `error`, else (from our own engines only)
    the start of the body. A remote's other bodies are never passed on: whoever asked the
    round reads this, and a seat must not become a way to read what some server says."""
    try:
        error = json.loads(body).get("error")
        message = _message(error) if error else None
    except (ValueError, AttributeError):
        message = None
    if message:
        return f"HTTP {status}: {message[:200] if remote else message}"
    if remote:
        return f"the remote seat failed (HTTP {status})"
    return f"HTTP {status}: {body[:200].decode(errors='replace') or 'no details'}"
