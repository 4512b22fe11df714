"""The hub's seats: its own engines and its remote seats, all as `Seat`s.

Local seats read their engine's current port and per-run key at each request, so a restarted
engine is invisible here. Remote seats can be added, changed and removed while the hub runs;
each change is written to `remotes.toml` before it takes effect. Browser tabs that joined the
council (browser_seat.py) are members while their task stream is open, and are never saved.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from typing import Any

import httpx

from council.config import HubConfig, SeatConfig, load_config, save_config, validate_seat
from council.datafolder import DataFolder
from council.defaults import seat_name_for
from council.deliberation.browser_seat import BrowserSeats
from council.deliberation.seats import HttpSeat, Seat
from council.engine.fleet import Fleet, estimates, plan_seats
from council.engine.memory import check_fits
from council.errors import BadRequest, ConfigError, NotFound
from council.models.catalog import scan
from council.remotes import (
    RemoteSeatConfig,
    from_request,
    load_remotes,
    save_remotes,
    validate,
)


def local_seats(config: HubConfig, fleet: Fleet, only: str | None = None) -> dict[str, HttpSeat]:
    seats = {}
    for planned in fleet.planned:
        seat = planned.config
        if only is not None and seat.name != only:
            continue
        trained = planned.model.context_length if planned.model else None
        # llama-server caps a slot's context at what the model was trained for.
        configured = seat.ctx_size or trained
        context = min(configured, trained) if configured and trained else configured
        seats[seat.name] = HttpSeat(
            seat.name,
            "local",
            functools.partial(fleet.target, seat.name),
            fleet.client,
            model=seat.name,
            ctx_size=context,
            tokenize=True,
        )
    return seats


def remote_seat(remote: RemoteSeatConfig, client: httpx.AsyncClient) -> HttpSeat:
    def target() -> tuple[str, str] | str:
        return (remote.url, remote.token) if remote.enabled else f"{remote.name} is disabled"

    return HttpSeat(
        remote.name, "remote", target, client, model=remote.model, ctx_size=remote.ctx_size or None
    )


class Roster(Mapping[str, Seat]):
    """Every seat by name: local, then remote, then browser tabs, in a stable order."""

    def __init__(
        self,
        folder: DataFolder,
        config: HubConfig,
        fleet: Fleet,
        on_config: Callable[[HubConfig], None] = lambda config: None,
    ) -> None:
        self.folder = folder
        self.fleet = fleet
        self._on_config = on_config
        self.local = local_seats(config, fleet)
        self._client: httpx.AsyncClient | None = None
        self.remotes = {remote.name: remote for remote in load_remotes(folder)}
        self._remote_seats = {name: remote_seat(r, self.client) for name, r in self.remotes.items()}
        self.browser = BrowserSeats()

    @property
    def client(self) -> httpx.AsyncClient:
        """Remote endpoints' own client (real TLS checks, the user's proxy settings), made on
        first use: building its TLS context costs tens of milliseconds at start-up."""
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=httpx.Timeout(30.0, read=None))
        return self._client

    def __getitem__(self, name: str) -> Seat:
        if name in self.local:
            return self.local[name]
        if name in self._remote_seats:
            return self._remote_seats[name]
        for seat in self.browser.members():
            if seat.name == name:
                return seat
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        yield from self.local
        yield from self._remote_seats
        yield from [seat.name for seat in self.browser.members()]

    def __len__(self) -> int:
        return len(self.local) + len(self._remote_seats) + len(list(self.browser.members()))

    def describe(self) -> list[dict[str, Any]]:
        models = {seat.config.name: seat.model for seat in self.fleet.planned}
        rows: list[dict[str, Any]] = []
        for row in self.fleet.seats():
            name = str(row["name"])
            model = models.get(name)
            rows.append(
                {
                    **row,
                    "kind": "local",
                    "ctx_size": self.local[name].ctx_size,
                    "size_bytes": model.size_bytes if model else None,
                    "quantization": model.quantization if model else None,
                    "parameters": model.parameters if model else None,
                }
            )
        for remote in self.remotes.values():
            state = "ready" if remote.enabled else "disabled"
            rows.append(
                {
                    **remote.public(),
                    "kind": "remote",
                    "state": state,
                    "demo": False,
                    "ctx_size": remote.ctx_size or None,
                }
            )
        rows.extend(seat.describe() for seat in self.browser.members())
        return rows

    def add_remote(self, body: dict[str, Any]) -> dict[str, Any]:
        remote = from_request(body)
        validate(remote, set(self))
        self._apply({**self.remotes, remote.name: remote})
        return remote.public()

    def update_remote(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        current = self._remote(name)
        if body.get("name", name) != name:
            raise BadRequest("a seat cannot be renamed; remove it and add it again")
        remote = from_request(body, current)
        validate(remote, set(self) - {name})
        self._apply({**self.remotes, name: remote})
        return remote.public()

    def remove_remote(self, name: str) -> None:
        self._remote(name)
        self._apply({key: value for key, value in self.remotes.items() if key != name})

    def add_local(self, body: dict[str, Any]) -> dict[str, Any]:
        """Seat a model from the stick's catalog; its engine starts at once."""
        model = str(body.get("model") or "")
        try:
            seat = SeatConfig(
                name=str(body.get("name") or seat_name_for(model)),
                model=model,
                ctx_size=int(body.get("ctx_size") or 0),
            )
        except (TypeError, ValueError):
            raise BadRequest("'ctx_size' must be a whole number") from None
        try:
            validate_seat(seat)
        except ConfigError as exc:
            raise BadRequest(str(exc).removeprefix("config.toml: ")) from None
        if seat.name in self:
            raise BadRequest(f"there is already a seat called {seat.name!r}")
        info = next((m for m in scan(self.folder.models) if m.path == seat.model), None)
        if info is None:
            raise NotFound(f"no model {seat.model!r} in models/: see GET /api/models")
        if not info.valid:
            raise BadRequest(f"{seat.model} cannot be loaded: {info.reason}")
        config = load_config(self.folder)
        seats = (*config.seats, seat)
        planned = plan_seats(self.folder, [s for s in seats if s.enabled])[-1]
        check_fits(estimates([planned]))
        config = replace(config, seats=seats)
        save_config(self.folder, config)  # on the stick first, then live
        self.fleet.add(planned)
        self.local.update(local_seats(config, self.fleet, only=seat.name))
        self._on_config(config)
        return {"name": seat.name, "model": seat.model, "kind": "local"}

    async def remove_local(self, name: str) -> None:
        if name not in self.local:
            raise NotFound(f"no local seat {name!r}")
        config = load_config(self.folder)
        config = replace(config, seats=tuple(s for s in config.seats if s.name != name))
        save_config(self.folder, config)
        del self.local[name]
        await self.fleet.remove(name)
        self._on_config(config)

    async def aclose(self) -> None:
        self.browser.close_all()
        if self._client is not None:
            await self._client.aclose()

    def _remote(self, name: str) -> RemoteSeatConfig:
        if name in self.local:
            raise BadRequest(f"{name} is a local seat: its model and options live in config.toml")
        if name not in self.remotes:
            raise NotFound(f"no seat {name!r}")
        return self.remotes[name]

    def _apply(self, remotes: dict[str, RemoteSeatConfig]) -> None:
        save_remotes(self.folder, list(remotes.values()))  # on the stick first, then live
        self.remotes = remotes
        self._remote_seats = {name: remote_seat(r, self.client) for name, r in remotes.items()}
