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

On the LAN listener these routes sit behind the DeviceGate like every non-public path: a phone
needs its device token.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Route

from council.models.digests import ModelFiles

IMMUTABLE = "public, max-age=31536000, immutable"


def _matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110's weak comparison, which If-None-Match uses: `*`, or any listed tag."""
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or etag in tags


def model_file_routes(files: ModelFiles) -> list[BaseRoute]:
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
        return FileResponse(
            path, headers=headers, media_type="application/octet-stream", stat_result=stat
        )

    return [Route("/models/{digest}/{name}", model_file, methods=["GET", "HEAD"])]
