"""The browser seat: a page at `/seat/` that runs a model in the visitor's tab with wllama.

Multi-threaded WebAssembly needs `SharedArrayBuffer`, which a browser only grants to a
cross-origin isolated page: `Isolation` (pure ASGI, so nothing is buffered) adds
`Cross-Origin-Opener-Policy: same-origin`, `Cross-Origin-Embedder-Policy: require-corp` and
`Cross-Origin-Resource-Policy: same-origin` to every response under `/seat/` — the page, its
modules, and wllama's ES module and `.wasm` files, which `make web` copies from npm (pinned by
package-lock.json) into web/vendor/wllama/ and which are served here under `/seat/vendor/`.
Nothing is fetched from a CDN: the page hands wllama local URLs for the compat build too.

The page's Content-Security-Policy (`SEAT_CSP`, chosen per path by app.py's `SecurityHeaders`)
differs from the hub's in two words: `'wasm-unsafe-eval'` (compiling WebAssembly) and
`worker-src 'self' blob:` (wllama starts its worker, and emscripten its threads, from blob URLs).

`COUNCIL_SEAT_ISOLATION=off` in the hub's environment serves the page without the isolation
headers, so tests (and anyone curious) can watch it fall back to the host's `/v1`.

Model files are not served here: the page downloads them from `/models/<digest>/<name>`
(model_files.py), the URLs `/api/models` lists.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

WEB = Path(__file__).resolve().parent.parent / "web"
SEAT_WEB = WEB / "seat"
WLLAMA = WEB / "vendor" / "wllama"
ISOLATION_HEADERS = [
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-embedder-policy", b"require-corp"),
    (b"cross-origin-resource-policy", b"same-origin"),
]
SEAT_CSP = (
    b"default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self' blob:; "
    b"style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
    b"base-uri 'none'; form-action 'self'"
)


class Isolation:
    """Pure ASGI: the cross-origin isolation headers on every response of the wrapped app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *ISOLATION_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def seat_routes(*, isolated: bool = True) -> list[BaseRoute]:
    """`/seat/` and everything under it, cross-origin isolated unless `isolated` is False."""

    async def page(request: Request) -> Response:
        return FileResponse(SEAT_WEB / "index.html", headers={"cache-control": "no-cache"})

    router = Router(
        routes=[
            Route("/", page),
            Mount("/vendor", StaticFiles(directory=WLLAMA, check_dir=False)),
            Mount("/", StaticFiles(directory=SEAT_WEB)),
        ]
    )
    app: ASGIApp = router
    if isolated:
        app = Isolation(router)
    return [Mount("/seat", app=app)]
