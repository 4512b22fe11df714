"""Every route that takes a body, fed bodies drawn from its own schema in `/api/openapi.json`
(right fields of wrong types, values at and past their ranges, lone surrogates, deep nesting,
JSON that is not an object, bytes that are not JSON): the hub answers each with a JSON error
or a success, never a 500.

A real hub with its LAN listener (on loopback), so the unauthenticated `/pair/exchange` is
fuzzed where a stranger reaches it. The examples are drawn from a fixed seed, so a failure
reproduces; `COUNCIL_FUZZ_EXAMPLES` asks for more of them per route (the default keeps the
whole test to about a minute).
"""

from __future__ import annotations

import json
import os
import re
import ssl
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from council.datafolder import DataFolder
from tests.hubs import HubProcess, free_port
from tests.hubs import run_council as council
from tests.integration.test_lan import StartHub

EXAMPLES = int(os.environ.get("COUNCIL_FUZZ_EXAMPLES", "25"))
LAN_ONLY = {"/pair/exchange"}

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(["", "\ud800", "demo-1", "council", "vote", "../../etc/passwd"])
    | st.sampled_from(["council-conversation", "user", "assistant"])
)
ANY_JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=8,
)
# Small numbers where a valid one makes an engine work (a round's or a /v1 answer's length).
SHORT = st.integers(-1, 4) | st.just(32769) | ANY_JSON


def from_schema(schema: dict[str, Any], name: str = "") -> st.SearchStrategy[Any]:
    """Values the schema allows, and ones just outside it, and anything at all."""
    if name == "max_tokens":
        return SHORT
    if "const" in schema:
        return st.just(schema["const"]) | ANY_JSON
    if "enum" in schema:
        return st.sampled_from(schema["enum"]) | ANY_JSON
    if "anyOf" in schema:
        return st.one_of([from_schema(option, name) for option in schema["anyOf"]])
    kinds = schema.get("type", [])
    kinds = [kinds] if isinstance(kinds, str) else kinds
    if not kinds:
        return ANY_JSON
    return st.one_of([_of_type(kind, schema, name) for kind in kinds])


def _of_type(kind: str, schema: dict[str, Any], name: str) -> st.SearchStrategy[Any]:
    if kind == "object":
        properties = schema.get("properties", {})
        drawn = {key: from_schema(value, key) for key, value in properties.items()}
        required = set(schema.get("required", ()))
        complete = st.fixed_dictionaries(
            {key: value for key, value in drawn.items() if key in required},
            optional={key: value for key, value in drawn.items() if key not in required},
        )
        return complete | st.fixed_dictionaries({}, optional=drawn) | ANY_JSON
    if kind == "array":
        return st.lists(from_schema(schema.get("items", {}), name), max_size=4) | ANY_JSON
    if kind in {"integer", "number"}:
        low, high = schema.get("minimum", -(2**40)), schema.get("maximum", 2**40)
        edges = st.sampled_from([low - 1, low, high, high + 1])
        middle = st.integers(int(low), int(high)) if kind == "integer" else st.floats(low, high)
        return edges | middle | st.integers(-2, 10) | ANY_JSON
    if kind == "string":
        return (
            st.text(max_size=40)
            | st.sampled_from(["", "\ud800x", "demo-1", "council-conversation"])
            | ANY_JSON
        )
    if kind == "boolean":
        return st.booleans() | ANY_JSON
    return st.none() | ANY_JSON


def raw_bodies(schema: dict[str, Any]) -> st.SearchStrategy[bytes]:
    drawn = st.one_of(from_schema(schema), ANY_JSON).map(lambda value: json.dumps(value).encode())
    broken = st.sampled_from(
        [b"", b"{", b"[]", b"null", b"\xff\xfe", b"[" * 100_000 + b"]" * 100_000]
    )
    return drawn | broken


@pytest.mark.timeout(240)  # the fixed budget: about 30 s here, however the draws fall
def test_no_body_makes_the_hub_answer_500(start_hub: StartHub, isolated_data: DataFolder) -> None:
    port = free_port()
    hub = start_hub(None, "--lan", "--lan-host", "127.0.0.1", "--lan-port", str(port))
    hub.wait_ok()
    trust = ssl.create_default_context(cafile=str(isolated_data.tls / "ca.pem"))
    lan = f"https://127.0.0.1:{port}"
    ids = real_ids(hub, lan, trust)
    document = httpx.get(f"{hub.url}/api/openapi.json", timeout=10).json()
    fuzzed = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            body = operation.get("requestBody")
            if body is None:
                continue
            schema = body["content"]["application/json"]["schema"]
            url = (lan if path in LAN_ONLY else hub.url) + concrete(path, ids)
            fuzz(method.upper(), url, schema, trust, ids["secret"])
            fuzzed.append(f"{method.upper()} {path}")
    assert len(fuzzed) >= 15, fuzzed  # every route that reads a body declares it
    assert httpx.get(f"{hub.url}/api/health", timeout=10).json()["status"] in {"ok", "degraded"}


def fuzz(method: str, url: str, schema: dict[str, Any], trust: ssl.SSLContext, secret: str) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(raw_bodies(schema))
    def one(body: bytes) -> None:
        headers = {"content-type": "application/json", "x-council-seat-secret": secret}
        with (
            httpx.Client(verify=trust, timeout=30) as client,
            client.stream(method, url, content=body, headers=headers) as response,
        ):
            if response.headers.get("content-type", "").startswith("text/event-stream"):
                return  # a round or an answer started: leaving stops it
            text = response.read()
        said = f"{method} {url} {body[:300]!r} -> {response.status_code} {text[:300]!r}"
        assert response.status_code != 500, said
        if response.status_code >= 400:
            assert "error" in json.loads(text), said

    one()


def concrete(path: str, ids: dict[str, str]) -> str:
    """`path` with each parameter a thing that exists (an `{id}` is a conversation's, a
    device's or a browser seat's, by where it stands)."""
    owner = next((kind for kind in ("devices", "browser-seats") if f"/{kind}/" in path), "")
    return re.sub(r"{(\w+)}", lambda m: ids[f"{owner}:{m[1]}" if m[1] == "id" else m[1]], path)


def real_ids(hub: HubProcess, lan: str, trust: ssl.SSLContext) -> dict[str, str]:
    """Path parameters that name things that exist, so bodies reach the code behind them."""
    conversation = httpx.post(f"{hub.url}/api/conversations", json={}, timeout=10).json()["id"]
    remote = {
        "name": "elsewhere",
        "url": "http://127.0.0.2:9",
        "model": "m",
        "allow_private": True,
        "enabled": False,
    }
    added = httpx.post(f"{hub.url}/api/seats", json=remote, timeout=10)
    assert added.status_code == 201, added.text
    seat = httpx.post(f"{hub.url}/api/browser-seats", json={}, timeout=10).json()
    invite = json.loads(council("pair", "--json").stdout)
    paired = httpx.post(
        f"{lan}/pair/exchange", json={"code": invite["code"]}, verify=trust, timeout=10
    )
    assert paired.status_code == 200, paired.text
    devices = httpx.get(f"{hub.url}/api/devices", timeout=10).json()["devices"]
    return {
        ":id": conversation,
        "devices:id": devices[0]["id"],
        "browser-seats:id": seat["id"],
        "name": "elsewhere",
        "comparison": "000000",
        "task": "0000",
        "secret": seat["secret"],
    }
