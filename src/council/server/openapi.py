"""The OpenAPI document, generated from the routes so it cannot drift from them.

Each endpoint's docstring is its summary; paths, methods and path parameters come from the
routing table itself. Every route is listed, the pages and `/v1` too, so the document is the
whole surface a client (or a fuzzer, or the test of who may do what) can reach.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Sequence
from typing import Any

from starlette.routing import BaseRoute, Route

from council import __version__
from council.server import bodies

ERROR = {"$ref": "#/components/schemas/Error"}
_PARAM = re.compile(r"{(\w+)}")


def openapi_schema(routes: Sequence[BaseRoute]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if not isinstance(route, Route):
            continue
        summary = (inspect.getdoc(route.endpoint) or "").split("\n\n")[0].replace("\n", " ")
        body = bodies.schema_of(route.endpoint)
        for method in sorted((route.methods or set()) - {"HEAD"}):
            operation = paths.setdefault(route.path, {})[method.lower()] = {
                "summary": summary,
                "parameters": [
                    {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                    for name in _PARAM.findall(route.path)
                ],
                "responses": {
                    "200": {"description": "OK"},
                    "4XX": {
                        "description": "A JSON error",
                        "content": {"application/json": {"schema": ERROR}},
                    },
                },
            }
            if body is not None:
                operation["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": body}},
                }
    return {
        "openapi": "3.1.0",
        "info": {"title": "council", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": {
                        "error": {
                            "type": "object",
                            "properties": {
                                "status": {"type": "integer"},
                                "message": {"type": "string"},
                            },
                        }
                    },
                }
            }
        },
    }
