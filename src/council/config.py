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
from typing import TYPE_CHECKING, Any, TypeVar

import tomlkit
import tomlkit.exceptions

from council.atomicfile import atomic_write
from council.datafolder import DataFolder
from council.errors import ConfigError
from council.settings import (
    CONTEXT_SIZE,
    DEFAULT_PORT,
    SLOTS,
    DeviceLimits,
    Range,
    RoundDefaults,
    bounded,
    range_of,
)

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

MAX_SYSTEM_PROMPT = 4000  # characters: a seat's standing instructions, not a document
SEAT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True, slots=True)
class SeatConfig:
    name: str
    model: str
    ctx_size: int = CONTEXT_SIZE
    threads: int = 0  # 0: share the machine's cores between the seats
    enabled: bool = True
    extra_args: tuple[str, ...] = ()
    slots: int = bounded(SLOTS, 1, 16)  # requests answered at once, each with all of ctx_size
    # The seat's own sampling and system prompt (None / ""): they replace the round's for this
    # seat, so three seats of one model can be a careful one and a bold one.
    temperature: float | None = field(default=None, metadata={"range": Range(0.0, 2.0)})
    seed: int | None = field(default=None, metadata={"range": Range(0, 2**31 - 1)})
    system_prompt: str = ""
    # Paired workers (workers.toml) that hold some of the model's layers over llama.cpp's RPC
    # (rpc/): the engine gets `--rpc` with each one's tunnel; `--n-gpu-layers N` in extra_args
    # says how many layers go to them (all, by default).
    workers: tuple[str, ...] = ()
    # Chosen by council for a stick nobody has configured (defaults.py): such seats are
    # replaced when the stick's models change; a seat the person chose never is.
    generated: bool = False

    def model_path(self, folder: DataFolder) -> Path:
        return folder.models / self.model


Table = TypeVar("Table", bound="DataclassInstance")


@dataclass(frozen=True, slots=True)
class HubConfig:
    port: int = DEFAULT_PORT
    seats: tuple[SeatConfig, ...] = field(default_factory=tuple)
    council: RoundDefaults = field(default_factory=RoundDefaults)
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
    """Write `config` to config.toml. A file that exists is edited, not rewritten: the values
    are set in its parsed document (tomlkit, a format-preserving TOML library), so the user's
    comments, order and layout survive a change made on the page; a key the file leaves out is
    added only when its value differs from the default."""
    path = folder.config_file
    document, fresh = _document(path)
    _update(document, "hub", {"port": config.port}, {"port": DEFAULT_PORT}, fresh)
    _update(document, "council", _values(config.council), _values(RoundDefaults()), fresh)
    _update(document, "devices", _values(config.devices), _values(DeviceLimits()), fresh)
    _update_seats(document, config.seats)
    atomic_write(path, tomlkit.dumps(document))


HEADER = "council configuration. Model paths are relative to models/."


def _document(path: Path) -> tuple[tomlkit.TOMLDocument, bool]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        document = tomlkit.document()
        document.add(tomlkit.comment(HEADER))
        return document, True
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    try:
        return tomlkit.parse(text), False
    except tomlkit.exceptions.ParseError as exc:
        message = f"{path} is not valid TOML ({exc}): fix it before changing settings"
        raise ConfigError(message) from None


def _values(table: Any) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(table).items()}


def _update(
    document: tomlkit.TOMLDocument,
    key: str,
    values: dict[str, Any],
    defaults: dict[str, Any],
    fresh: bool,
) -> None:
    table = document.get(key)
    if table is None:
        table = tomlkit.table()
    _set_changed(table, values, defaults, fresh)
    if key not in document and (fresh or len(table) > 0):
        document[key] = table


def _set_changed(table: Any, values: dict[str, Any], defaults: dict[str, Any], fresh: bool) -> None:
    """Set `values` in a tomlkit table, touching only what changed (an untouched value keeps
    its comment and spelling)."""
    for name, value in values.items():
        if value is None:  # TOML has no null: an unset optional value is a key left out
            if name in table:
                del table[name]
            continue
        if name in table:
            if table[name] != value:
                table[name] = value
        elif fresh or value != defaults[name]:
            table[name] = value


def _update_seats(document: tomlkit.TOMLDocument, seats: tuple[SeatConfig, ...]) -> None:
    wanted = {seat.name: seat for seat in seats}
    default = _values(SeatConfig("", ""))
    entries = document.get("seats")
    if entries is None:
        entries = tomlkit.aot()
    kept = set()
    for index in reversed(range(len(entries))):
        name = entries[index].get("name")
        if name not in wanted or name in kept:
            del entries[index]
        else:
            kept.add(name)
            _set_changed(entries[index], _values(wanted[name]), default, fresh=False)
    for seat in seats:
        if seat.name not in kept:
            table = tomlkit.table()
            _set_changed(table, _values(seat), {**default, "name": None, "model": None}, False)
            if len(entries) > 0:
                entries[-1].add(tomlkit.nl())  # a blank line between seats, as people write them
            entries.append(table)
    if "seats" not in document and len(entries) > 0:
        document["seats"] = entries


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
    council = _parse_table(RoundDefaults, raw.get("council", {}), "[council]", path)
    devices = _parse_table(DeviceLimits, raw.get("devices", {}), "[devices]", path)
    return HubConfig(port=port, seats=seats, council=council, devices=devices)


def _parse_table(kind: type[Table], raw: Any, where: str, path: Path) -> Table:
    try:
        return typed_table(kind, raw, where)
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def typed_table(kind: type[Table], raw: Any, where: str) -> Table:
    """A TOML table (or a JSON object) onto a dataclass, each value checked against its field's
    type and range: nothing is coerced (`enabled = "false"` is an error, not True), and an
    unknown key is an error too, so a typo never silently falls back to a default. `where`
    names the table in the `ValueError`'s message."""
    if not isinstance(raw, dict):
        raise ValueError(f"{where} must be a table")
    fields = kind.__dataclass_fields__
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        known = ", ".join(fields)
        raise ValueError(f"{where} has an unknown key {unknown[0]!r} (known: {known})")
    values: dict[str, Any] = {}
    for name, spec in fields.items():
        if name not in raw:
            if spec.default is MISSING and spec.default_factory is MISSING:
                raise ValueError(f"{where} is missing {name!r}")
            continue
        value, expected = _checked(raw[name], str(spec.type))
        if value is _BAD:
            raise ValueError(f"{where}: {name} = {raw[name]!r} is not {expected}")
        allowed = range_of(spec)
        if allowed is not None and value not in allowed:
            raise ValueError(f"{where}: {name} = {raw[name]!r} must be {allowed.describe()}")
        values[name] = value
    return kind(**values)


_BAD = object()
_EXPECTED = {
    "str": "a string",
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "tuple[str, ...]": "a list of strings",
}


def _checked(value: Any, annotation: str) -> tuple[Any, str]:
    """`value` as the field's type (a TOML list becomes a tuple), or _BAD. An optional field
    (`float | None`) is unset by leaving its key out, so a value given is of the type."""
    annotation = annotation.removesuffix(" | None")
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
    if len(seat.system_prompt) > MAX_SYSTEM_PROMPT:
        raise ConfigError(
            f"{path}: seat {seat.name!r}: system_prompt is longer than {MAX_SYSTEM_PROMPT} "
            "characters"
        )
