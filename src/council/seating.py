"""`council seats`: the council's seats from the command line.

With a hub running on the stick, every change goes through it (its HTTP API, as the page's
Seats panel does), so it takes effect at once and the hub's copy of config.toml stays the one
that is saved. Without one, config.toml is edited in place: tomlkit keeps the person's comments
and layout (config.save_config), and the next `council up` starts what it says.

A model is named as `council models` names it (its path under models/, its file name, or its
folder) and must be a chat model on the stick: a base model has no chat template and would
answer a council's prompts with a continuation of them.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from typing import Any

from council.client import not_running, running_client
from council.config import SeatConfig, load_config, save_config, validate_seat
from council.datafolder import DataFolder, running_hub
from council.defaults import seat_name_for
from council.engine.fleet import estimates, plan_seats
from council.engine.memory import check_fits
from council.errors import BadRequest, ConfigError, HubNotRunning, NotFound
from council.models.catalog import ModelInfo
from council.models.manage import find
from council.remotes import load_remotes, save_remotes
from council.settings import CONTEXT_SIZE


@dataclass(frozen=True, slots=True)
class NewSeat:
    model: str  # as the person typed it: a path, a file name or a folder under models/
    name: str | None = None
    ctx_size: int = CONTEXT_SIZE
    temperature: float | None = None
    system_prompt: str = ""


@dataclass(frozen=True, slots=True)
class Outcome:
    live: bool  # True: the running hub made the change; False: config.toml was edited
    detail: dict[str, Any]


def chat_model(folder: DataFolder, name: str) -> ModelInfo:
    """The model `name` names on the stick, if a seat can use it."""
    info = find(folder.models, name).info
    if not info.valid:
        raise BadRequest(f"{info.path} cannot be loaded: {info.reason}")
    if not info.demo and not info.has_chat_template:
        raise BadRequest(
            f"{info.path} is a base model (it has no chat template): it cannot answer a "
            "council's questions; pull an instruct or chat version of it"
        )
    return info


def _live(folder: DataFolder) -> bool:
    record = running_hub(folder)
    return bool(record and isinstance(record.get("url"), str))


async def list_seats(folder: DataFolder) -> Outcome:
    """Every seat: from the running hub (with each one's state), else from the files."""
    if _live(folder):
        async with running_client(folder) as client:
            return Outcome(True, {"seats": await client.seats(disabled=True)})
    config = load_config(folder)
    rows: list[dict[str, Any]] = [
        {
            "name": seat.name,
            "kind": "local",
            "model": seat.model,
            "state": "enabled" if seat.enabled else "disabled",
            "ctx_size": seat.ctx_size,
        }
        for seat in config.seats
    ]
    rows += [
        {
            "name": remote.name,
            "kind": "remote",
            "model": remote.model,
            "state": "enabled" if remote.enabled else "disabled",
            "ctx_size": remote.ctx_size,
        }
        for remote in load_remotes(folder)
    ]
    return Outcome(False, {"seats": rows, "configured": folder.config_file.exists()})


async def find_seat(folder: DataFolder, name: str) -> dict[str, Any]:
    """One seat's row, as `list_seats` gives it; NotFound names the seats there are."""
    rows = (await list_seats(folder)).detail["seats"]
    for row in rows:
        if row["name"] == name:
            return dict(row)
    names = ", ".join(row["name"] for row in rows)
    raise NotFound(f"no seat {name!r}" + (f": the seats are {names}" if names else ""))


async def add_seat(folder: DataFolder, new: NewSeat) -> Outcome:
    info = chat_model(folder, new.model)
    if _live(folder):
        body = {
            "kind": "local",
            "model": info.path,
            "name": new.name,
            "ctx_size": new.ctx_size,
            "temperature": new.temperature,
            "system_prompt": new.system_prompt,
        }
        async with running_client(folder) as client:
            return Outcome(True, await client.add_seat(body))
    config = load_config(folder)
    taken = {seat.name for seat in config.seats} | {r.name for r in load_remotes(folder)}
    name = new.name or _free_name(seat_name_for(info.path), taken)
    if name in taken:
        raise BadRequest(f"there is already a seat called {name!r}")
    seat = SeatConfig(
        name,
        info.path,
        new.ctx_size,
        temperature=new.temperature,
        system_prompt=new.system_prompt,
    )
    try:
        validate_seat(seat)
    except ConfigError as exc:
        raise BadRequest(str(exc).removeprefix("config.toml: ")) from None
    seats = (*config.seats, seat)
    planned = next(p for p in plan_seats(folder, seats) if p.config.name == name)
    check_fits(estimates([planned]))  # `council up` checks them all together
    save_config(folder, replace(config, seats=seats))
    return Outcome(False, {"name": name, "model": info.path, "kind": "local"})


def _free_name(wanted: str, taken: set[str]) -> str:
    """`wanted`, or with the first free `-2`, `-3`… (as the hub names a model seated again)."""
    for number in itertools.count(1):
        name = wanted if number == 1 else f"{wanted[:60]}-{number}"
        if name not in taken:
            return name
    raise AssertionError("unreachable")  # pragma: no cover


def seat_kind(folder: DataFolder, name: str) -> str:
    """ "local" or "remote" for a seat the files hold; NotFound names the seats there are."""
    config = load_config(folder)
    if any(seat.name == name for seat in config.seats):
        return "local"
    remotes = load_remotes(folder)
    if any(remote.name == name for remote in remotes):
        return "remote"
    names = [seat.name for seat in config.seats] + [remote.name for remote in remotes]
    listed = f": the seats are {', '.join(names)}" if names else ": there are no seats"
    raise NotFound(f"no seat {name!r}{listed}")


async def remove_seat(folder: DataFolder, name: str) -> Outcome:
    if _live(folder):
        async with running_client(folder) as client:
            await client.remove_seat(name)
        return Outcome(True, {"name": name})
    if seat_kind(folder, name) == "local":
        config = load_config(folder)
        seats = tuple(seat for seat in config.seats if seat.name != name)
        save_config(folder, replace(config, seats=seats))
    else:
        save_remotes(folder, [r for r in load_remotes(folder) if r.name != name])
    return Outcome(False, {"name": name})


async def set_enabled(folder: DataFolder, name: str, enabled: bool) -> Outcome:
    if _live(folder):
        async with running_client(folder) as client:
            return Outcome(True, await client.change_seat(name, {"enabled": enabled}))
    if seat_kind(folder, name) == "local":
        config = load_config(folder)
        seats = tuple(
            replace(seat, enabled=enabled) if seat.name == name else seat for seat in config.seats
        )
        save_config(folder, replace(config, seats=seats))
    else:
        remotes = load_remotes(folder)
        save_remotes(
            folder, [replace(r, enabled=enabled) if r.name == name else r for r in remotes]
        )
    return Outcome(False, {"name": name, "enabled": enabled})


async def restart_seat(folder: DataFolder, name: str) -> Outcome:
    """A seat's engine runs only in a hub: without one there is nothing to restart."""
    if not _live(folder):
        raise HubNotRunning(f"{not_running(folder)} (a seat's engine starts with it)")
    async with running_client(folder) as client:
        return Outcome(True, await client.restart_seat(name))
