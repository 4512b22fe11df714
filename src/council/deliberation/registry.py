"""Every seat the council can call on, by name, in one registry: local, remote and browser.

An entry holds the seat's kind, the live `Seat` a round talks to, and how to describe it; the
API, `/v1/models`, the CLI (through the API) and the page all read `view()`, one row shape for
every kind. Adding or removing a seat of any kind goes through `_add` and `_remove` here, so a
name is taken exactly once. The fleet (engine/fleet.py) only supervises the local seats'
engines; which seats exist is decided here.

Local seats read their engine's current port and per-run key at each request, so a restarted
engine is invisible here. Remote seats can be added, changed and removed while the hub runs;
each change is written to `remotes.toml` before it takes effect, as a local seat's is to
`config.toml` (through the hub's copy of it, never re-read from disk). Browser tabs that
joined the council (browser_seat.py) are members while their task stream is open, and are
never saved.
"""

from __future__ import annotations

import functools
import itertools
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

import httpx

from council.config import HubConfig, SeatConfig, save_config, validate_seat
from council.datafolder import DataFolder
from council.defaults import seat_name_for
from council.deliberation.browser_seat import BrowserSeat, BrowserSeats
from council.deliberation.peer_seats import PeerSeats
from council.deliberation.seats import HttpSeat, Seat, Style
from council.engine.fleet import Fleet, PlannedSeat, estimates, plan_seats
from council.engine.memory import check_fits
from council.errors import BadRequest, ConfigError, NotFound, SeatError
from council.models.catalog import ModelInfo, scan
from council.peers import load_peers
from council.remotes import RemoteSeatConfig, from_request, load_remotes, save_remotes, validate
from council.security.outbound import Outbound, guarded_client
from council.types import Endpoint

log = logging.getLogger("council")


class SeatKind(StrEnum):
    LOCAL = "local"
    REMOTE = "remote"
    PEER = "peer"  # a seat of another hub this one paired with (peer_seats.py)
    BROWSER = "browser"


# Every row of `view()` has these keys, whatever the kind; a kind adds its own after them.
ROW: dict[str, Any] = dict.fromkeys(
    (
        "name",
        "kind",
        "model",
        "state",
        "reason",
        "ctx_size",
        "size_bytes",
        "quantization",
        "parameters",
    ),
) | {"demo": False, "restarts": 0, "from_device": False}
ORDER = (SeatKind.LOCAL, SeatKind.REMOTE, SeatKind.PEER, SeatKind.BROWSER)
# The states of a row whose seat takes prompts now: a healthy engine, an enabled remote seat,
# a browser tab whose model is loaded.
TAKES_PROMPTS = frozenset({"healthy", "ready"})


@dataclass(slots=True)
class Entry:
    kind: SeatKind
    seat: Seat
    describe: Callable[[], dict[str, Any]]  # the kind's fields of its row, read when viewed


class SeatRegistry(Mapping[str, Seat]):
    """Every seat by name: local, then remote, then browser tabs, each in the order they came
    (a round's default seats and chair follow this order)."""

    def __init__(
        self,
        folder: DataFolder,
        config: Callable[[], HubConfig],
        fleet: Fleet,
        on_config: Callable[[HubConfig], None] = lambda config: None,
        outbound: Outbound | None = None,
    ) -> None:
        self.folder = folder
        self.fleet = fleet
        self._config = config
        self._on_config = on_config
        # Where remote seats may connect; without one (tests of the registry alone) no ports
        # are the hub's own, and private addresses still need the seat's allow_private.
        self.outbound = outbound or Outbound(lambda: ())
        self._clients: dict[bool, httpx.AsyncClient] = {}
        self._entries: dict[str, Entry] = {}
        self.remotes: dict[str, RemoteSeatConfig] = {}
        self.browser = BrowserSeats()
        for planned in fleet.planned:
            self._add(planned.config.name, self._local_entry(planned))
        for remote in load_remotes(folder):
            self._add_remote(remote)
        try:
            peers = load_peers(folder)
        except ConfigError as exc:  # the hub serves on; the peers' seats stay out
            log.warning("%s: no peer's seats join the council", exc)
            peers = []
        self.peers = PeerSeats(peers, self._join_peer, self._leave_peer)

    # --- the registry -------------------------------------------------------------------------

    def __getitem__(self, name: str) -> Seat:
        return self._entries[name].seat

    def __iter__(self) -> Iterator[str]:
        return iter(self._ordered())

    def __len__(self) -> int:
        return len(self._entries)

    def kind(self, name: str) -> SeatKind | None:
        entry = self._entries.get(name)
        return entry.kind if entry else None

    def names(self, kind: SeatKind) -> list[str]:
        return [name for name, entry in self._entries.items() if entry.kind is kind]

    def _ordered(self) -> dict[str, Entry]:
        return {n: e for kind in ORDER for n, e in self._entries.items() if e.kind is kind}

    def view(self) -> list[dict[str, Any]]:
        """One row per seat, the same keys for every kind (plus the kind's own), never a token."""
        return [
            {**ROW, **entry.describe(), "name": name, "kind": entry.kind.value}
            for name, entry in self._ordered().items()
        ]

    def _add(self, name: str, entry: Entry) -> None:
        if name in self._entries:
            raise BadRequest(f"there is already a seat called {name!r}")
        self._entries[name] = entry

    def _remove(self, name: str) -> Entry:
        return self._entries.pop(name)

    # --- local seats ----------------------------------------------------------------------------

    def _local_entry(self, planned: PlannedSeat) -> Entry:
        name, model = planned.config.name, planned.model
        context = planned.slot_context if model else planned.config.ctx_size or None
        target = functools.partial(self.fleet.target, name)
        config = planned.config
        style = Style(config.temperature, config.seed, config.system_prompt)
        seat = HttpSeat(
            name,
            "local",
            target,
            self.fleet.client,
            model=name,
            ctx_size=context,
            tokenize=True,
            style=style,
        )

        def describe() -> dict[str, Any]:
            return {
                **self.fleet.row(name),
                "ctx_size": context,
                "size_bytes": model.size_bytes if model else None,
                "quantization": model.quantization if model else None,
                "parameters": model.parameters if model else None,
                "base_model": bool(model and not model.demo and not model.has_chat_template),
                "temperature": config.temperature,
                "seed": config.seed,
                "has_system_prompt": bool(config.system_prompt),  # the words stay in config.toml
            }

        return Entry(SeatKind.LOCAL, seat, describe)

    def add_local(
        self, body: dict[str, Any], catalog: list[ModelInfo] | None = None
    ) -> dict[str, Any]:
        """Seat a model from the stick's catalog (`catalog`: scanned already, off the event
        loop); its engine starts at once."""
        model = str(body.get("model") or "")
        ctx_size = body.get("ctx_size") or 0
        if not isinstance(ctx_size, int) or isinstance(ctx_size, bool):
            raise BadRequest("'ctx_size' must be a whole number")
        seat = SeatConfig(
            str(body.get("name") or self._free_name(seat_name_for(model))),
            model,
            ctx_size,
            temperature=body.get("temperature"),
            seed=body.get("seed"),
            system_prompt=str(body.get("system_prompt") or ""),
        )
        try:
            validate_seat(seat)
        except ConfigError as exc:
            raise BadRequest(str(exc).removeprefix("config.toml: ")) from None
        if seat.name in self:
            raise BadRequest(f"there is already a seat called {seat.name!r}")
        found = scan(self.folder.models) if catalog is None else catalog
        info = next((m for m in found if m.path == seat.model), None)
        if info is None:
            raise NotFound(f"no model {seat.model!r} in models/: see GET /api/models")
        if not info.valid:
            raise BadRequest(f"{seat.model} cannot be loaded: {info.reason}")
        config = self._config()
        seats = (*config.seats, seat)
        planned = plan_seats(self.folder, [s for s in seats if s.enabled])[-1]
        check_fits(estimates([planned]))
        config = replace(config, seats=seats)
        save_config(self.folder, config)  # on the stick first, then live
        self.fleet.add(planned)
        self._add(seat.name, self._local_entry(planned))
        self._on_config(config)
        return {"name": seat.name, "model": seat.model, "kind": SeatKind.LOCAL.value}

    def _free_name(self, wanted: str) -> str:
        """`wanted`, or with the first free `-2`, `-3`…: the same model may be seated again."""
        for number in itertools.count(1):
            name = wanted if number == 1 else f"{wanted[:60]}-{number}"
            if name not in self._entries:
                return name
        raise AssertionError("unreachable")  # pragma: no cover

    async def remove_local(self, name: str) -> None:
        """Remove a local seat, enabled (its engine stops unless another seat shares it) or
        disabled (only its entry in config.toml goes)."""
        config = self._config()
        if self.kind(name) is not SeatKind.LOCAL and name not in self._disabled(config):
            raise NotFound(f"no local seat {name!r}")
        config = replace(config, seats=tuple(s for s in config.seats if s.name != name))
        save_config(self.folder, config)
        if self.kind(name) is SeatKind.LOCAL:
            self._remove(name)
            await self.fleet.remove(name)
        self._on_config(config)

    def _disabled(self, config: HubConfig) -> dict[str, SeatConfig]:
        return {seat.name: seat for seat in config.seats if not seat.enabled}

    def is_local(self, name: str) -> bool:
        """A local seat, seated now or disabled in config.toml."""
        return self.kind(name) is SeatKind.LOCAL or name in self._disabled(self._config())

    def disabled(self) -> list[dict[str, Any]]:
        """The local seats config.toml keeps switched off: not in the council, no engine."""
        return [
            {"name": seat.name, "kind": SeatKind.LOCAL.value, "model": seat.model}
            | {"state": "disabled", "enabled": False}
            for seat in self._disabled(self._config()).values()
        ]

    async def set_local_enabled(self, name: str, enabled: bool) -> dict[str, Any]:
        """Switch a local seat on (planned, its memory checked, its engine started) or off (its
        engine stopped, its entry kept in config.toml with `enabled = false`)."""
        config = self._config()
        seat = next((s for s in config.seats if s.name == name), None)
        if seat is None:
            raise NotFound(f"no local seat {name!r}")
        answer = {"name": name, "kind": SeatKind.LOCAL.value, "enabled": enabled}
        if seat.enabled is enabled:
            return answer
        seats = tuple(replace(s, enabled=enabled) if s.name == name else s for s in config.seats)
        config = replace(config, seats=seats)
        if enabled:
            if name in self._entries:
                raise BadRequest(f"there is already a seat called {name!r}")
            planned = next(
                p for p in plan_seats(self.folder, config.enabled_seats) if p.config.name == name
            )
            check_fits(estimates([planned]))
            save_config(self.folder, config)
            self.fleet.add(planned)
            self._add(name, self._local_entry(planned))
        else:
            save_config(self.folder, config)
            self._remove(name)
            await self.fleet.remove(name)
        self._on_config(config)
        return answer

    async def restart(self, name: str) -> dict[str, Any]:
        """Start a local seat's engine afresh; seats sharing the engine restart with it."""
        if self.kind(name) is not SeatKind.LOCAL:
            if name in self:
                raise BadRequest(f"{name} is a {self.kind(name)} seat: it has no engine here")
            raise NotFound(f"no local seat {name!r}")
        return {"name": name, "seats": await self.fleet.restart(name)}

    # --- remote seats -------------------------------------------------------------------------

    def client(self, *, allow_private: bool) -> httpx.AsyncClient:
        """Remote endpoints' own clients (real TLS checks; each connection's address checked),
        one for seats that may reach private addresses and one for those that may not, so no
        pooled connection crosses from one to the other. Made on first use: building a TLS
        context costs tens of milliseconds at start-up."""
        if allow_private not in self._clients:
            self._clients[allow_private] = guarded_client(
                self.outbound, allow_private=allow_private
            )
        return self._clients[allow_private]

    def _check_address(self, remote: RemoteSeatConfig) -> None:
        reason = self.outbound.check_url(remote.url, allow_private=remote.allow_private)
        if reason is not None:
            raise BadRequest(f"{remote.url}: {reason}")

    def _add_remote(self, remote: RemoteSeatConfig) -> None:
        def target() -> Endpoint:
            if not remote.enabled:
                raise SeatError(f"{remote.name} is disabled")
            return Endpoint(remote.url, remote.token)

        def describe() -> dict[str, Any]:
            state = "ready" if remote.enabled else "disabled"
            return {**remote.public(), "state": state, "ctx_size": remote.ctx_size or None}

        seat = HttpSeat(
            remote.name,
            "remote",
            target,
            self.client(allow_private=remote.allow_private),
            model=remote.model,
            ctx_size=remote.ctx_size or None,
        )
        self._add(remote.name, Entry(SeatKind.REMOTE, seat, describe))
        self.remotes[remote.name] = remote

    def add_remote(self, body: dict[str, Any]) -> dict[str, Any]:
        remote = from_request(body)
        validate(remote, set(self))
        self._check_address(remote)
        self._save_remotes({**self.remotes, remote.name: remote})
        self._add_remote(remote)
        return remote.public()

    def update_remote(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        current = self._remote(name)
        if body.get("name", name) != name:
            raise BadRequest("a seat cannot be renamed; remove it and add it again")
        remote = from_request(body, current)
        validate(remote, set(self) - {name})
        self._check_address(remote)
        self._save_remotes({**self.remotes, name: remote})
        self._remove(name)
        self._add_remote(remote)
        return remote.public()

    def remove_remote(self, name: str) -> None:
        self._remote(name)
        self._save_remotes({key: value for key, value in self.remotes.items() if key != name})
        self._remove(name)
        del self.remotes[name]

    def _remote(self, name: str) -> RemoteSeatConfig:
        if self.kind(name) is SeatKind.LOCAL:
            raise BadRequest(f"{name} is a local seat: its model and options live in config.toml")
        if name not in self.remotes:
            raise NotFound(f"no seat {name!r}")
        return self.remotes[name]

    def _save_remotes(self, remotes: dict[str, RemoteSeatConfig]) -> None:
        save_remotes(self.folder, list(remotes.values()))  # on the stick first, then live

    # --- peers' seats ------------------------------------------------------------------------

    def _join_peer(self, name: str, seat: Seat, describe: Callable[[], dict[str, Any]]) -> None:
        self._add(name, Entry(SeatKind.PEER, seat, describe))

    def _leave_peer(self, name: str) -> None:
        if self.kind(name) is SeatKind.PEER:
            self._remove(name)

    # --- browser tabs -------------------------------------------------------------------------

    def join(self, seat: BrowserSeat) -> None:
        """A tab's task stream opened: it is a member of the council until `leave`."""
        self._add(seat.name, Entry(SeatKind.BROWSER, seat, seat.describe))

    def leave(self, seat: BrowserSeat) -> None:
        """The tab went away: its seat leaves, its tasks fail."""
        entry = self._entries.get(seat.name)
        if entry is not None and entry.seat is seat:
            self._remove(seat.name)
        self.browser.remove(seat)

    async def aclose(self) -> None:
        for name in self.names(SeatKind.BROWSER):
            self._remove(name)
        self.browser.close_all()
        for client in self._clients.values():
            await client.aclose()
        await self.peers.aclose()
