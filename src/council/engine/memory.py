"""Will these seats fit? An estimate made before anything is spawned.

A seat costs its weights (the GGUF's size: llama.cpp maps and touches all of them), its KV cache
(f16 keys and values for every token of its context, per layer and KV head), and a fixed
allowance for compute buffers and the process itself. Refusing up front, with the numbers, beats
a laptop that swaps itself to a standstill with three engines half-loaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import psutil

from council.errors import InsufficientMemory
from council.units import human_size

PROCESS_OVERHEAD = 160 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class SeatEstimate:
    seat: str
    weights: int
    kv_cache: int
    ctx_size: int
    slots: int = 1

    @property
    def total(self) -> int:
        return self.weights + self.kv_cache + PROCESS_OVERHEAD

    def describe(self) -> str:
        return (
            f"{self.seat} {human_size(self.total)} (weights {human_size(self.weights)} + "
            f"KV cache {human_size(self.kv_cache)} at ctx {self.ctx_size}{self._per_slot} + "
            f"{human_size(PROCESS_OVERHEAD)} runtime)"
        )

    @property
    def _per_slot(self) -> str:
        return f" x {self.slots} slots" if self.slots > 1 else ""


def estimate(
    seat: str, weights: int, kv_bytes_per_token: int | None, ctx_size: int, slots: int = 1
) -> SeatEstimate:
    """`ctx_size` is per slot: each of the engine's `slots` has a KV cache that size."""
    kv_cache = (kv_bytes_per_token or 0) * ctx_size * slots
    return SeatEstimate(seat, weights, kv_cache, ctx_size, slots)


OFFLOAD_FLAGS = ("--n-gpu-layers", "--gpu-layers", "-ngl")


def offloaded_fraction(extra_args: Sequence[str], layers: int | None) -> float:
    """The share of a model llama.cpp puts on its devices (here: RPC workers): `--n-gpu-layers N`
    of the model's layers, or all of them when it is not given (llama.cpp's default offloads
    every layer to the devices it has). `layers` unknown: all or nothing."""
    value = "all"
    for index, arg in enumerate(extra_args):
        if arg in OFFLOAD_FLAGS and index + 1 < len(extra_args):
            value = extra_args[index + 1]
        elif arg.startswith(tuple(f"{flag}=" for flag in OFFLOAD_FLAGS)):
            value = arg.split("=", 1)[1]
    try:
        count = int(value)
    except ValueError:
        return 1.0  # "all", "auto"
    if count < 0:
        return 1.0
    if not layers:
        return 1.0 if count else 0.0
    return min(count, layers) / layers


def available_memory() -> int:
    return int(psutil.virtual_memory().available)


def check_fits(estimates: Sequence[SeatEstimate], available: int | None = None) -> None:
    available = available_memory() if available is None else available
    needed = sum(item.total for item in estimates)
    if needed > available:
        seats = "; ".join(item.describe() for item in estimates)
        raise InsufficientMemory(
            f"the enabled seats need {human_size(needed)} but only {human_size(available)} of "
            f"RAM is available: {seats}. Disable a seat or lower its ctx_size in config.toml"
        )
