"""The hub's parts, made once and connected: `wire(ready)` → `Services`.

`Hub.startup()` checks everything that can fail and returns a `Ready`: the data folder, the
hub's copy of config.toml, the fleet of engines (not yet started), the bound listeners and the
database. Once the engines are spawned, `wire()` builds every service on top of that, each
with its final type, in one frozen `Services`, and `Hub.main_loop()` serves with it. Nothing
here is started or left half-made: a service that needs a background task gets it from the
main loop.

The web stack and the deliberation code are imported inside `wire()`, after the engines were
spawned, so they load while the models do (`council up` answers sooner).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from council.config import HubConfig, save_config
from council.datafolder import DataFolder
from council.engine.fleet import Fleet
from council.server.listeners import LanListener
from council.settings import Settings
from council.store.access import Store

if TYPE_CHECKING:
    from council.deliberation.registry import SeatRegistry
    from council.deliberation.service import CouncilService
    from council.models.digests import ModelFiles
    from council.pull.jobs import Pulls
    from council.server.api import ApiContext
    from council.server.devices_api import DevicesApi
    from council.server.gate import DeviceSessions
    from council.server.metrics import Metrics
    from council.server.openai_api import OpenAIApi
    from council.settings import RoundDefaults


@dataclass(slots=True)
class Ready:
    """What startup() has checked and prepared, ready to run. `config` is the hub's copy of
    config.toml: what the page changes is saved to the stick, then set here."""

    folder: DataFolder
    config: HubConfig
    fleet: Fleet
    listener: socket.socket
    db: Store  # council.db, queried off the event loop
    lan: LanListener | None
    settings: Settings  # the command line, the environment and config.toml, resolved once


@dataclass(frozen=True, slots=True)
class Services:
    seats: SeatRegistry
    council: CouncilService
    model_files: ModelFiles  # the digests behind /models/…
    api: ApiContext
    openai: OpenAIApi
    metrics: Metrics
    devices: DevicesApi  # the owner's routes, on the localhost app only
    sessions: DeviceSessions | None  # with --lan: each paired device's open requests
    pulls: Pulls  # the Models panel's downloads from Hugging Face

    async def aclose(self) -> None:
        """Stop hashing and pulling, end running rounds (stored as cancelled), let browser
        tabs go."""
        self.pulls.stop_all()
        self.model_files.stop()
        await self.council.stop_all()
        await self.seats.aclose()


def wire(ready: Ready, *, lan: bool) -> Services:
    from council.deliberation.registry import SeatKind, SeatRegistry
    from council.deliberation.service import CouncilService
    from council.models.digests import ModelFiles
    from council.pull.hf import HubSource
    from council.pull.jobs import Pulls
    from council.security.outbound import Outbound
    from council.server.api import ApiContext
    from council.server.devices_api import DevicesApi
    from council.server.gate import DeviceSessions
    from council.server.metrics import Metrics
    from council.server.openai_api import OpenAIApi
    from council.store.devices import list_devices

    def config_changed(config: HubConfig) -> None:
        ready.config = config

    def save_defaults(defaults: RoundDefaults) -> None:
        config = replace(ready.config, council=defaults)
        save_config(ready.folder, config)  # on the stick first, then live
        ready.config = config

    def paired() -> list[tuple[str, str]]:
        # Metrics are rendered on a worker thread, which may wait for the reader.
        return [(d.id, d.name) for d in ready.db.read_now(list_devices, include_revoked=False)]

    def own_ports() -> set[int]:  # a remote seat may never be this hub itself
        sockets = [ready.listener, *([ready.lan.socket] if ready.lan else [])]
        return {int(each.getsockname()[1]) for each in sockets}

    seats = SeatRegistry(
        ready.folder, lambda: ready.config, ready.fleet, config_changed, Outbound(own_ports)
    )
    council = CouncilService(ready.db, lambda: seats, lambda: ready.config.council)
    model_files = ModelFiles(ready.db, ready.folder.models)
    api = ApiContext(
        ready.db, council, seats, lambda: ready.config.council, save_defaults, model_files
    )
    sessions = DeviceSessions(lambda: ready.config.devices) if lan else None
    metrics = Metrics(seats.view, paired, sessions.counts if sessions else dict)
    # /v1 forwards a request to a seat's engine unchanged: the local seats are its models.
    openai = OpenAIApi(
        council,
        lambda: seats.names(SeatKind.LOCAL),
        ready.fleet.target,
        metrics,
        peer_names=seats.peers.names,  # and a paired hub's seats, through that hub's /v1
        peer_route=seats.peers.route,
    )

    def end_requests(device_id: str) -> None:  # a revoked phone's open requests end now
        if sessions is not None:
            sessions.revoke(device_id)

    def lan_url() -> str | None:
        return ready.lan.url if ready.lan else None

    devices = DevicesApi(ready.db, ready.folder, lan_url, end_requests)
    pulls = Pulls(ready.folder, HubSource(ready.settings.env), model_files.refresh_soon)
    return Services(seats, council, model_files, api, openai, metrics, devices, sessions, pulls)
