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
from council.models.catalog import ModelInfo, read_model


@dataclass(frozen=True, slots=True)
class PlannedSeat:
    config: SeatConfig
    model: ModelInfo | None  # None: the model file is missing
    threads: int

    @property
    def demo(self) -> bool:
        return self.model is not None and self.model.demo


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
            seat.config.ctx_size or (seat.model.context_length or 0 if seat.model else 0),
        )
        for seat in planned
        if seat.model is not None
    ]


class Fleet:
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
        self.planned: list[PlannedSeat] = []
        self._on_event = on_event or (lambda seat, kind, message: None)
        self.engines: dict[str, EngineProcess] = {}
        self._missing: dict[str, str] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._started = False
        self.client = loopback_client()
        for seat in planned:
            self._plan(seat)

    def _plan(self, seat: PlannedSeat) -> None:
        self.planned.append(seat)
        name = seat.config.name
        if seat.model is None:
            self._missing[name] = f"model file not found: models/{seat.config.model}"
            return
        spec = EngineSpec(
            name=name,
            binary=self.binary.path,
            model=seat.config.model_path(self.folder),
            log=self.folder.logs / f"{name}.log",
            ctx_size=seat.config.ctx_size,
            threads=seat.threads,
            extra_args=(*self.runtime_args, *seat.config.extra_args),
            origin=self.binary.source,
            memory_estimate=estimates([seat])[0].total,
        )
        self.engines[name] = EngineProcess(spec, self._on_event)

    def add(self, seat: PlannedSeat) -> None:
        """Seat one more engine while the hub runs (its memory was checked by the caller)."""
        self._plan(seat)
        if self._started and seat.config.name in self.engines:
            self._supervise(seat.config.name)

    async def remove(self, name: str) -> None:
        """Stop a seat's engine and forget the seat."""
        engine = self.engines.pop(name, None)
        if engine is not None:
            await engine.stop()
        if task := self._tasks.pop(name, None):
            await asyncio.gather(task, return_exceptions=True)
        self._missing.pop(name, None)
        self.planned = [seat for seat in self.planned if seat.config.name != name]

    def _supervise(self, name: str) -> None:
        engine = self.engines[name]
        self._tasks[name] = asyncio.create_task(engine.supervise(self.client), name=f"seat:{name}")

    def check_memory(self, available: int | None = None) -> None:
        check_fits(estimates(self.planned), available)

    def start(self) -> None:
        self._started = True
        for name, reason in self._missing.items():
            self._on_event(name, "failed", reason)
        for name in self.engines:
            self._supervise(name)

    async def wait_spawned(self) -> None:
        await asyncio.gather(*(engine.spawned.wait() for engine in self.engines.values()))

    async def wait_settled(self) -> None:
        await asyncio.gather(*(engine.wait_settled() for engine in self.engines.values()))

    async def stop(self) -> None:
        await asyncio.gather(*(engine.stop() for engine in self.engines.values()))
        if self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        await self.client.aclose()

    def seats(self) -> list[dict[str, object]]:
        rows: list[dict[str, object]] = []
        for seat in self.planned:
            name = seat.config.name
            engine = self.engines.get(name)
            rows.append(
                {
                    "name": name,
                    "model": seat.config.model,
                    "state": engine.state.value if engine else SeatState.FAILED.value,
                    "demo": seat.demo,
                    "reason": engine.reason if engine else self._missing.get(name),
                    "restarts": engine.restarts if engine else 0,
                }
            )
        return rows

    def target(self, name: str) -> tuple[str, str] | str:
        """Where seat `name` answers now (URL and per-run key), or why it cannot."""
        engine = self.engines.get(name)
        if engine is None:
            return self._missing.get(name, f"{name} is not a seat")
        if engine.state is not SeatState.HEALTHY:
            why = f": {engine.reason}" if engine.reason else ""
            return f"{name} is {engine.state.value}{why}"
        return engine.base_url, engine.api_key

    def status(self) -> str:
        """ok: every seat answers; starting: some are still loading; degraded: otherwise."""
        states = [row["state"] for row in self.seats()]
        if states and all(state == SeatState.HEALTHY for state in states):
            return "ok"
        if any(state == SeatState.STARTING for state in states):
            return "starting"
        return "degraded"
