"""`GET /api/status`: what `council status` shows, in one answer from the hub that knows it.

The hub itself (process id, URLs, uptime), every seat with its engine's process id, port, busy
slots (llama-server's own `/slots`) and resident memory, the rounds running now, the paired
devices seen lately, and the pulls in progress. The route is the owner's: it is not in
`roles.GUEST`, so a paired phone is refused (it would learn the laptop's process ids and what
other devices do).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psutil
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from council import __version__
from council.deliberation.registry import SeatKind, SeatRegistry
from council.deliberation.service import CouncilService
from council.pull.jobs import Pulls
from council.store import conversations
from council.store.access import Store
from council.store.devices import list_devices
from council.timestamps import stamp

# A device counts as online when it has a request open or was seen this recently (the hub
# notes a device's sighting at most every 30 s, store/devices.py).
ONLINE_WINDOW = timedelta(minutes=2)
PULLING = frozenset({"queued", "running"})


@dataclass(frozen=True, slots=True)
class HubFacts:
    """What the hub knows of itself, read when asked (the URLs exist once it serves)."""

    started_at: str  # ISO 8601, UTC
    started: float  # time.monotonic() then, for the uptime
    data: str
    url: Callable[[], str]
    lan_url: Callable[[], str | None]
    health: Callable[[], dict[str, object]]


class StatusApi:
    def __init__(
        self,
        hub: HubFacts,
        db: Store,
        *,
        seats: SeatRegistry,
        council: CouncilService,
        pulls: Pulls,
        open_requests: Callable[[], dict[str, int]],
    ) -> None:
        self.hub = hub
        self.db = db
        self.seats = seats
        self.council = council
        self.pulls = pulls
        self.open_requests = open_requests

    async def status(self, request: Request) -> Response:
        health = self.hub.health()
        return JSONResponse(
            {
                "pid": os.getpid(),
                "version": __version__,
                "url": self.hub.url(),
                "lan_url": self.hub.lan_url(),
                "data": self.hub.data,
                "started_at": self.hub.started_at,
                "uptime": round(time.monotonic() - self.hub.started, 1),
                "status": health.get("status"),
                "stick": health.get("stick"),
                "seats": await self._seats(),
                "rounds": self._rounds(),
                "devices": await self._devices(),
                "pulls": [job for job in self.pulls.listing() if job["state"] in PULLING],
            },
            headers={"cache-control": "no-store"},
        )

    async def _seats(self) -> list[dict[str, Any]]:
        fleet = self.seats.fleet
        speeds, busy = await asyncio.gather(
            self.db.read(conversations.last_speeds), fleet.busy_slots()
        )
        rows = []
        for seat in self.seats.view():
            row = {**seat, "tokens_per_second": speeds.get(seat["name"])}
            if row["kind"] == SeatKind.LOCAL:
                facts = fleet.engine_facts(row["name"])
                pid = facts["engine_pid"]
                row |= facts
                row["slots_busy"] = busy.get(str(row.get("engine")))
                row["memory_bytes"] = (
                    await asyncio.to_thread(_resident, pid) if isinstance(pid, int) else None
                )
            rows.append(row)
        return rows + self.seats.disabled()

    def _rounds(self) -> list[dict[str, Any]]:
        now = time.monotonic()
        return [
            {
                "message_id": handle.message_id,
                "conversation_id": handle.conversation_id,
                "mode": handle.mode,
                "seats": list(handle.seats),
                "device_id": handle.device_id,
                "seconds": round(now - handle.started, 1),
            }
            for handle in list(self.council.running.values())
        ]

    async def _devices(self) -> list[dict[str, Any]]:
        open_now = self.open_requests()
        since = stamp(datetime.now(UTC) - ONLINE_WINDOW)  # stamps sort as the moments they name
        found = await self.db.read(list_devices, include_revoked=False)
        return [
            {
                "id": device.id,
                "name": device.name,
                "address": device.last_address,
                "last_seen_at": device.last_seen_at,
                "open_requests": open_now.get(device.id, 0),
            }
            for device in found
            if open_now.get(device.id)
            or (device.last_seen_at is not None and device.last_seen_at >= since)
        ]

    def routes(self) -> list[Route]:
        return [Route("/api/status", self.status, methods=["GET"])]


def _resident(pid: int) -> int | None:
    """An engine's resident memory (what it holds of the laptop's RAM), from the OS."""
    try:
        return int(psutil.Process(pid).memory_info().rss)
    except psutil.Error:
        return None
