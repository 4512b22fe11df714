"""Every tunable value council has, declared once with its default and its range.

`config.toml` parsing, request validation (`/api` and `/v1`), the CLI's options and the page
(through `/api/council/defaults`) all read the ranges here, so a limit cannot drift between
them. A field's range travels in its dataclass metadata (`bounded`), where the config parser
and request validation find it without a second table.

The environment switches are declared and read here too (`Environment.read()`, nowhere else
reads `os.environ` for a setting), and `Settings.resolve(cli, env, toml)` applies the one
order of precedence, as uvicorn's `Config` does: the command line, then the environment, then
config.toml, then the default. Each resolved value remembers where it came from, so a message
about it can name the flag or the variable the user set.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from council.errors import ConfigError

N = TypeVar("N", int, float)
T = TypeVar("T")

DEFAULT_PORT = 8710
DEFAULT_LAN_PORT = 8711  # the HTTPS listener for phones (`council up --lan`)
CONTEXT_SIZE = 2048  # tokens of context a seat gets unless config.toml says otherwise
# Requests one engine answers at once, each in its own slot with the seat's whole ctx_size (a
# KV cache of slots x ctx_size). More wait in the engine's queue: they are never squeezed into
# a shared cache, where crowding made "context size exceeded" out of prompts that fit.
SLOTS = 2


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

    The first two count the requests that make the engines work or change something: every
    `/v1` request and every `POST`, `PUT`, `PATCH` and `DELETE` to `/api`, but the posts of a
    browser seat's answers, which `answer_posts_per_minute` counts. Over any limit a request
    gets `429` with `Retry-After`.
    """

    max_streams: int = bounded(4, 1, 1000)  # open at once
    requests_per_minute: int = bounded(120, 1, 100_000)
    # A browser seat's answer comes in many small posts: their own, larger budget.
    answer_posts_per_minute: int = bounded(1200, 1, 1_000_000)


# Seconds a pairing code lives: `council pair --ttl`, and `POST /api/devices/pair`'s `ttl`.
PAIRING_TTL = Range(30, 3600)
PAIRING_TTL_DEFAULT = 300
SEED = Range(0, 2**32 - 1)  # random seeds, as llama.cpp takes them


# --- where a value comes from -------------------------------------------------------------------

ENV_DATA = "COUNCIL_DATA"  # the data folder, when --data is not given
ENV_LLAMA_SERVER = "COUNCIL_LLAMA_SERVER"  # the engine, when --llama-server is not given
ENV_SEAT_ISOLATION = "COUNCIL_SEAT_ISOLATION"  # "off": /seat/ without COOP/COEP (a test switch)
ENV_HF_ENDPOINT = "HF_ENDPOINT"  # a Hugging Face mirror (huggingface_hub's own variable)
ENV_HF_TOKEN = "HF_TOKEN"  # noqa: S105 - the variable's name; the token is never logged or stored
HF_DEFAULT_ENDPOINT = "https://huggingface.co"
_OFF, _ON = {"off", "0", "no", "false"}, {"on", "1", "yes", "true"}


@dataclass(frozen=True, slots=True)
class Environment:
    """The environment variables council reads, read once and checked."""

    data: Path | None = None
    llama_server: Path | None = None
    seat_isolation: bool = True
    hf_endpoint: str = HF_DEFAULT_ENDPOINT
    hf_token: str | None = field(default=None, repr=False)

    @classmethod
    def read(cls, environ: Mapping[str, str] | None = None) -> Environment:
        environ = os.environ if environ is None else environ

        def path(name: str) -> Path | None:
            value = environ.get(name, "").strip()
            return Path(value).expanduser() if value else None

        isolation = environ.get(ENV_SEAT_ISOLATION, "on").strip().lower() or "on"
        if isolation not in _ON | _OFF:
            raise ConfigError(f"{ENV_SEAT_ISOLATION} is {isolation!r}: say on or off")
        endpoint = environ.get(ENV_HF_ENDPOINT, "").strip().rstrip("/") or HF_DEFAULT_ENDPOINT
        if not endpoint.startswith(("https://", "http://")):
            raise ConfigError(
                f"{ENV_HF_ENDPOINT} is {endpoint!r}: give a URL like {HF_DEFAULT_ENDPOINT}"
            )
        token = environ.get(ENV_HF_TOKEN, "").strip() or None
        return cls(path(ENV_DATA), path(ENV_LLAMA_SERVER), isolation in _ON, endpoint, token)


@dataclass(frozen=True, slots=True)
class Chosen(Generic[T]):
    """A resolved value and where it came from: a flag, a variable, "config.toml" or "default"."""

    value: T
    source: str

    @property
    def explicit(self) -> bool:
        """Set for this run (a flag or a variable), not kept in or defaulted by config.toml."""
        return self.source not in {"config.toml", "default"}


def choose(*layers: tuple[T | None, str], default: T) -> Chosen[T]:
    """The first layer that sets a value, in the order given; else the default."""
    for value, source in layers:
        if value is not None:
            return Chosen(value, source)
    return Chosen(default, "default")


def data_choice(cli: Path | None, env: Environment) -> Chosen[Path | None]:
    """The data folder: --data, then COUNCIL_DATA; None means the portable folder. It is chosen
    before config.toml is read (config.toml lives in it), so config.toml cannot set it."""
    return choose((cli, "--data"), (env.data, ENV_DATA), default=None)


def engine_choice(cli: Path | None, env: Environment) -> Chosen[Path | None]:
    """The engine: --llama-server, then COUNCIL_LLAMA_SERVER; None means search for one (the
    data folder, the project build, the PATH)."""
    return choose((cli, "--llama-server"), (env.llama_server, ENV_LLAMA_SERVER), default=None)


def port_choice(cli: int | None, toml: int) -> Chosen[int]:
    """The localhost port: --port (taken or refused), else config.toml's (the first free one
    from there)."""
    return choose(
        (cli, "--port"),
        (toml if toml != DEFAULT_PORT else None, "config.toml"),
        default=DEFAULT_PORT,
    )


class CommandLine(Protocol):
    """The options `council up` takes that the environment or config.toml can also set."""

    @property
    def port(self) -> int | None: ...
    @property
    def llama_server(self) -> Path | None: ...


class TomlSettings(Protocol):
    """What config.toml sets that the command line can override."""

    @property
    def port(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Settings:
    """The hub's settings after precedence: command line > environment > config.toml > default.

    The data folder is not among them: it is chosen first (`data_choice`), because config.toml
    is read from it.
    """

    llama_server: Chosen[Path | None]
    port: Chosen[int]
    seat_isolation: bool
    env: Environment = field(default_factory=Environment)  # HF_ENDPOINT and HF_TOKEN, for pulls

    @classmethod
    def resolve(cls, cli: CommandLine, env: Environment, toml: TomlSettings) -> Settings:
        return cls(
            llama_server=engine_choice(cli.llama_server, env),
            port=port_choice(cli.port, toml.port),
            seat_isolation=env.seat_isolation,
            env=env,
        )
