"""Who may do what: the owner at the laptop, and a paired device, which is a guest.

The LAN app serves the same routes as the laptop's, but only those in `GUEST` do anything
there: every other route answers 403, so a route added later is the owner's until it is added
here (deny by default). The README's security table lists the same routes; a test checks every
route of the LAN app against it.

A guest may ask the council (its rounds use the owner's seats and defaults, unchanged), read,
rename, export and delete the conversations it started (never the owner's, nor another
device's: those are 404 to it), use `/v1`, fetch model files and run a browser seat. It may not
change seats or the council's defaults, import conversations, pair or revoke devices, or read
metrics (the last two are not even mounted on the LAN listener).
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Scope

from council.errors import Forbidden

# What anyone on the LAN may reach, paired or not: the pairing and CA pages and the status word.
STRANGER = frozenset(
    {
        "GET /pair",
        "GET /pair/pair.js",
        "POST /pair/exchange",
        "GET /ca",
        "GET /ca.pem",
        "GET /ca.mobileconfig",
        "GET /health",
    }
)
GUEST = STRANGER | frozenset(
    {
        "GET /",
        "GET /sw.js",
        "GET /api/health",
        "GET /api/openapi.json",
        "GET /v1/models",
        "POST /v1/chat/completions",
        "POST /v1/completions",
        "POST /v1/embeddings",
        "GET /api/conversations",
        "POST /api/conversations",
        "GET /api/conversations/{id}",
        "PATCH /api/conversations/{id}",
        "DELETE /api/conversations/{id}",
        "GET /api/conversations/{id}/export",
        "POST /api/conversations/{id}/messages",
        "POST /api/messages",
        "POST /api/messages/{id}/stop",
        "GET /api/seats",
        "GET /api/seats/{name}",
        "GET /api/models",
        "GET /api/council/defaults",
        "GET /models/{digest}/{name}",
        "POST /api/browser-seats",
        "PATCH /api/browser-seats/{id}",
        "GET /api/browser-seats/{id}/tasks",
        "POST /api/browser-seats/{id}/tasks/{task}",
    }
)
OWNER_ONLY = "only the laptop's owner can do this; a paired device may not"


def device_id(request: Request | Scope) -> str | None:
    """The paired device a request comes from (the LAN gate put it there); None: the owner."""
    scope = request.scope if isinstance(request, Request) else request
    device = (scope.get("state") or {}).get("device")
    return getattr(device, "id", None)


def keys(route: Route) -> list[str]:
    """`"METHOD /path"` for each method the route answers (HEAD goes with GET)."""
    methods = sorted((route.methods or {"GET"}) - {"HEAD"})
    return [f"{method} {route.path}" for method in methods]


def for_guests(routes: Iterable[BaseRoute]) -> list[BaseRoute]:
    """The routes as a paired device gets them: those in `GUEST` unchanged, every other route
    refused with 403 (Mounts, the page's static files and `/seat/`, are served as they are)."""
    served: list[BaseRoute] = []
    for route in routes:
        if not isinstance(route, Route) or all(key in GUEST for key in keys(route)):
            served.append(route)
        elif any(key in GUEST for key in keys(route)):
            raise ValueError(f"{route.path}: split its methods into routes of their own")
        else:
            served.append(Route(route.path, _refuse, methods=route.methods, name=route.name))
    return served


async def _refuse(request: Request) -> Response:
    """The owner's only: a paired device is refused (403)."""
    raise Forbidden(OWNER_ONLY)
