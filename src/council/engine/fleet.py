"""All the seats' engines together: plan them, check they fit, start, report, stop.

The fleet is where seat configuration meets the catalog: each enabled seat becomes one
EngineProcess, its thread count shares the machine's cores between seats (so a council whose
seats answer in parallel does not oversubscribe the CPU), and its memory is estimated before
any process exists.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from dataclasses import dataclass

from council.config import SeatConfig
from council.datafolder import DataFolder
from council.engine.binary import EngineBinary
from council.engine.memory import SeatEstimate, check_fits, estimate
from council.engine.process import (
    EngineProcess,
    EngineSpec,
    EventSink,
    SeatState,
    loopback_client,
)
from council.errors import SeatError
from council.models.catalog import ModelInfo, read_model
from council.settings import CONTEXT_SIZE
from council.tasks import settled
from council.types import Endpoint


@dataclass(frozen=True, slots=True)
class PlannedSeat:
    config: SeatConfig
    model: ModelInfo | None  # None: the model file is missing
    threads: int

    @property
    def demo(self) -> bool:
        return self.model is not None and self.model.demo

    @property
    def requested_context(self) -> int:
        """The context each of the engine's slots is asked for: config.toml's ctx_size, or
        (0) the model's trained context."""
        trained = self.model.context_length if self.model else None
        return self.config.ctx_size or trained or CONTEXT_SIZE

    @property
    def slot_context(self) -> int:
        """The context one request gets: llama-server caps a slot at the trained context."""
        trained = self.model.context_length if self.model else None
        return min(self.requested_context, trained) if trained else self.requested_context


def plan_seats(
    folder: DataFolder, seats: Sequence[SeatConfig], cpu_count: int | None = None
) -> list[PlannedSeat]:
    cores = cpu_count or os.cpu_count() or 1
    shared = max(1, cores // max(1, len(seats)))
    planned = []
    for seat in seats:
        path = seat.model_path(folder)
        model = read_model(path, folder.models) if path.is_file() else None
        planned.append(PlannedSeat(seat, model, seat.threads or shared))
    return planned


def estimates(planned: Sequence[PlannedSeat]) -> list[SeatEstimate]:
    return [
        estimate(
            seat.config.name,
            seat.model.size_bytes if seat.model else 0,
            seat.model.kv_bytes_per_token if seat.model else None,
            seat.requested_context,
            seat.config.slots,
        )
        for seat in planned
        if seat.model is not None
    ]


@dataclass(slots=True)
class _Supervised:
    """One seat as the fleet knows it: the plan, its engine (None when the model file is
    missing, with the reason), and the task supervising that engine once started."""

    planned: PlannedSeat
    engine: EngineProcess | None
    missing: str | None = None
    task: asyncio.Task[None] | None = None


class Fleet:
    """Supervises the local seats' engine processes; which seats exist is the registry's
    business (deliberation/registry.py), how their engines are doing is this one's."""

    def __init__(
        self,
        folder: DataFolder,
        binary: EngineBinary,
        planned: Sequence[PlannedSeat],
        on_event: EventSink | None = None,
    ) -> None:
        self.folder = folder
        self.binary = binary
        self.runtime_args = binary.runtime_args  # read once: the manifest is on the stick
        self._on_event = on_event or (lambda seat, kind, message: None)
        self._seats: dict[str, _Supervised] = {}
        self._started = False
        self.client = loopback_client()
        for seat in planned:
            self._plan(seat)

    @property
    def planned(self) -> list[PlannedSeat]:
        return [seat.planned for seat in self._seats.values()]

    @property
    def engines(self) -> dict[str, EngineProcess]:
        return {name: seat.engine for name, seat in self._seats.items() if seat.engine}

    def _plan(self, seat: PlannedSeat) -> None:
        name = seat.config.name
        if seat.model is None:
            missing = f"model file not found: models/{seat.config.model}"
            self._seats[name] = _Supervised(seat, None, missing)
            return
        spec = EngineSpec(
            name=name,
            binary=self.binary.path,
            model=seat.config.model_path(self.folder),
            log=self.folder.logs / f"{name}.log",
            ctx_size=seat.requested_context,
            slots=seat.config.slots,
            threads=seat.threads,
            extra_args=(*self.runtime_args, *seat.config.extra_args),
            origin=self.binary.source,
            memory_estimate=estimates([seat])[0].total,
        )
        self._seats[name] = _Supervised(seat, EngineProcess(spec, self._on_event))

    def add(self, seat: PlannedSeat) -> None:
        """Seat one more engine while the hub runs (its memory was checked by the caller)."""
        self._plan(seat)
        if self._started:
            self._supervise(self._seats[seat.config.name])

    async def remove(self, name: str) -> None:
        """Stop a seat's engine and forget the seat."""
        seat = self._seats.pop(name, None)
        if seat is None:
            return
        if seat.engine is not None:
            await seat.engine.stop()
        if seat.task is not None:
            await settled(seat.task)

    def _supervise(self, seat: _Supervised) -> None:
        if seat.engine is None:
            self._on_event(seat.planned.config.name, "failed", seat.missing or "no engine")
            return
        name = f"seat:{seat.planned.config.name}"
        seat.task = asyncio.create_task(seat.engine.supervise(self.client), name=name)

    def check_memory(self, available: int | None = None) -> None:
        check_fits(estimates(self.planned), available)

    def start(self) -> None:
        self._started = True
        for seat in self._seats.values():
            self._supervise(seat)

    async def wait_spawned(self) -> None:
        await asyncio.gather(*(engine.spawned.wait() for engine in self.engines.values()))

    async def wait_settled(self) -> None:
        await asyncio.gather(*(engine.wait_settled() for engine in self.engines.values()))

    async def stop(self) -> None:
        await asyncio.gather(*(engine.stop() for engine in self.engines.values()))
        tasks = [seat.task for seat in self._seats.values() if seat.task is not None]
        await settled(*tasks)
        await self.client.aclose()

    def seats(self) -> list[dict[str, object]]:
        """How each engine is doing: state, the reason it is not healthy, restarts."""
        return [self.row(name) for name in self._seats]

    def row(self, name: str) -> dict[str, object]:
        seat = self._seats[name]
        engine = seat.engine
        return {
            "name": name,
            "model": seat.planned.config.model,
            "state": engine.state.value if engine else SeatState.FAILED.value,
            "demo": seat.planned.demo,
            "reason": engine.reason if engine else seat.missing,
            "restarts": engine.restarts if engine else 0,
        }

    def target(self, name: str) -> Endpoint:
        """Where seat `name` answers now; `SeatError` says why it cannot."""
        seat = self._seats.get(name)
        if seat is None:
            raise SeatError(f"{name} is not a seat")
        engine = seat.engine
        if engine is None:
            raise SeatError(seat.missing or f"{name} has no engine")
        if engine.state is not SeatState.HEALTHY:
            why = f": {engine.reason}" if engine.reason else ""
            raise SeatError(f"{name} is {engine.state.value}{why}")
        return Endpoint(engine.base_url, engine.api_key)

    def status(self) -> str:
        """ok: every seat answers; starting: some are still loading; degraded: otherwise."""
        states = [row["state"] for row in self.seats()]
        if states and all(state == SeatState.HEALTHY for state in states):
            return "ok"
        if any(state == SeatState.STARTING for state in states):
            return "starting"
        return "degraded"
