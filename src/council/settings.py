"""Every tunable value council has, declared once with its default and its range.

`config.toml` parsing, request validation (`/api` and `/v1`), the CLI's options and the page
(through `/api/council/defaults`) all read the ranges here, so a limit cannot drift between
them. A field's range travels in its dataclass metadata (`bounded`), where the config parser
and request validation find it without a second table.
"""

from __future__ import annotations

from dataclasses import Field, dataclass, field, fields
from typing import Any, Generic, TypeVar

N = TypeVar("N", int, float)

DEFAULT_PORT = 8710
DEFAULT_LAN_PORT = 8711  # the HTTPS listener for phones (`council up --lan`)
CONTEXT_SIZE = 2048  # tokens of context a seat gets unless config.toml says otherwise


@dataclass(frozen=True, slots=True)
class Range(Generic[N]):
    """The closed interval a number setting must lie in."""

    low: N
    high: N

    def __contains__(self, value: object) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        return self.low <= value <= self.high

    def describe(self) -> str:
        def number(value: float) -> str:
            return f"{value:g}" if isinstance(value, float) else str(value)

        return f"from {number(self.low)} to {number(self.high)}"


def bounded(default: N, low: N, high: N) -> Any:
    """A dataclass field with a default and the range config.toml and requests are held to."""
    return field(default=default, metadata={"range": Range(low, high)})


def range_of(spec: Field[Any]) -> Range[Any] | None:
    found = spec.metadata.get("range")
    return found if isinstance(found, Range) else None


def ranges(kind: type[Any]) -> dict[str, Range[Any]]:
    """The bounded fields of a settings dataclass, by name."""
    return {spec.name: found for spec in fields(kind) if (found := range_of(spec)) is not None}


@dataclass(frozen=True, slots=True)
class RoundDefaults:
    """What a question gets when it does not say: `[council]` in config.toml."""

    mode: str = "synthesize"
    chair: str = ""  # empty: the first seat taking part
    seats: tuple[str, ...] = ()  # empty: every seat
    max_tokens: int = bounded(512, 1, 32768)
    temperature: float = bounded(0.7, 0.0, 2.0)
    stage_timeout: float = bounded(300.0, 1.0, 3600.0)
    exclude_self: bool = True
    layers: int = bounded(1, 1, 4)  # mixture-of-agents proposer layers
    extractor: str = "number"
    review_ties: bool = False


@dataclass(frozen=True, slots=True)
class DeviceLimits:
    """What one paired device may use on the LAN listener: `[devices]` in config.toml.

    Both count the requests that make the engines work: every `/v1` request and every `POST` to
    `/api`. Over either limit a request gets `429` with `Retry-After`.
    """

    max_streams: int = bounded(4, 1, 1000)  # open at once
    requests_per_minute: int = bounded(120, 1, 100_000)


# Seconds a pairing code lives: `council pair --ttl`, and `POST /api/devices/pair`'s `ttl`.
PAIRING_TTL = Range(30, 3600)
PAIRING_TTL_DEFAULT = 300
SEED = Range(0, 2**32 - 1)  # random seeds, as llama.cpp takes them
