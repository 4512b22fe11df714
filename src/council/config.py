"""`config.toml` in the data folder: the hub's settings and its seats.

A seat is a name, a model file (relative to `models/`) and engine options. The file is written
atomically (temp file, fsync, rename) because a stick can be pulled out at any moment, and model
paths are checked to stay inside `models/` so the folder never refers outside itself.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import MISSING, asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

import tomli_w

from council.atomicfile import atomic_write
from council.datafolder import DataFolder
from council.errors import ConfigError

DEFAULT_PORT = 8710
DEFAULT_LAN_PORT = 8711  # the HTTPS listener for phones (`council up --lan`)
SEAT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True, slots=True)
class SeatConfig:
    name: str
    model: str
    ctx_size: int = 2048
    threads: int = 0  # 0: share the machine's cores between the seats
    enabled: bool = True
    extra_args: tuple[str, ...] = ()

    def model_path(self, folder: DataFolder) -> Path:
        return folder.models / self.model


@dataclass(frozen=True, slots=True)
class CouncilDefaults:
    """What a question gets when it does not say: `[council]` in config.toml."""

    mode: str = "synthesize"
    chair: str = ""  # empty: the first seat taking part
    seats: tuple[str, ...] = ()  # empty: every seat
    max_tokens: int = 512
    temperature: float = 0.7
    stage_timeout: float = 300.0
    exclude_self: bool = True
    layers: int = 1
    extractor: str = "number"
    review_ties: bool = False


@dataclass(frozen=True, slots=True)
class DeviceLimits:
    """What one paired device may use on the LAN listener: `[devices]` in config.toml.

    Both count the requests that make the engines work: every `/v1` request and every `POST` to
    `/api`. Over either limit a request gets `429` with `Retry-After`.
    """

    max_streams: int = 4  # open at once
    requests_per_minute: int = 120


Table = TypeVar("Table", CouncilDefaults, DeviceLimits, SeatConfig)


@dataclass(frozen=True, slots=True)
class HubConfig:
    port: int = DEFAULT_PORT
    seats: tuple[SeatConfig, ...] = field(default_factory=tuple)
    council: CouncilDefaults = field(default_factory=CouncilDefaults)
    devices: DeviceLimits = field(default_factory=DeviceLimits)

    @property
    def enabled_seats(self) -> tuple[SeatConfig, ...]:
        return tuple(seat for seat in self.seats if seat.enabled)


def load_config(folder: DataFolder) -> HubConfig:
    path = folder.config_file
    if not path.exists():
        return HubConfig()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    return _parse(raw, path)


def save_config(folder: DataFolder, config: HubConfig) -> None:
    document: dict[str, Any] = {
        "hub": {"port": config.port},
        "council": {**asdict(config.council), "seats": list(config.council.seats)},
        "devices": asdict(config.devices),
        "seats": [{**asdict(seat), "extra_args": list(seat.extra_args)} for seat in config.seats],
    }
    text = "# council configuration. Model paths are relative to models/.\n" + tomli_w.dumps(
        document
    )
    atomic_write(folder.config_file, text)


def _parse(raw: dict[str, Any], path: Path) -> HubConfig:
    hub = raw.get("hub", {})
    port = hub.get("port", DEFAULT_PORT)
    if not isinstance(port, int) or not 0 < port < 65536:
        raise ConfigError(f"{path}: hub.port must be a port number, got {port!r}")
    seats = tuple(_parse_seat(item, path) for item in raw.get("seats", []))
    names = [seat.name for seat in seats]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ConfigError(f"{path}: seat names must be unique, repeated: {', '.join(duplicates)}")
    council = _parse_table(CouncilDefaults, raw.get("council", {}), "[council]", path)
    devices = _parse_table(DeviceLimits, raw.get("devices", {}), "[devices]", path)
    if devices.max_streams < 1 or devices.requests_per_minute < 1:
        raise ConfigError(f"{path}: [devices] limits must be at least 1")
    return HubConfig(port=port, seats=seats, council=council, devices=devices)


def _parse_table(kind: type[Table], raw: Any, where: str, path: Path) -> Table:
    """A TOML table onto a dataclass, each value checked against its field's type: nothing is
    coerced (`enabled = "false"` is an error, not True), and an unknown key is an error too,
    so a typo never silently falls back to a default. `where` names the table in messages."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: {where} must be a table")
    fields = kind.__dataclass_fields__
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(f"{path}: {where} has an unknown key {unknown[0]!r} "
                          f"(known: {', '.join(fields)})")  # fmt: skip
    values: dict[str, Any] = {}
    for name, spec in fields.items():
        if name not in raw:
            if spec.default is MISSING and spec.default_factory is MISSING:
                raise ConfigError(f"{path}: {where} is missing {name!r}")
            continue
        value, expected = _checked(raw[name], str(spec.type))
        if value is _BAD:
            raise ConfigError(f"{path}: {where}: {name} = {raw[name]!r} is not {expected}")
        values[name] = value
    return kind(**values)


_BAD = object()
_EXPECTED = {"str": "a string", "int": "a whole number", "float": "a number",
             "bool": "true or false", "tuple[str, ...]": "a list of strings"}  # fmt: skip


def _checked(value: Any, annotation: str) -> tuple[Any, str]:
    """`value` as the field's type (a TOML list becomes a tuple), or _BAD."""
    expected = _EXPECTED[annotation]
    if annotation == "tuple[str, ...]":
        ok = isinstance(value, list) and all(isinstance(item, str) for item in value)
        return (tuple(value) if ok else _BAD), expected
    if annotation == "float":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return (float(value) if ok else _BAD), expected
    kind = {"str": str, "int": int, "bool": bool}[annotation]
    ok = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
    return (value if ok else _BAD), expected


def _parse_seat(item: Any, path: Path) -> SeatConfig:
    if not isinstance(item, dict):
        raise ConfigError(f"{path}: each [[seats]] entry must be a table")
    name = item.get("name")
    where = f"seat {name!r}" if isinstance(name, str) else "a [[seats]] entry"
    seat = _parse_table(SeatConfig, item, where, path)
    validate_seat(seat, path)
    return seat


def validate_seat(seat: SeatConfig, path: Path | str = "config.toml") -> None:
    if not SEAT_NAME.match(seat.name):
        raise ConfigError(
            f"{path}: seat name {seat.name!r} must be 1-64 letters, digits, '.', '_' or '-'"
        )
    model = PurePosixPath(seat.model)
    if model.is_absolute() or ".." in model.parts or "\\" in seat.model or not seat.model:
        raise ConfigError(
            f"{path}: seat {seat.name!r}: model must be a path inside models/, got {seat.model!r}"
        )
    if seat.ctx_size < 0 or seat.threads < 0:
        raise ConfigError(f"{path}: seat {seat.name!r}: ctx_size and threads must be >= 0")
