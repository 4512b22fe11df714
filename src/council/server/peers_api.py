"""`/api/peers`: the other hubs this one pairs with, live (the owner's; a device gets 403).

- `GET /api/peers` each peer as the hub sees it now: its seats, or why it does not answer,
  and its latency (never its token);
- `POST /api/peers` `{"url": <another hub's pairing link>, "name"?}` pairs with it
  (peers.py) and its seats join the council at once (201);
- `DELETE /api/peers/{name}` forgets one: its seats leave, its token is deleted (204).

peers.toml is written from the hub's own list, on a worker thread: the stick may be slow.
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from council.datafolder import DataFolder
from council.deliberation.peer_seats import PeerSeats
from council.errors import NotFound
from council.peers import pair_with, save_peers
from council.server import bodies
from council.server.api import read_json

NO_STORE = {"cache-control": "no-store"}
PAIRING_WAIT = 120.0  # seconds a request waits for the other hub's owner to approve


class PeersApi:
    def __init__(self, folder: DataFolder, peers: PeerSeats) -> None:
        self.folder = folder
        self.peers = peers
        self._changing = asyncio.Lock()  # one change at a time: each writes the whole file

    async def listing(self, request: Request) -> Response:
        return JSONResponse({"peers": self.peers.rows()}, headers=NO_STORE)

    @bodies.accepts(bodies.PEER)
    async def add(self, request: Request) -> Response:
        body = await read_json(request)
        async with self._changing:
            joined = await pair_with(
                self.peers.configs(), str(body["url"]), body.get("name"), PAIRING_WAIT
            )
            configs = [*self.peers.configs(), joined.peer]
            await asyncio.to_thread(save_peers, self.folder, configs)  # the stick first
            self.peers.add(joined.peer)
        await self.peers.refresh_now(joined.peer.name)  # its seats join before the answer
        answer = {**joined.peer.public(), "seats": joined.seats}
        return JSONResponse(answer, status_code=201, headers=NO_STORE)

    async def remove(self, request: Request) -> Response:
        name = request.path_params["name"]
        async with self._changing:
            configs = self.peers.configs()
            if name not in {peer.name for peer in configs}:
                raise NotFound(f"no peer {name!r}")
            kept = [peer for peer in configs if peer.name != name]
            await asyncio.to_thread(save_peers, self.folder, kept)
            await self.peers.remove(name)
        return Response(status_code=204)

    def routes(self) -> list[Route]:
        return [
            Route("/api/peers", self.listing, methods=["GET"]),
            Route("/api/peers", self.add, methods=["POST"]),
            Route("/api/peers/{name}", self.remove, methods=["DELETE"]),
        ]
