"""`council up`: the hub process, in the shape of uvicorn's Server (startup, main loop, shutdown).

Startup checks everything that can be checked before a child exists (data folder, engine binary,
seats, memory, the HTTP port), so a mistake costs a one-line error and no cleanup. Engines start
first and the web server second, so the page is up while models load and `/api/health` says
"starting" rather than refusing connections.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import signal
import sys
import time
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass
from logging.handlers import QueueHandler, QueueListener, RotatingFileHandler
from pathlib import Path
from typing import TYPE_CHECKING

from council import __version__
from council.config import HubConfig
from council.datafolder import DataFolder, HubLock, resolve_data_folder
from council.defaults import GUEST_MODELS_PLACE, ensure_seats, seats_hint, stick_report
from council.engine import orphans
from council.engine.binary import EngineBinary
from council.engine.firstuse import checked_engine
from council.engine.fleet import Fleet, plan_seats, worker_needs
from council.errors import ConfigError, CouncilError
from council.models.catalog import scan
from council.remotes import load_remotes
from council.rpc.tunnel import Tunnel, open_tunnels, start_tunnels
from council.rpc.worker import build_commit
from council.server.listeners import (
    LanListener,
    bind_listener,
    open_lan_listener,
)
from council.settings import DEFAULT_LAN_PORT, Environment, Settings
from council.store import conversations
from council.store import db as store
from council.store.access import Store
from council.timestamps import stamp
from council.wiring import Ready

if TYPE_CHECKING:
    import uvicorn

    from council.server.app import OwnerDoor
    from council.server.peers_api import PeersApi
    from council.server.status_api import StatusApi
    from council.wiring import Services

log = logging.getLogger("council")
SAID = "said"  # a log record's attribute: the line was printed for the person already
# A seat's row in /api/health, with the value a row that lacks the key gets.
HEALTH_ROW: dict[str, object] = {
    "name": None,
    "kind": "local",
    "model": None,
    "state": None,
    "reason": None,
    "demo": False,
    "restarts": 0,
}


@dataclass(frozen=True, slots=True)
class UpOptions:
    data: Path | None = None
    port: int | None = None
    host: str = "127.0.0.1"
    llama_server: Path | None = None
    open_browser: bool = True
    terminal_log: bool = True  # False when a CLI command runs a hub for its own duration
    lan: bool = False  # also serve phones over HTTPS on the LAN
    lan_host: str = "0.0.0.0"  # noqa: S104 - every interface is the point of --lan
    lan_port: int = DEFAULT_LAN_PORT
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # Only the laptop's owner passes the localhost listener (security/owner.py); off, every
    # account on the laptop can use the hub.
    owner_auth: bool = True
    # SIGINT and SIGTERM stop the hub. Off for a hub a command runs inside its own loop that
    # handles Ctrl-C itself (`council chat`: Ctrl-C stops a round, not the hub).
    handle_signals: bool = True


class Hub:
    def __init__(self, options: UpOptions, say: Callable[[str], None] = print) -> None:
        self.options = options
        self._say_to = say
        self.ready: Ready | None = None
        self.services: Services | None = None  # once wire() has run
        self.url = ""
        self._stop = asyncio.Event()
        self._serving = asyncio.Event()
        self._lock: HubLock | None = None
        self._background: list[asyncio.Task[None]] = []
        self._tunnels: dict[str, Tunnel] = {}  # a worker's loopback port, by its name
        self.started_at = ""  # when startup() began, for `council status`
        self.started = 0.0

    def say(self, line: str, *, secret: bool = False) -> None:
        """A line for the person who started the hub, and for logs/council.log (where
        `council logs` and a detached hub's owner read it), not twice on the terminal. A
        `secret` line (the one-time login link) is never written to the log."""
        self._say_to(line)
        if line.strip() and not secret:
            log.info("%s", line.strip(), extra={SAID: True})

    def health(self) -> dict[str, object]:
        """`/api/health`: the engines' overall status and every seat's state. Paired devices
        read it too, so a row holds a seat's state, never a remote seat's URL."""
        if self.ready is None:
            return {"status": "starting", "seats": [], "stick": None}
        folder, config, fleet = self.ready.folder, self.ready.config, self.ready.fleet
        demo_hint = seats_hint(config, str(folder.models))
        guest_hint = seats_hint(config, GUEST_MODELS_PLACE)
        # Before wire(), only the engines exist; after it, the registry has every kind.
        rows = self.services.seats.view() if self.services else fleet.seats()
        seats = [{key: row.get(key, HEALTH_ROW[key]) for key in HEALTH_ROW} for row in rows]
        stick = self.ready.db.problem()  # writes failing or hanging: answers may not be kept
        status = "degraded" if stick else fleet.status()
        return {
            "status": status,
            "seats": seats,
            "demo_hint": demo_hint,
            "guest_hint": guest_hint,
            "stick": stick,
        }

    def request_shutdown(self) -> None:
        self._stop.set()

    async def wait_serving(self, task: asyncio.Task[None]) -> None:
        """Wait until the hub serves and every seat has settled; re-raise if it failed to start."""
        serving = asyncio.create_task(self._serving.wait())
        await asyncio.wait({serving, task}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            serving.cancel()
            await task  # raises the start-up error
            raise RuntimeError("the hub stopped before it served")
        assert self.ready is not None  # noqa: S101 - serving implies started
        await self.ready.fleet.wait_settled()

    async def serve(self) -> None:
        ready = self.startup()
        try:
            await self.main_loop(ready)
        finally:
            await self.shutdown(ready)

    def startup(self) -> Ready:
        """Every check that can fail, before any child process exists."""
        env = Environment.read()
        folder = resolve_data_folder(self.options.data, env)
        folder.prepare()
        self._lock = HubLock(folder)
        left_behind = self._lock.acquire()
        self.started_at, self.started = stamp(), time.monotonic()
        self._lock.record(started_at=self.started_at, version=__version__)
        db = None
        try:
            configure_logging(folder.logs, terminal=self.options.terminal_log)
            if stopped := orphans.reap(left_behind):
                log.warning("stopped engines a previous council left running: %s", stopped)
            config = ensure_seats(folder)
            check_round_defaults(folder, config)
            db = Store(folder.database)  # a damaged store is said before any engine
            settings = Settings.resolve(self.options, env, config)
            binary = checked_engine(folder, settings.llama_server, self.say)
            self._tunnels = open_tunnels(folder, config.enabled_seats)  # ports for `--rpc`
            rpc = {name: tunnel.address for name, tunnel in self._tunnels.items()}
            planned = plan_seats(folder, config.enabled_seats)
            fleet = Fleet(folder, binary, planned, self._on_event, rpc)
            fleet.check_memory()
            listener = bind_listener(self.options.host, settings.port)
            lan = self._open_lan(folder) if self.options.lan else None
            if interrupted := db.submit(conversations.mark_interrupted).result():
                log.warning("%d answer(s) were interrupted when the last hub stopped", interrupted)
        except BaseException:
            if db is not None:
                db.close()
            for tunnel in self._tunnels.values():
                tunnel.socket.close()
            self._lock.release()
            stop_logging()
            raise
        self._announce(folder, config, binary, fleet)
        self.ready = Ready(folder, config, fleet, listener, db, lan, settings)
        return self.ready

    async def main_loop(self, ready: Ready) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM) if self.options.handle_signals else ():
            try:
                loop.add_signal_handler(sig, self.request_shutdown)
            except NotImplementedError:  # Windows: no loop signal handlers
                signal.signal(sig, lambda *_: loop.call_soon_threadsafe(self.request_shutdown))
        started = time.monotonic()
        if self._tunnels:  # workers' builds are checked, then their tunnels served
            commit = await asyncio.to_thread(build_commit, ready.fleet.binary)
            await start_tunnels(self._tunnels, commit, worker_needs(ready.fleet.planned))
        ready.fleet.start()
        await ready.fleet.wait_spawned()
        # The web stack is imported while the engines load their models, not before.
        from council.wiring import wire

        services = self.services = wire(ready, lan=self.options.lan)
        try:
            await self._serve(ready, services, started)
        finally:
            self.services = None
            await services.aclose()  # rounds end as "cancelled", their streams close

    async def _owner_door(self, ready: Ready, port: int) -> OwnerDoor | None:
        """The owner's credentials for the localhost listener, or None with a warning. The
        token file is read (or written) off the loop: the engines' supervisors run already."""
        from council.security.owner import OwnerAccess, cookie_name, load_or_create
        from council.server.app import OwnerDoor

        if not self.options.owner_auth:
            self.say(
                "warning: --no-owner-auth: every account on this laptop can use this hub, "
                "read its conversations and change its seats"
            )
            return None
        token, private = await asyncio.to_thread(load_or_create, ready.folder)
        if not private:
            self.say(
                f"warning: {ready.folder.root} cannot keep owner-only files (a FAT or exFAT "
                "stick?): other accounts on this laptop may read owner.token"
            )
        return OwnerDoor(OwnerAccess(token), cookie_name(port), lambda: self.url)

    async def _serve(self, ready: Ready, services: Services, started: float) -> None:
        from council.server.app import create_app
        from council.server.evals_api import EvalsApi
        from council.server.guard import local_hosts
        from council.server.listeners import uvicorn_server
        from council.server.peers_api import PeersApi
        from council.server.pulls_api import PullsApi
        from council.server.status_api import HubFacts, StatusApi

        host, port = ready.listener.getsockname()[:2]
        facts = HubFacts(
            self.started_at,
            self.started,
            str(ready.folder.root),
            lambda: self.url,
            lambda: ready.lan.url if ready.lan else None,
            self.health,
        )
        sessions = services.sessions
        status = StatusApi(
            facts,
            ready.db,
            seats=services.seats,
            council=services.council,
            pulls=services.pulls,
            open_requests=sessions.counts if sessions else dict,
        )
        peers = PeersApi(ready.folder, services.seats.peers)
        door = await self._owner_door(ready, port)
        local_app = create_app(
            self,
            services.api,
            services.openai,
            allowed_hosts=local_hosts(host, port),
            metrics=services.metrics,
            devices=services.devices,
            pulls=PullsApi(services.pulls),
            evals=EvalsApi(ready.db),
            status=status,
            peers=peers,
            isolated=ready.settings.seat_isolation,
            owner=door,
        )
        server = uvicorn_server(local_app, signals=self.options.handle_signals)
        serving = asyncio.create_task(server.serve(sockets=[ready.listener]))
        servers = [(server, serving)]
        self.url = f"http://{host}:{port}"
        if self._lock is not None:
            self._lock.record(url=self.url)  # how `council ask` finds this hub
        self.say(f"council is serving {self.url}  (Ctrl-C stops it)")
        page = self.url
        if door is not None:
            page = f"{self.url}/login#code={door.access.login_code()}"
            self.say(f"log in to the page (a one-time link): {page}", secret=True)
        if ready.lan is not None:
            servers.append(self._serve_lan(ready, services, status, peers))
        self._serving.set()
        services.model_files.refresh_soon()  # hashes what the cache lacks; /models grows
        if self.options.open_browser and has_display():
            await asyncio.to_thread(webbrowser.open, page)
        self._background.append(asyncio.create_task(ready.db.watch()))  # recovers a stick
        self._background.append(asyncio.create_task(services.pulls.run()))
        self._background.append(asyncio.create_task(services.seats.peers.run()))
        for job in services.pulls.resume_pending():
            self.say(f"resuming the pull of {job.file or job.repo} from {job.repo}")
        settled = asyncio.create_task(self._report_when_settled(ready.fleet, started))
        stop = asyncio.create_task(self._stop.wait())
        await asyncio.wait(
            {*(task for _, task in servers), stop}, return_when=asyncio.FIRST_COMPLETED
        )
        settled.cancel()
        for task in self._background:
            task.cancel()
        await services.council.stop_all()  # before the servers close, so streams end cleanly
        services.pulls.stop_all()
        for each, _ in servers:
            each.should_exit = True
        await asyncio.gather(*(task for _, task in servers))
        stop.cancel()

    def _open_lan(self, folder: DataFolder) -> LanListener:
        options = self.options
        return open_lan_listener(
            folder, options.lan_host, options.lan_port, options.tls_cert, options.tls_key
        )

    def _serve_lan(
        self, ready: Ready, services: Services, status: StatusApi, peers: PeersApi
    ) -> tuple[uvicorn.Server, asyncio.Task[None]]:
        from council.security.pairing import AttemptLimiter
        from council.server.app import create_app
        from council.server.evals_api import EvalsApi
        from council.server.lan import LanContext
        from council.server.listeners import keep_certificate_fresh, uvicorn_server
        from council.server.pulls_api import PullsApi

        lan, db, sessions = ready.lan, ready.db, services.sessions
        assert lan is not None  # noqa: S101 - the caller checked
        assert sessions is not None  # noqa: S101 - wire() makes them with --lan
        context = LanContext(db, lan.ca, AttemptLimiter(), ready.fleet.status, sessions)
        app = create_app(
            self,
            services.api,
            services.openai,
            lan=context,
            metrics=services.metrics,
            devices=services.devices,  # each of its routes answers a device 403
            pulls=PullsApi(services.pulls),  # so do these: a phone never fills the stick
            evals=EvalsApi(ready.db),
            status=status,  # these too: the owner's, a 403 to a device
            peers=peers,
            isolated=ready.settings.seat_isolation,
        )
        server = uvicorn_server(app, lan.context, signals=self.options.handle_signals)
        task = asyncio.create_task(server.serve(sockets=[lan.socket]))
        self._background += [
            asyncio.create_task(keep_certificate_fresh(lan, ready.folder)),
            asyncio.create_task(sessions.watch_revocations(db)),
        ]
        if self._lock is not None:
            self._lock.record(lan_url=lan.url)  # where `council pair` sends phones
        fingerprint = f" · CA fingerprint {lan.ca.fingerprint}" if lan.ca else ""
        self.say(f"phones: {lan.url} (pair with `council pair`){fingerprint}")
        return server, task

    async def shutdown(self, ready: Ready) -> None:
        self.say("stopping seats…")
        await ready.fleet.stop()  # SIGTERM each engine's process group, SIGKILL after 5 s
        for tunnel in self._tunnels.values():
            await tunnel.close()
        await asyncio.to_thread(ready.db.close)  # the queued writes first; checkpoints the WAL
        if self._lock is not None:
            self._lock.release()  # the next hub may start on this folder
        stop_logging()
        self.say("council stopped")

    async def _report_when_settled(self, fleet: Fleet, started: float) -> None:
        await fleet.wait_settled()
        seats = fleet.seats()
        healthy = sum(1 for seat in seats if seat["state"] == "healthy")
        elapsed = time.monotonic() - started
        self.say(f"{healthy} of {len(seats)} seats healthy after {elapsed:.2f} s")
        for seat in seats:
            if seat["state"] == "failed":
                self.say(f"  seat {seat['name']} failed: {seat['reason']}")

    def _on_event(self, seat: str, kind: str, message: str) -> None:
        level = logging.WARNING if kind in {"crashed", "failed"} else logging.INFO
        log.log(level, "seat %s %s: %s", seat, kind, message)
        if self.ready is not None:
            self.ready.db.submit(store.record_engine_event, seat, kind, message)
        if self._lock is not None and self.ready is not None:
            pids = [e.pid for e in self.ready.fleet.engines.values() if e.pid is not None]
            self._lock.record(engines=[item for pid in pids if (item := orphans.describe(pid))])

    def _announce(
        self, folder: DataFolder, config: HubConfig, binary: EngineBinary, fleet: Fleet
    ) -> None:
        self.say(f"council {__version__}  data: {folder.root}")
        self.say(f"engine: {binary.path} ({binary.source})")
        engines = len(fleet.engines)
        processes = f" ({engines} engine{'s' if engines != 1 else ''})" if engines else ""
        names = ", ".join(seat.name for seat in config.enabled_seats) or "none"
        self.say(f"seats: {names}{processes}")
        for note in fleet.notes:
            self.say(f"  {note}")
        for line in stick_report(config, scan(folder.models)):
            self.say(f"  {line}")
        if hint := seats_hint(config, str(folder.models)):
            self.say(f"\n  {hint}\n")


def has_display() -> bool:
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


_log_writer: QueueListener | None = None


def configure_logging(logs: Path, *, terminal: bool = True) -> None:
    """council's own lines go to logs/council.log and the terminal; libraries stay quiet.

    The lines are written by a thread of their own (the standard library's QueueHandler and
    QueueListener): a write to a stalled stick must not stop the event loop that logged it."""
    global _log_writer  # noqa: PLW0603 - one writer thread per process, replaced on restart
    logs.mkdir(parents=True, exist_ok=True)
    stop_logging()
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    handlers: list[logging.Handler] = [
        RotatingFileHandler(
            logs / "council.log", maxBytes=4 * 1024 * 1024, backupCount=2, encoding="utf-8"
        )
    ]
    if terminal:
        stream = logging.StreamHandler(sys.stderr)
        stream.addFilter(lambda record: not getattr(record, SAID, False))  # printed already
        handlers.append(stream)
    for handler in handlers:
        handler.setFormatter(formatter)
    lines: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    _log_writer = QueueListener(lines, *handlers, respect_handler_level=True)
    _log_writer.start()
    log.addHandler(QueueHandler(lines))
    log.setLevel(logging.INFO)
    log.propagate = False


def stop_logging() -> None:
    """Write out the lines still queued and close the log file."""
    global _log_writer  # noqa: PLW0603
    log.handlers.clear()
    if _log_writer is not None:
        _log_writer.stop()
        for handler in _log_writer.handlers:
            handler.close()
        _log_writer = None


def check_round_defaults(folder: DataFolder, config: HubConfig) -> None:
    """`[council]` is checked once, by `council up`, through the validation every question
    goes through: a typo in a seat's name or an out-of-range value is one line now, not an
    error on every question later. Any configured seat may be named (a disabled one too, so
    turning a seat off on the page never stops the next start)."""
    from council.deliberation.service import round_options

    names = [seat.name for seat in config.seats] + [r.name for r in load_remotes(folder)]
    try:
        round_options(config.council, {}, names)
    except CouncilError as exc:
        raise ConfigError(f"{folder.config_file}: [council]: {exc}") from None
