"""The JSON bodies the hub's routes take, as JSON Schema: checked on the way in, published in
`/api/openapi.json` (so a schema-based client or fuzzer reaches every field), and refused with
a `400` that names the field, never a 500 from deep inside a handler.

An endpoint declares its body with `@accepts(schema)`; `read_json` (and `/v1`'s passthrough)
check every body against the schema of the endpoint the router matched. Settings dataclasses
give their own schema (`fields_schema`): the same types and ranges config.toml is checked
against. Handlers still check what a schema cannot say (a seat name that exists, a model on
the stick); the schema makes sure that by then every value is of the type they expect.

The checker is `fastjsonschema`, which compiles each schema to Python once, at import.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

import fastjsonschema

from council.config import MAX_SYSTEM_PROMPT
from council.errors import BadRequest
from council.remotes import RemoteSeatConfig
from council.settings import RoundDefaults, range_of

F = TypeVar("F", bound=Callable[..., Any])
Schema = dict[str, Any]

MAX_DEPTH = 32  # nesting of arrays and objects any body may have
_TYPES: dict[str, Schema] = {
    "str": {"type": "string"},
    "int": {"type": "integer"},
    "float": {"type": "number"},
    "bool": {"type": "boolean"},
    "tuple[str, ...]": {"type": "array", "items": {"type": "string"}},
}


_CHECKERS: dict[int, Callable[[Any], Any]] = {}  # by id() of a module-level schema


def accepts(schema: Schema) -> Callable[[F], F]:
    """Declare the body an endpoint (a function, or an ASGI app's class) takes."""
    _CHECKERS.setdefault(id(schema), fastjsonschema.compile(schema))

    def declare(endpoint: F) -> F:
        endpoint.body_schema = schema  # type: ignore[attr-defined]
        return endpoint

    return declare


def schema_of(endpoint: object) -> Schema | None:
    found = getattr(endpoint, "body_schema", None)
    return found if isinstance(found, dict) else None


def check_body(endpoint: object, body: Any) -> None:
    """`body` against the schema `endpoint` declared (none declared: any object)."""
    schema = schema_of(endpoint)
    if schema is None:
        return
    try:
        _CHECKERS[id(schema)](body)
    except fastjsonschema.JsonSchemaValueException as exc:
        raise BadRequest(_said(exc)) from None


def _said(exc: fastjsonschema.JsonSchemaValueException) -> str:
    """What is wrong, in the words council uses elsewhere: `'seats' must be a list or null`,
    `'max_tokens' must be a whole number from 1 to 32768`, `'question' is required`."""
    path = str(exc.name).removeprefix("data").lstrip(".")
    where = f"'{path}'" if path else "the request body"
    definition = exc.definition if isinstance(exc.definition, dict) else {}
    if exc.rule == "required":
        missing = [name for name in definition.get("required", ()) if name not in (exc.value or {})]
        return f"'{missing[0] if missing else path}' is required"
    if exc.rule in {"type", "minimum", "maximum"}:
        types = definition.get("type", [])
        types = [types] if isinstance(types, str) else list(types)
        if "minimum" in definition and "maximum" in definition:
            kind = "a whole number" if "integer" in types else "a number"
            low, high = definition["minimum"], definition["maximum"]
            return f"{where} must be {kind} from {low:g} to {high:g}"
        return f"{where} must be {' or '.join(_KINDS.get(t, t) for t in types)}"
    return f"{where} {str(exc.message).partition(' ')[2]}"


_KINDS = {
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "an object",
    "null": "null",
}


def fields_schema(kind: type[Any], *, nullable: bool = False) -> dict[str, Schema]:
    """Each field of a settings dataclass as a property: its type, its range; `nullable`
    where a null means "the default" (a round's options)."""
    properties: dict[str, Schema] = {}
    for spec in dataclasses.fields(kind):
        prop: Schema = dict(_TYPES[str(spec.type)])
        allowed = range_of(spec)
        if allowed is not None:
            prop |= {"minimum": allowed.low, "maximum": allowed.high}
        if nullable:  # a range applies to numbers only, so a null still passes it
            prop["type"] = [prop["type"], "null"]
        properties[spec.name] = prop
    return properties


def obj(required: tuple[str, ...] = (), /, **properties: Schema) -> Schema:
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


STRING = {"type": "string"}
BOOLEAN = {"type": "boolean"}
TEXT_OR_NULL = {"type": ["string", "null"]}

TITLE = obj(title=TEXT_OR_NULL)
RENAME = obj(("title",), title=STRING)
INTEGER = {"type": "integer"}
NUMBER = {"type": "number"}
_OUTPUT_FIELDS = (
    "stage", "layer", "seat", "status", "content", "error", "details", "prompt_tokens",
    "completion_tokens", "prompt_ms", "generation_ms", "wall_ms", "started_at", "finished_at",
)  # fmt: skip
_EXPORTED_OUTPUT = obj(
    _OUTPUT_FIELDS,
    stage=STRING,
    layer=INTEGER,
    seat=STRING,
    status=STRING,
    content=STRING,
    error=TEXT_OR_NULL,
    details={"type": ["object", "null"]},
    prompt_tokens=INTEGER,
    completion_tokens=INTEGER,
    prompt_ms=NUMBER,
    generation_ms=NUMBER,
    wall_ms=NUMBER,
    started_at=STRING,
    finished_at=STRING,
)
_MESSAGE_FIELDS = (
    "position", "question", "mode", "options", "status", "answer", "result", "error",
    "created_at", "finished_at", "outputs",
)  # fmt: skip
_EXPORTED_MESSAGE = obj(
    _MESSAGE_FIELDS,
    position=INTEGER,
    question=STRING,
    mode=STRING,
    options={"type": "object"},
    status=STRING,
    answer=TEXT_OR_NULL,
    result={"type": ["object", "null"]},
    error=TEXT_OR_NULL,
    created_at=STRING,
    finished_at=TEXT_OR_NULL,
    outputs={"type": "array", "items": _EXPORTED_OUTPUT},
)
IMPORT = obj(  # what `GET /api/conversations/{id}/export?format=json` gives
    ("format", "version", "title", "created_at", "updated_at", "messages"),
    format={"const": "council-conversation"},
    version={"const": 1},
    title=STRING,
    created_at=STRING,
    updated_at=STRING,
    messages={"type": "array", "items": _EXPORTED_MESSAGE},
)
ROUND_OPTIONS = {
    **fields_schema(RoundDefaults, nullable=True),
    "seed": {"type": ["integer", "null"]},
    "sample": {"type": ["integer", "null"], "minimum": 0, "maximum": 1000},
}
QUESTION = obj(("question",), question=STRING, **ROUND_OPTIONS)
DEFAULTS = obj(ranges={"type": "object"}, **fields_schema(RoundDefaults, nullable=True))
_REMOTE = fields_schema(RemoteSeatConfig)
_STYLE = {  # a local seat's own sampling and system prompt (config.py's SeatConfig)
    "temperature": {"type": ["number", "null"], "minimum": 0, "maximum": 2},
    "seed": {"type": ["integer", "null"], "minimum": 0, "maximum": 2**31 - 1},
    "system_prompt": {"type": "string", "maxLength": MAX_SYSTEM_PROMPT},
}
NEW_SEAT = obj(
    kind={"enum": ["local", "remote"]},
    has_token=BOOLEAN,  # what GET answers; sent back, it is ignored
    **{**_REMOTE, "ctx_size": {"type": ["integer", "null"], "minimum": 0}, **_STYLE},
)
SEAT_CHANGE = obj(has_token=BOOLEAN, kind=STRING, **_REMOTE)
DEVICE_NAME = obj(("name",), name=STRING)
PAIRING = obj(name=TEXT_OR_NULL, ttl={"type": "integer"}, confirm={"type": ["boolean", "null"]})
EXCHANGE = obj(code=STRING, name=TEXT_OR_NULL)
LOGIN = obj(("code",), code=STRING)
BROWSER_SEAT = obj(model=TEXT_OR_NULL, ctx_size={"type": ["integer", "null"]})
BROWSER_MODEL = obj(("model",), model=STRING)
PEER = obj(
    ("url",),
    url={"type": "string", "maxLength": 2000},
    name={"type": ["string", "null"], "maxLength": 32},
)
PULL = obj(
    ("repo",),
    repo={"type": "string", "maxLength": 200},
    file={"type": ["string", "null"], "maxLength": 500},
    revision={"type": ["string", "null"], "maxLength": 200},
    force=BOOLEAN,
)
TASK_ANSWER = obj(
    deltas={"type": "array", "items": STRING},
    done=BOOLEAN,
    error=STRING,
    finish_reason=TEXT_OR_NULL,
    usage={
        "type": "object",
        "properties": {
            "prompt_tokens": {"type": "integer", "minimum": 0},
            "completion_tokens": {"type": "integer", "minimum": 0},
        },
    },
)
_CONTENT = {"anyOf": [STRING, {"type": "array"}, {"type": "null"}]}
OPENAI = obj(
    ("model",),
    model=STRING,
    messages={
        "type": "array",
        "items": obj(("role",), role=STRING, content=_CONTENT),
    },
    prompt={"anyOf": [STRING, {"type": "array"}]},
    input={"anyOf": [STRING, {"type": "array"}]},
    stream=BOOLEAN,
    max_tokens={"type": ["integer", "null"]},
    temperature={"type": ["number", "null"]},
)
