"""`/api/devices`, `/api/pair`, `/api/pairings`: the owner's side of phone access, for the UI.

The same operations as `council pair` and `council devices`, over HTTP for the laptop's page:
list, rename and revoke paired devices, mint a pairing code with its QR code, and approve or
reject a phone that waits for confirmation.

These routes are the owner's: `create_app` registers them on the localhost listener only, never
on the LAN one, so a paired phone can neither pair more devices, approve a claim (six digits
could be guessed) nor revoke others. A minted code is in the response once, with
`cache-control: no-store`, and never in a log.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from council.datafolder import DataFolder
from council.errors import BadRequest
from council.security import pairing
from council.server import bodies
from council.server.api import read_json
from council.settings import PAIRING_TTL, PAIRING_TTL_DEFAULT
from council.store import devices as store
from council.store.access import Store

AUDIT_LIMIT, MAX_AUDIT_LIMIT = 100, 1000
NO_STORE = {"cache-control": "no-store"}


class DevicesApi:
    def __init__(
        self,
        db: Store,
        folder: DataFolder,
        lan_url: Callable[[], str | None],
        on_revoke: Callable[[str], None] = lambda _id: None,
    ) -> None:
        self.db = db
        self.folder = folder
        self.lan_url = lan_url  # None when the hub does not serve phones (no --lan)
        self.on_revoke = on_revoke  # ends the revoked device's open requests

    async def list_devices(self, request: Request) -> Response:
        """Every paired device, revoked ones included, and where phones reach the hub."""
        url = self.lan_url()
        devices = [device.to_dict() for device in await self.db.read(store.list_devices)]
        return JSONResponse(
            {"devices": devices, "lan": {"url": url, "serving": url is not None}}, headers=NO_STORE
        )

    @bodies.accepts(bodies.DEVICE_NAME)
    async def rename_device(self, request: Request) -> Response:
        """Rename a device: `{"name": "..."}` (an id prefix of four or more characters works)."""
        name = (await _read_json(request)).get("name")
        if not isinstance(name, str) or not name.strip():
            raise BadRequest("'name' must be a non-empty string")
        device = await self.db.write(store.rename_device, request.path_params["id"], name)
        return JSONResponse(device.to_dict())

    async def revoke_device(self, request: Request) -> Response:
        """Revoke a device: its token stops working and its open requests end."""
        device = await self.db.write(store.revoke_device, request.path_params["id"])
        self.on_revoke(device.id)
        return JSONResponse(device.to_dict())

    @bodies.accepts(bodies.PAIRING)
    async def pair(self, request: Request) -> Response:
        """Mint a one-time pairing code: `{"name"?, "ttl"? (seconds), "confirm"?}`; the
        answer holds the URL a phone opens, as text and as a QR code."""
        body = await _read_json(request)
        name, ttl, confirm = (
            body.get("name"),
            body.get("ttl", PAIRING_TTL_DEFAULT),
            body.get("confirm"),
        )
        if name is not None and not isinstance(name, str):
            raise BadRequest("'name' must be a string")
        if not isinstance(ttl, int) or ttl not in PAIRING_TTL:
            raise BadRequest(f"'ttl' must be a whole number of seconds {PAIRING_TTL.describe()}")
        if confirm is not None and not isinstance(confirm, bool):
            raise BadRequest("'confirm' must be true or false")
        from council.phone import invite  # loads cryptography: only when someone pairs

        made = await self.db.write(
            invite,
            self.folder,
            name=name or None,
            ttl=ttl,
            confirm=bool(confirm),
            base_url=self.lan_url(),
        )
        return JSONResponse(
            {
                **made.to_dict(),
                "comparison": made.comparison,
                "qr": qr_data_uri(made.url),
                "ttl": ttl,  # the page's countdown, on its own clock
            },
            headers=NO_STORE,
        )

    async def list_pending(self, request: Request) -> Response:
        """Phones that presented a confirmation code and wait for the owner's approval."""
        pending = [claim.to_dict() for claim in await self.db.read(pairing.pending)]
        return JSONResponse({"pending": pending}, headers=NO_STORE)

    async def confirm(self, request: Request) -> Response:
        """Approve the waiting phone that shows this comparison code."""
        name = await self.db.write(pairing.confirm, request.path_params["comparison"])
        return JSONResponse({"confirmed": name})

    async def reject(self, request: Request) -> Response:
        """Refuse the waiting phone that shows this comparison code: its code is spent."""
        name = await self.db.write(pairing.reject, request.path_params["comparison"])
        return JSONResponse({"rejected": name})

    async def audit(self, request: Request) -> Response:
        """The newest pairing and device events first: `?limit=` (default 100, at most 1000)."""
        limit = request.query_params.get("limit", str(AUDIT_LIMIT))
        if not limit.isdigit() or not 1 <= int(limit) <= MAX_AUDIT_LIMIT:
            raise BadRequest(f"'limit' must be a number from 1 to {MAX_AUDIT_LIMIT}")
        events = await self.db.read(store.audit, int(limit))
        return JSONResponse({"events": events}, headers=NO_STORE)

    def routes(self) -> list[Route]:
        return [
            Route("/api/devices", self.list_devices, methods=["GET"]),
            Route("/api/devices/audit", self.audit, methods=["GET"]),
            Route("/api/devices/{id}", self.rename_device, methods=["PATCH"]),
            Route("/api/devices/{id}", self.revoke_device, methods=["DELETE"]),
            Route("/api/pair", self.pair, methods=["POST"]),
            Route("/api/pairings", self.list_pending, methods=["GET"]),
            Route("/api/pairings/{comparison}/confirm", self.confirm, methods=["POST"]),
            Route("/api/pairings/{comparison}/reject", self.reject, methods=["POST"]),
        ]


async def _read_json(request: Request) -> dict[str, Any]:
    return await read_json(request, limit=4096)


def qr_data_uri(text: str) -> str:
    """An SVG QR code as a `data:` URI (the page's CSP allows `img-src data:`)."""
    import segno

    out = io.BytesIO()
    segno.make(text, error="m").save(
        out, kind="svg", scale=6, border=4, light="#fff", xmldecl=False
    )
    return "data:image/svg+xml;base64," + base64.b64encode(out.getvalue()).decode("ascii")
