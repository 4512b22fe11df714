"""`/api/evals`: the stored `council eval` runs, for the page's Evaluations view (the owner's).

- `GET /api/evals` every run, newest first: id, task, status, items, answers, systems;
- `GET /api/evals/{id}` one run as `council eval show ID --json` prints it: the per-system
  results (accuracy, 95% interval, tokens, wall time), the judges' biases, and every item with
  each system's raw answer, extracted answer and whether it was right.

Runs are made by the CLI (`council eval`); the page only reads them. Neither route is in
`roles.GUEST`: a paired phone sees no evaluation.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from council.evaluation import records
from council.evaluation.report import results
from council.store.access import Store


def _report(db: sqlite3.Connection, run_id: str) -> dict[str, Any]:
    return results(records.load_run(db, records.resolve_run(db, run_id)))


class EvalsApi:
    def __init__(self, db: Store) -> None:
        self.db = db

    async def list_runs(self, request: Request) -> Response:
        return JSONResponse({"runs": await self.db.read(records.list_runs)})

    async def get_run(self, request: Request) -> Response:
        report = await self.db.read(_report, request.path_params["id"])
        return JSONResponse(report)

    def routes(self) -> list[Route]:
        return [
            Route("/api/evals", self.list_runs, methods=["GET"]),
            Route("/api/evals/{id}", self.get_run, methods=["GET"]),
        ]
