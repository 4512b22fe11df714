"""The routes a phone needs before it is paired: `/pair`, `/ca` and `/health`.

Everything else on the LAN listener needs a paired device's token (see `gate.py`): an
`Authorization: Bearer` header, or the `HttpOnly; Secure; SameSite=Strict` cookie the pairing
exchange sets for browsers. `/health` answers the status word only, nothing about the laptop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from council.errors import NotFound, PairingFailed, TooManyRequests
from council.security import pairing
from council.server import bodies
from council.server.api import read_json
from council.server.gate import COOKIE, DeviceSessions
from council.store.access import Store
from council.store.devices import record_audit

if TYPE_CHECKING:  # cryptography loads only with --lan
    from council.security.tls import CertificateAuthority

NO_CA = "this hub uses its own certificate; there is no CA to install"
COOKIE_AGE = 400 * 24 * 3600  # the longest lifetime browsers keep a cookie


@dataclass(frozen=True, slots=True)
class LanContext:
    db: Store
    ca: CertificateAuthority | None  # None when the user brought their own certificate
    limiter: pairing.AttemptLimiter
    status: Callable[[], str]
    sessions: DeviceSessions


def lan_routes(ctx: LanContext, web: str) -> list[Route]:
    async def pair_page(request: Request) -> Response:
        return FileResponse(f"{web}/pair.html", headers={"cache-control": "no-store"})

    async def pair_script(request: Request) -> Response:
        return FileResponse(f"{web}/pair.js", media_type="text/javascript")

    @bodies.accepts(bodies.EXCHANGE)
    async def exchange(request: Request) -> Response:
        address = request.client.host if request.client else ""
        if (wait := ctx.limiter.check(address)) is not None:
            raise TooManyRequests("too many attempts: wait and try again", retry_after=wait)
        body = await read_json(request, limit=4096)
        try:
            result = await ctx.db.write(
                pairing.exchange,
                str(body.get("code") or ""),
                str(body.get("name") or "phone"),
                address,
            )
        except PairingFailed:
            if (lockout := ctx.limiter.failure(address)) is not None:
                detail = ctx.limiter.detail(lockout)
                ctx.db.submit(record_audit, "locked_out", address=address, detail=detail)
            raise
        ctx.limiter.success(address)
        if not result.paired:
            return JSONResponse(result.to_dict(), status_code=202)
        response = JSONResponse(result.to_dict(), headers={"cache-control": "no-store"})
        response.set_cookie(
            COOKIE,
            result.token or "",
            max_age=COOKIE_AGE,
            httponly=True,
            secure=True,
            samesite="strict",
            path="/",
        )
        return response

    async def ca_page(request: Request) -> Response:
        if ctx.ca is None:
            raise NotFound(NO_CA)
        return JSONResponse(
            {
                "fingerprint": ctx.ca.fingerprint,
                "pem": "/ca.pem",
                "ios_profile": "/ca.mobileconfig",
                "install": {
                    "iOS": "Open /ca.mobileconfig, install the profile in Settings, then turn on "
                    "full trust in Settings > General > About > Certificate Trust Settings.",
                    "Android": "Download /ca.pem, then Settings > Security > Encryption & "
                    "credentials > Install a certificate > CA certificate.",
                    "macOS": "Open /ca.pem in Keychain Access and set it to Always Trust.",
                    "Windows": "Open /ca.pem and install it into Trusted Root Certification "
                    "Authorities.",
                },
            }
        )

    async def ca_pem(request: Request) -> Response:
        if ctx.ca is None:
            raise NotFound(NO_CA)
        return Response(
            ctx.ca.pem,
            media_type="application/x-pem-file",
            headers={"content-disposition": 'attachment; filename="council-ca.pem"'},
        )

    async def ca_profile(request: Request) -> Response:
        if ctx.ca is None:
            raise NotFound(NO_CA)
        from council.security.tls import ios_profile

        return Response(ios_profile(ctx.ca), media_type="application/x-apple-aspen-config")

    async def health(request: Request) -> Response:
        return JSONResponse({"status": ctx.status()}, headers={"cache-control": "no-store"})

    return [
        Route("/pair", pair_page),
        Route("/pair/pair.js", pair_script),
        Route("/pair/exchange", exchange, methods=["POST"]),
        Route("/ca", ca_page),
        Route("/ca.pem", ca_pem),
        Route("/ca.mobileconfig", ca_profile),
        Route("/health", health),
    ]
