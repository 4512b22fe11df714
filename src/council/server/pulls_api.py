"""`/api/hf/*` and `/api/pulls`: the Models panel's search, file list and pulls (the owner's).

- `GET /api/hf/search?q=` repositories with GGUF files whose name matches, most downloaded first;
- `GET /api/hf/files?repo=owner/name&revision=` every model of the repository (split sets once)
  with its size, estimated memory and "fits / tight / too big" here, and the one a pull with no
  choice would take;
- `POST /api/pulls` `{"repo", "file"?, "revision"?, "force"?}` queues a pull (202);
- `GET /api/pulls` every pull this hub ran or runs; `GET /api/pulls/events` the same list as
  server-sent events, sent whenever something changes (progress at most four times a second);
- `DELETE /api/pulls/{id}` cancels one (its partial file is deleted).

None of these is in `roles.GUEST`: a paired phone may not fill the owner's stick.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from council.errors import BadRequest
from council.pull.jobs import Pulls
from council.server import bodies
from council.server.api import HEARTBEAT, read_json

NO_STORE = {"cache-control": "no-store"}


class PullsApi:
    def __init__(self, pulls: Pulls) -> None:
        self.pulls = pulls

    async def search(self, request: Request) -> Response:
        """Repositories on the Hub (or HF_ENDPOINT's mirror) with GGUF files, by name."""
        found = await self.pulls.search(request.query_params.get("q", ""))
        return JSONResponse({"repos": found}, headers=NO_STORE)

    async def files(self, request: Request) -> Response:
        """A repository's models with the memory each needs and whether it fits here."""
        repo = request.query_params.get("repo", "")
        if not repo:
            raise BadRequest("say which repository: ?repo=owner/name")
        plan = await self.pulls.plan(repo, request.query_params.get("revision") or "main")
        return JSONResponse(plan.to_dict(), headers=NO_STORE)

    @bodies.accepts(bodies.PULL)
    async def start(self, request: Request) -> Response:
        """Queue a pull; the same pull asked for twice is one pull."""
        body = await read_json(request)
        job = self.pulls.start(
            body["repo"], body.get("file"), body.get("revision") or "main", bool(body.get("force"))
        )
        return JSONResponse(job.to_dict(), status_code=202, headers=NO_STORE)

    async def listing(self, request: Request) -> Response:
        return JSONResponse({"pulls": self.pulls.listing()}, headers=NO_STORE)

    async def cancel(self, request: Request) -> Response:
        """Stop a pull and delete what it downloaded (a queued one never starts)."""
        self.pulls.cancel(request.path_params["id"])
        return Response(status_code=204)

    async def events(self, request: Request) -> Response:
        """`event: pulls` with `{"pulls": [...]}` at once and on every change."""
        return StreamingResponse(self._stream(), media_type="text/event-stream", headers=NO_STORE)

    async def _stream(self) -> AsyncIterator[bytes]:
        seen = self.pulls.version
        yield self._snapshot()
        while True:
            version = await self.pulls.changed(seen, HEARTBEAT)
            if version < 0:
                return
            if version == seen:
                yield b": ping\n\n"  # silence: keeps proxies and the page's reader awake
                continue
            seen = version
            yield self._snapshot()

    def _snapshot(self) -> bytes:
        return f"event: pulls\ndata: {json.dumps({'pulls': self.pulls.listing()})}\n\n".encode()

    def routes(self) -> list[Route]:
        return [
            Route("/api/hf/search", self.search, methods=["GET"]),
            Route("/api/hf/files", self.files, methods=["GET"]),
            Route("/api/pulls", self.listing, methods=["GET"]),
            Route("/api/pulls", self.start, methods=["POST"]),
            Route("/api/pulls/events", self.events, methods=["GET"]),
            Route("/api/pulls/{id}", self.cancel, methods=["DELETE"]),
        ]
