"""All the seats' engines together: plan them, check they fit, start, report, stop.

The fleet is where seat configuration meets the catalog: each enabled seat becomes one
EngineProcess, its thread count shares the machine's cores between seats (so a council whose
seats answer in parallel does not oversubscribe the CPU), and its memory is estimated before
any process exists.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import httpx

from council.config import SeatConfig
from council.datafolder import DataFolder
from council.engine.binary import EngineBinary
from council.engine.memory import SeatEstimate, check_fits, estimate, offloaded_fraction
from council.engine.process import (
    EngineProcess,
    EngineSpec,
    EventSink,
    SeatState,
    engine_headers,
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


EngineKey = tuple[str, int, tuple[str, ...], int, tuple[str, ...]]


def engine_key(seat: PlannedSeat) -> EngineKey:
    """Seats with equal keys run as slots of one engine: the same model file, the same context
    per slot, the same extra arguments, the same thread setting and the same workers."""
    config = seat.config
    return (config.model, seat.requested_context, config.extra_args, config.threads, config.workers)


def plan_seats(
    folder: DataFolder, seats: Sequence[SeatConfig], cpu_count: int | None = None
) -> list[PlannedSeat]:
    """Each seat with its model read and its threads chosen: the machine's cores are shared
    between the engines (not the seats: seats of one engine decode in one batch)."""
    cores = cpu_count or os.cpu_count() or 1
    read: dict[str, ModelInfo | None] = {}
    for seat in seats:
        if seat.model not in read:
            path = seat.model_path(folder)
            read[seat.model] = read_model(path, folder.models) if path.is_file() else None
    provisional = [PlannedSeat(seat, read[seat.model], seat.threads) for seat in seats]
    engines = {engine_key(seat) for seat in provisional if seat.model is not None}
    shared = max(1, cores // max(1, len(engines)))
    return [PlannedSeat(s.config, s.model, s.config.threads or shared) for s in provisional]


def groups(planned: Sequence[PlannedSeat]) -> list[list[PlannedSeat]]:
    """The seats that share an engine, in the order their first seat comes."""
    found: dict[EngineKey, list[PlannedSeat]] = {}
    for seat in planned:
        if seat.model is not None:
            found.setdefault(engine_key(seat), []).append(seat)
    return list(found.values())


def group_estimate(group: Sequence[PlannedSeat], *, here: bool = True) -> SeatEstimate:
    """One engine: its weights once, a KV cache for every slot of every seat in it. With
    workers, `here` is the share of the layers this machine keeps (the rest is theirs)."""
    first = group[0]
    assert first.model is not None  # noqa: S101 - groups hold seats with a model
    whole = estimate(
        ", ".join(seat.config.name for seat in group),
        first.model.size_bytes,
        first.model.kv_bytes_per_token,
        first.requested_context,
        sum(seat.config.slots for seat in group),
    )
    if not first.config.workers or not here:
        return whole
    kept = 1.0 - offloaded_fraction(first.config.extra_args, first.model.block_count)
    return replace(whole, weights=int(whole.weights * kept), kv_cache=int(whole.kv_cache * kept))


def worker_needs(planned: Sequence[PlannedSeat]) -> dict[str, list[tuple[str, int]]]:
    """What each worker must hold, seat by seat: the offloaded share of each engine's weights
    and KV cache, split evenly between the engine's workers."""
    needs: dict[str, list[tuple[str, int]]] = {}
    for group in groups(planned):
        first = group[0]
        if not first.config.workers or first.model is None:
            continue
        whole = group_estimate(group, here=False)
        share = offloaded_fraction(first.config.extra_args, first.model.block_count)
        each = int((whole.weights + whole.kv_cache) * share) // len(first.config.workers)
        for worker in first.config.workers:
            needs.setdefault(worker, []).append((whole.seat, each))
    return needs


def estimates(planned: Sequence[PlannedSeat]) -> list[SeatEstimate]:
    return [group_estimate(group) for group in groups(planned)]


def sharing_notes(planned: Sequence[PlannedSeat]) -> list[str]:
    """Why seats of one model file run in engines of their own, one line per model."""
    notes = []
    by_model: dict[str, list[list[PlannedSeat]]] = {}
    for group in groups(planned):
        by_model.setdefault(group[0].config.model, []).append(group)
    for model, found in by_model.items():
        if len(found) < 2:
            continue
        firsts = [group[0] for group in found]
        settings: dict[str, set[object]] = {
            "ctx_size": {seat.requested_context for seat in firsts},
            "extra_args": {seat.config.extra_args for seat in firsts},
            "threads": {seat.config.threads for seat in firsts},
        }
        differ = [what for what, values in settings.items() if len(values) > 1]
        names = " | ".join(", ".join(seat.config.name for seat in group) for group in found)
        notes.append(
            f"seats of models/{model} run in {len(found)} engines ({names}): their "
            f"{' and '.join(differ)} differ; make them equal to share one engine"
        )
    return notes


@dataclass(slots=True)
class _Engine:
    """One llama-server process and the seats it answers for, each seat with its own slots."""

    key: EngineKey
    capacity: int  # the slots the process has (--parallel)
    seats: dict[str, int] = field(default_factory=dict)  # seat name -> its slots
    process: EngineProcess | None = None
    task: asyncio.Task[None] | None = None

    @property
    def free_slots(self) -> int:
        return self.capacity - sum(self.seats.values())


@dataclass(slots=True)
class _Supervised:
    """One seat as the fleet knows it: the plan, and its engine (None when the model file is
    missing, with the reason)."""

    planned: PlannedSeat
    engine: _Engine | None
    missing: str | None = None


def _missing(seat: PlannedSeat) -> str:
    return f"model file not found: models/{seat.config.model}"


class Fleet:
    """Supervises the local seats' engine processes; which seats exist is the registry's
    business (deliberation/registry.py), how their engines are doing is this one's."""

    def __init__(
        self,
        folder: DataFolder,
        binary: EngineBinary,
        planned: Sequence[PlannedSeat],
        on_event: EventSink | None = None,
        rpc: Mapping[str, str] | None = None,
    ) -> None:
        self.folder = folder
        self.rpc = dict(rpc or {})  # worker name -> the loopback address of its tunnel
        self.binary = binary
        self.runtime_args = binary.runtime_args  # read once: the manifest is on the stick
        self._on_event = on_event or (lambda seat, kind, message: None)
        self._seats: dict[str, _Supervised] = {}
        self._engines: list[_Engine] = []
        self._started = False
        self.client = loopback_client()
        self.notes = sharing_notes(planned)
        engine_of = {
            seat.config.name: engine
            for group in groups(planned)
            for engine in (self._engine_for(group),)
            for seat in group
        }
        for seat in planned:  # in the config's order, which rounds follow
            name = seat.config.name
            engine = engine_of.get(name)
            self._seats[name] = _Supervised(seat, engine, None if engine else _missing(seat))

    @property
    def planned(self) -> list[PlannedSeat]:
        return [seat.planned for seat in self._seats.values()]

    @property
    def engines(self) -> dict[str, EngineProcess]:
        """Every engine process by its name (its first seat's)."""
        return {e.process.spec.name: e.process for e in self._engines if e.process is not None}

    def _engine_for(self, group: Sequence[PlannedSeat]) -> _Engine:
        first = group[0]
        slots = {seat.config.name: seat.config.slots for seat in group}
        engine = _Engine(engine_key(first), sum(slots.values()), slots)
        # Named for its first seat, which may be removed while the engine serves on; a seat of
        # that name added later must not take its name (or its log file).
        taken = set(self.engines)
        name = next(
            candidate
            for number in itertools.count(1)
            if (candidate := first.config.name if number == 1 else f"{first.config.name}~{number}")
            not in taken
        )

        def fan_out(_engine: str, kind: str, message: str) -> None:
            for seat in list(engine.seats):  # what happens to the engine happens to its seats
                self._on_event(seat, kind, message)

        spec = EngineSpec(
            name=name,
            binary=self.binary.path,
            model=first.config.model_path(self.folder),
            log=self.folder.logs / f"{name}.log",
            ctx_size=first.requested_context,
            slots=engine.capacity,
            threads=first.threads,
            extra_args=(*self.runtime_args, *self._rpc_args(first), *first.config.extra_args),
            origin=self.binary.source,
            memory_estimate=group_estimate(group).total,
        )
        engine.process = EngineProcess(spec, fan_out)
        self._engines.append(engine)
        return engine

    def _rpc_args(self, seat: PlannedSeat) -> tuple[str, ...]:
        workers = seat.config.workers
        if not workers:
            return ()
        missing = [name for name in workers if name not in self.rpc]
        if missing:
            raise SeatError(
                f"seat {seat.config.name} names worker(s) {', '.join(missing)} that this hub has "
                "no tunnel to: a seat with workers starts with the hub"
            )
        return ("--rpc", ",".join(self.rpc[name] for name in workers))

    def add(self, seat: PlannedSeat) -> None:
        """Seat one more while the hub runs (its memory was checked by the caller): in an
        engine of the same model and settings that has slots to spare (a removed seat's), else
        in an engine of its own; a running engine is never restarted for it."""
        name = seat.config.name
        if seat.model is None:
            self._seats[name] = _Supervised(seat, None, _missing(seat))
            return
        key = engine_key(seat)
        engine = next(
            (e for e in self._engines if e.key == key and e.free_slots >= seat.config.slots),
            None,
        )
        if engine is not None:
            engine.seats[name] = seat.config.slots
            self._seats[name] = _Supervised(seat, engine)
            return
        engine = self._engine_for([seat])
        self._seats[name] = _Supervised(seat, engine)
        if self._started:
            self._supervise(engine)

    async def remove(self, name: str) -> None:
        """Forget a seat; its engine stops when no other seat uses it (the others' answers go
        on undisturbed)."""
        seat = self._seats.pop(name, None)
        if seat is None or seat.engine is None:
            return
        engine = seat.engine
        engine.seats.pop(name, None)
        if engine.seats:
            return
        self._engines.remove(engine)
        if engine.process is not None:
            await engine.process.stop()
        if engine.task is not None:
            await settled(engine.task)

    async def restart(self, name: str) -> list[str]:
        """Stop the engine of local seat `name` and start a new process in its place (its
        crash count cleared); return the seats that share it, which restart with it."""
        seat = self._seats.get(name)
        if seat is None:
            raise SeatError(f"{name} is not a seat")
        engine = seat.engine
        if engine is None or engine.process is None:
            raise SeatError(seat.missing or f"{name} has no engine")
        await engine.process.stop()
        if engine.task is not None:
            await settled(engine.task)
        engine.process = engine.process.fresh()
        if self._started:
            self._supervise(engine)
        return list(engine.seats)

    def _supervise(self, engine: _Engine) -> None:
        assert engine.process is not None  # noqa: S101 - set by _engine_for
        name = f"engine:{engine.process.spec.name}"
        engine.task = asyncio.create_task(engine.process.supervise(self.client), name=name)

    def check_memory(self, available: int | None = None) -> None:
        check_fits(estimates(self.planned), available)

    def start(self) -> None:
        self._started = True
        for seat in self._seats.values():
            if seat.engine is None:
                self._on_event(seat.planned.config.name, "failed", seat.missing or "no engine")
        for engine in self._engines:
            self._supervise(engine)

    async def wait_spawned(self) -> None:
        await asyncio.gather(*(engine.spawned.wait() for engine in self.engines.values()))

    async def wait_settled(self) -> None:
        await asyncio.gather(*(engine.wait_settled() for engine in self.engines.values()))

    async def stop(self) -> None:
        await asyncio.gather(*(engine.stop() for engine in self.engines.values()))
        tasks = [engine.task for engine in self._engines if engine.task is not None]
        await settled(*tasks)
        await self.client.aclose()

    def seats(self) -> list[dict[str, object]]:
        """How each engine is doing: state, the reason it is not healthy, restarts."""
        return [self.row(name) for name in self._seats]

    def row(self, name: str) -> dict[str, object]:
        seat = self._seats[name]
        engine = seat.engine.process if seat.engine else None
        return {
            "name": name,
            "model": seat.planned.config.model,
            "state": engine.state.value if engine else SeatState.FAILED.value,
            "demo": seat.planned.demo,
            "reason": engine.reason if engine else seat.missing,
            "restarts": engine.restarts if engine else 0,
            "engine": engine.spec.name if engine else None,  # seats sharing one name one engine
        }

    def engine_facts(self, name: str) -> dict[str, object]:
        """Where a local seat's engine runs now: its process id and port (None while none
        runs), the seat's own slots, and the engine's, which seats sharing it share."""
        seat = self._seats[name]
        engine = seat.engine
        process = engine.process if engine else None
        running = process is not None and process.state in {SeatState.STARTING, SeatState.HEALTHY}
        return {
            "engine_pid": process.pid if running and process else None,
            "engine_port": process.port if running and process else None,
            "slots": seat.planned.config.slots,
            "engine_slots": engine.capacity if engine else 0,
        }

    async def busy_slots(self) -> dict[str, int | None]:
        """How many of each healthy engine's slots are answering now, by engine name, from
        llama-server's own `/slots` (None where it does not say within a second)."""

        async def busy(process: EngineProcess) -> int | None:
            try:
                response = await self.client.get(
                    f"{process.base_url}/slots",
                    headers=engine_headers(process.api_key, stream=False),
                    timeout=1.0,
                )
                response.raise_for_status()
                return sum(1 for slot in response.json() if slot.get("is_processing"))
            except (httpx.HTTPError, ValueError, TypeError, AttributeError):
                return None

        healthy = {
            name: process
            for name, process in self.engines.items()
            if process.state is SeatState.HEALTHY
        }
        counts = await asyncio.gather(*(busy(process) for process in healthy.values()))
        return dict(zip(healthy, counts, strict=True))

    def target(self, name: str) -> Endpoint:
        """Where seat `name` answers now; `SeatError` says why it cannot."""
        seat = self._seats.get(name)
        if seat is None:
            raise SeatError(f"{name} is not a seat")
        engine = seat.engine.process if seat.engine else None
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
