"""`/models/<digest>/<name>`: the catalog's model files, content-addressed, for browser seats.

`<digest>` is the first 16 hex characters of the file's SHA-256 and `<name>` its base name
(council.models.digests says why and when files are hashed). The pair is looked up among the
hashed catalog files; nothing in the request ever becomes a path, so `..%2F`, an unknown digest
or a right digest with a wrong name are all the same JSON 404.

A URL names one content forever, so responses say so: a strong `ETag` (the full SHA-256),
`Cache-Control: public, max-age=31536000, immutable`, and `If-None-Match` answered with 304.
Starlette's FileResponse does `Range` (single, suffix and multi-range, 206), `If-Range` (a
stale validator gets the whole file, 200), 416 and `HEAD`. No compression: GGUF weights do not
compress, and byte ranges must count the file's own bytes. A whole-file GET goes out through
the kernel's sendfile (council.server.sendfile); ranges are read in 64 KiB chunks.

What went out is counted in the hub's metrics (`council_model_bytes_sent_total{file}`, the
file's own digest): a whole file sent by sendfile counts its size once the send returns, a
range or a TLS download the body bytes as they are handed on (with a multi-range answer's part
headers). A 304 or a `HEAD` counts nothing: that is how a test tells that a second visit read
the model from the browser's storage.

On the LAN listener these routes sit behind the DeviceGate like every non-public path: a phone
needs its device token.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Message, Receive, Scope, Send

from council.models.digests import DIGEST_CHARS, ModelFiles
from council.server.metrics import Metrics
from council.server.sendfile import PATHSEND

IMMUTABLE = "public, max-age=31536000, immutable"
OCTETS = "application/octet-stream"


def _matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110's weak comparison, which If-None-Match uses: `*`, or any listed tag."""
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or etag in tags


class _CountedFile(FileResponse):
    """A FileResponse that reports the bytes it sent (see the module's docstring)."""

    def __init__(
        self, path: Path, stat: os.stat_result, headers: dict[str, str], sent: Callable[[int], None]
    ) -> None:
        super().__init__(path, headers=headers, media_type=OCTETS, stat_result=stat)
        self.size, self.sent = stat.st_size, sent

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def counted(message: Message) -> None:
            await send(message)
            if message["type"] == PATHSEND:
                self.sent(self.size)
            elif message["type"] == "http.response.body" and message.get("body"):
                self.sent(len(message["body"]))

        await super().__call__(scope, receive, counted)


def model_file_routes(files: ModelFiles, metrics: Metrics | None = None) -> list[BaseRoute]:
    async def model_file(request: Request) -> Response:
        """A catalog model file by content digest (GET/HEAD, ranges, conditional requests)."""
        found = files.lookup(request.path_params["digest"], request.path_params["name"])
        if found is None:
            raise HTTPException(404, "no such model file")
        path, stat, digest = found
        etag = f'"{digest.sha256}"'
        headers = {"etag": etag, "cache-control": IMMUTABLE, "accept-ranges": "bytes"}
        if _matches(request.headers.get("if-none-match", ""), etag):
            return Response(status_code=304, headers=headers)
        if metrics is None:
            return FileResponse(path, headers=headers, media_type=OCTETS, stat_result=stat)
        file = digest.sha256[:DIGEST_CHARS]
        return _CountedFile(path, stat, headers, lambda n: metrics.model_bytes_sent(file, n))

    return [Route("/models/{digest}/{name}", model_file, methods=["GET", "HEAD"])]
