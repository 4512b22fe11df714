"""Peers' seats in the council: every seat another hub offers this one (peers.py), named
`<peer>/<seat>`.

Each peer is asked for its seats (`/v1/models`) when the hub starts, then every `INTERVAL`
seconds while it answers and every `RETRY` seconds while it does not. A seat the peer no longer
offers leaves the council; a new one joins. A peer that does not answer keeps its seats in the
roster, "unreachable" with the reason, so a round that names one fails that seat's prompt with
the reason at once (rounds ask `unavailable()` first) rather than waiting on a dead address; its
next answer brings them back. A seat's requests go to the peer's own `/v1/chat/completions`, as
a paired device's would, over TLS checked against the peer's pinned CA alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from council.deliberation.seats import HttpSeat, Seat
from council.errors import CouncilError, SeatError
from council.peers import PeerConfig, peer_seats
from council.timestamps import stamp
from council.types import Endpoint

log = logging.getLogger("council")
INTERVAL = 15.0  # seconds between asking a peer that answers for its seats
RETRY = 2.0  # while it does not answer: it comes back soon after it does

Join = Callable[[str, Seat, Callable[[], dict[str, Any]]], None]
Leave = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class PeerRoute:
    client: httpx.AsyncClient
    url: str
    token: str
    seat: str  # as the peer names it


@dataclass(slots=True)
class Peer:
    config: PeerConfig
    client: httpx.AsyncClient
    seats: set[str] = field(default_factory=set)  # the peer's own names of them
    reason: str | None = "not asked yet"  # None while it answers
    latency_ms: float | None = None  # of its last answer to /v1/models
    checked_at: str | None = None


class PeerSeats:
    """The peers' seats, kept in step with what each peer offers; `join` and `leave` put them
    in and take them out of the registry."""

    def __init__(self, peers: list[PeerConfig], join: Join, leave: Leave) -> None:
        self._join = join
        self._leave = leave
        self.peers: dict[str, Peer] = {}
        self._watches: dict[str, asyncio.Task[None]] = {}
        self._running = False
        for peer in peers:
            self.add(peer)

    def configs(self) -> list[PeerConfig]:
        return [peer.config for peer in self.peers.values()]

    def add(self, config: PeerConfig) -> None:
        """Watch one more peer (while the hub runs, at once)."""
        peer = Peer(config, config.client(httpx.Timeout(10.0, read=None)))
        self.peers[config.name] = peer
        if self._running and config.enabled:
            self._watch_soon(peer)

    async def refresh_now(self, name: str) -> None:
        """Ask one peer for its seats at once (a peer just paired answers with them)."""
        if (peer := self.peers.get(name)) is not None:
            await self.refresh(peer)

    async def remove(self, name: str) -> None:
        """Stop watching a peer; its seats leave the council."""
        peer = self.peers.pop(name, None)
        if peer is None:
            return
        if (watch := self._watches.pop(name, None)) is not None:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
        for seat in peer.seats:
            self._leave(f"{name}/{seat}")
        await peer.client.aclose()

    def names(self) -> list[str]:
        """The peers' seats that answer now, as this hub names them (`kitchen/qwen`)."""
        return [
            f"{peer.config.name}/{seat}"
            for peer in self.peers.values()
            if peer.reason is None
            for seat in sorted(peer.seats)
        ]

    def route(self, name: str) -> PeerRoute | None:
        """Where a `/v1` request for peer seat `name` goes: the peer's client, its URL and
        the seat as the peer names it; None when `name` is no peer's seat."""
        peer_name, _, seat = name.partition("/")
        peer = self.peers.get(peer_name)
        if peer is None or seat not in peer.seats:
            return None
        if peer.reason is not None:
            raise SeatError(f"{name}: peer {peer_name} is unreachable ({peer.reason})")
        return PeerRoute(peer.client, peer.config.url, peer.config.token, seat)

    def rows(self) -> list[dict[str, Any]]:
        """Each peer as this hub sees it now: its seats, or why it is not answering."""
        return [
            {
                **peer.config.public(),
                "seats": sorted(peer.seats),
                "state": "reachable" if peer.reason is None else "unreachable",
                "reason": peer.reason,
                "latency_ms": peer.latency_ms,
                "checked_at": peer.checked_at,
            }
            for peer in self.peers.values()
        ]

    async def run(self) -> None:
        """Ask each peer for its seats, for as long as the hub runs (cancelled at its end)."""
        self._running = True
        for peer in self.peers.values():
            if peer.config.enabled:
                self._watch_soon(peer)
        try:
            await asyncio.Future()  # until the hub stops
        finally:
            self._running = False
            for watch in self._watches.values():
                watch.cancel()

    def _watch_soon(self, peer: Peer) -> None:
        name = f"peer:{peer.config.name}"
        self._watches[peer.config.name] = asyncio.create_task(self._watch(peer), name=name)

    async def _watch(self, peer: Peer) -> None:
        while True:
            await self.refresh(peer)
            await asyncio.sleep(INTERVAL if peer.reason is None else RETRY)

    async def refresh(self, peer: Peer) -> None:
        started = time.monotonic()
        try:
            offered = set(await peer_seats(peer.config, peer.client))
        except CouncilError as exc:
            if peer.reason is None:
                log.warning("peer %s went away: %s", peer.config.name, exc)
            peer.reason = str(exc)
            return
        finally:
            peer.checked_at = stamp()
        if peer.reason is not None:
            log.info("peer %s answers: seats %s", peer.config.name, ", ".join(sorted(offered)))
        peer.reason = None
        peer.latency_ms = round((time.monotonic() - started) * 1000, 1)
        joined = peer.seats & offered
        for gone in peer.seats - offered:
            self._leave(f"{peer.config.name}/{gone}")
        for new in sorted(offered - peer.seats):
            if self._add(peer, new):
                joined.add(new)
        peer.seats = joined

    def _add(self, peer: Peer, seat: str) -> bool:
        name = f"{peer.config.name}/{seat}"

        def target() -> Endpoint:
            if peer.reason is not None:
                raise SeatError(f"{name}: peer {peer.config.name} is unreachable ({peer.reason})")
            return Endpoint(peer.config.url, peer.config.token)

        def describe() -> dict[str, Any]:
            return {
                "model": seat,
                "peer": peer.config.name,
                "url": peer.config.url,
                "state": "ready" if peer.reason is None else "unreachable",
                "reason": peer.reason,
                "latency_ms": peer.latency_ms,
                "checked_at": peer.checked_at,
            }

        try:
            self._join(name, HttpSeat(name, "peer", target, peer.client, model=seat), describe)
        except CouncilError as exc:  # a name already taken here: that seat stays out
            log.warning("peer %s's seat %s cannot join: %s", peer.config.name, seat, exc)
            return False
        return True

    async def aclose(self) -> None:
        for peer in self.peers.values():
            with contextlib.suppress(httpx.HTTPError):
                await peer.client.aclose()
