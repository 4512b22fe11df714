from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from council.server.app import create_app
from council.server.guard import LocalGuard, local_hosts
from tests.running import run

HOSTS = ["127.0.0.1:8710", "localhost:8710", "[::1]:8710"]
ORIGIN = "http://127.0.0.1:8710"


class Hub:
    """A tiny app behind the guard that counts how often its endpoints actually ran."""

    def __init__(self) -> None:
        self.calls = 0

        async def endpoint(request: Request) -> Response:
            self.calls += 1
            return JSONResponse({"ok": True})

        async def stream(request: Request) -> Response:
            async def chunks() -> AsyncIterator[bytes]:
                for n in range(3):
                    yield f"data: {n}\n\n".encode()

            return StreamingResponse(chunks(), media_type="text/event-stream")

        async def socket(websocket: WebSocket) -> None:
            self.calls += 1
            await websocket.accept()
            await websocket.close()

        methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
        self.app = LocalGuard(
            Starlette(
                routes=[
                    Route("/api/thing", endpoint, methods=methods),
                    Route("/v1/chat/completions", endpoint, methods=methods),
                    Route("/api/stream", stream),
                    WebSocketRoute("/ws", socket),
                ]
            ),
            allowed_hosts=HOSTS,
        )

    def request(
        self, method: str, path: str = "/api/thing", headers: dict[str, str] | None = None
    ) -> httpx.Response:
        return request(self.app, method, path, headers)


def request(
    app: ASGIApp, method: str, path: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{HOSTS[0]}") as client:
            return await client.request(method, path, headers=headers)

    return run(send())


def raw(app: ASGIApp, scope: Scope, incoming: list[Message]) -> list[Message]:
    """Call `app` with a hand-built scope; returns every message it sent."""
    sent: list[Message] = []

    async def call() -> None:
        queue = list(incoming)

        async def receive() -> Message:
            return queue.pop(0) if queue else {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            sent.append(message)

        await app(scope, receive, send)

    run(call())
    return sent


def http_scope(headers: list[tuple[bytes, bytes]], path: str = "/api/thing") -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8710),
    }


def websocket(hub: Hub, headers: list[tuple[bytes, bytes]]) -> list[Message]:
    scope = {**http_scope(headers, "/ws"), "type": "websocket", "scheme": "ws"}
    del scope["method"]
    return raw(hub.app, scope, [{"type": "websocket.connect"}])


def assert_refused(response: httpx.Response, message: str) -> None:
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["status"] == 403
    assert message in response.json()["error"]["message"]


def test_a_request_for_an_allowed_host_passes_whatever_its_case() -> None:
    hub = Hub()
    for host in ("127.0.0.1:8710", "localhost:8710", "LocalHost:8710", "[::1]:8710"):
        response = hub.request("GET", headers={"host": host})
        assert response.status_code == 200
        assert response.json() == {"ok": True}
    assert hub.calls == 4


def test_a_request_for_a_foreign_host_is_refused() -> None:
    hub = Hub()
    response = hub.request("GET", headers={"host": "evil.example:8710"})
    assert_refused(response, "the Host header is not one this hub serves")
    assert "evil.example" not in response.text
    assert hub.calls == 0


def test_a_request_for_the_right_address_on_the_wrong_port_is_refused() -> None:
    hub = Hub()
    for host in ("127.0.0.1:9999", "127.0.0.1", "localhost"):
        assert_refused(hub.request("GET", headers={"host": host}), "Host header")
    assert hub.calls == 0


def test_a_request_without_a_host_header_is_refused() -> None:
    hub = Hub()
    sent = raw(hub.app, http_scope([]), [{"type": "http.request", "body": b""}])
    assert sent[0]["type"] == "http.response.start"
    assert sent[0]["status"] == 403
    assert b"the Host header is not one this hub serves" in sent[1]["body"]
    assert hub.calls == 0


def test_a_request_with_two_host_headers_is_refused() -> None:
    hub = Hub()
    headers = [(b"host", b"127.0.0.1:8710"), (b"host", b"evil.example:8710")]
    sent = raw(hub.app, http_scope(headers), [{"type": "http.request", "body": b""}])
    assert sent[0]["status"] == 403
    assert hub.calls == 0


def test_a_host_on_the_default_port_may_leave_the_port_out() -> None:
    inner = Hub()
    app = LocalGuard(inner.app.app, allowed_hosts=local_hosts("127.0.0.1", 80))
    assert request(app, "GET", "/api/thing", {"host": "127.0.0.1"}).status_code == 200
    assert request(app, "GET", "/api/thing", {"host": "localhost:80"}).status_code == 200
    response = request(
        app, "POST", "/api/thing", {"host": "127.0.0.1", "origin": "http://localhost"}
    )
    assert response.status_code == 200
    assert inner.calls == 3


def test_a_same_origin_post_passes() -> None:
    hub = Hub()
    for origin in (ORIGIN, "http://localhost:8710", "http://[::1]:8710"):
        response = hub.request("POST", headers={"origin": origin, "sec-fetch-site": "same-origin"})
        assert response.status_code == 200
    assert hub.calls == 3


def test_cross_origin_writes_are_refused_before_the_endpoint_runs() -> None:
    hub = Hub()
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        for origin in (
            "http://evil.example",
            "http://localhost:3000",
            "https://127.0.0.1:8710",
            "http://127.0.0.1:8710.evil.example",
        ):
            response = hub.request(method, headers={"origin": origin})
            assert_refused(response, "cross-origin requests may not change anything here")
    assert hub.calls == 0


def test_a_post_without_an_origin_passes() -> None:
    hub = Hub()
    assert hub.request("POST").status_code == 200
    assert hub.calls == 1


def test_a_post_from_the_null_origin_is_refused() -> None:
    hub = Hub()
    assert_refused(hub.request("POST", headers={"origin": "null"}), "cross-origin")
    assert hub.calls == 0


def test_a_cross_site_post_without_an_origin_is_refused() -> None:
    hub = Hub()
    response = hub.request("POST", headers={"sec-fetch-site": "cross-site"})
    assert_refused(response, "cross-site requests may not change anything here")
    assert hub.calls == 0


def test_a_read_with_a_foreign_origin_passes_without_granting_cors() -> None:
    hub = Hub()
    response = hub.request("GET", headers={"origin": "http://evil.example"})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers
    cross_site = hub.request("GET", headers={"sec-fetch-site": "cross-site"})
    assert cross_site.status_code == 200
    assert hub.calls == 2


def test_a_refusal_on_the_openai_api_uses_openai_s_error_shape() -> None:
    hub = Hub()
    for headers in ({"host": "evil.example:8710"}, {"origin": "http://evil.example"}):
        response = hub.request("POST", "/v1/chat/completions", headers)
        assert response.status_code == 403
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert error["type"] == "invalid_request_error"
        assert error["param"] is None
        assert error["code"] is None
    assert hub.calls == 0


def test_a_streamed_answer_passes_through_unbuffered() -> None:
    hub = Hub()
    scope = http_scope([(b"host", b"127.0.0.1:8710")], "/api/stream")
    sent = raw(hub.app, scope, [{"type": "http.request", "body": b""}])
    bodies = [m["body"] for m in sent if m["type"] == "http.response.body" and m["body"]]
    assert bodies == [b"data: 0\n\n", b"data: 1\n\n", b"data: 2\n\n"]


def test_a_same_origin_websocket_is_accepted() -> None:
    hub = Hub()
    sent = websocket(hub, [(b"host", b"127.0.0.1:8710"), (b"origin", ORIGIN.encode())])
    assert sent[0]["type"] == "websocket.accept"
    assert hub.calls == 1


def test_a_websocket_for_a_foreign_host_or_origin_is_closed_as_a_policy_violation() -> None:
    hub = Hub()
    for headers in (
        [(b"host", b"evil.example:8710")],
        [],
        [(b"host", b"127.0.0.1:8710"), (b"origin", b"http://evil.example")],
        [(b"host", b"127.0.0.1:8710"), (b"origin", b"null")],
        [(b"host", b"127.0.0.1:8710"), (b"sec-fetch-site", b"cross-site")],
    ):
        sent = websocket(hub, headers)
        assert sent == [{"type": "websocket.close", "code": 1008, "reason": ""}]
    assert hub.calls == 0


def test_lifespan_and_other_scopes_pass_through_untouched() -> None:
    seen: list[Scope] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)

    scope: Scope = {"type": "lifespan", "asgi": {"version": "3.0"}}
    raw(LocalGuard(inner, allowed_hosts=HOSTS), scope, [])
    assert seen == [scope]


def test_a_guard_with_no_allowed_hosts_is_a_mistake() -> None:
    with pytest.raises(ValueError, match="at least one allowed host"):
        LocalGuard(Hub().app, allowed_hosts=[])
    with pytest.raises(TypeError, match="not one string"):
        LocalGuard(Hub().app, allowed_hosts="127.0.0.1:8710")


class Health:
    def health(self) -> dict[str, object]:
        return {"status": "ready", "seats": []}


def test_create_app_installs_the_guard_inside_the_security_headers() -> None:
    app = create_app(Health(), allowed_hosts=HOSTS)
    assert request(app, "GET", "/api/health").json() == {
        "status": "ready",
        "seats": [],
        "owner": True,
    }
    refused = request(app, "GET", "/api/health", {"host": "evil.example:8710"})
    assert_refused(refused, "the Host header is not one this hub serves")
    assert "script-src 'self'" in refused.headers["content-security-policy"]
    assert refused.headers["x-content-type-options"] == "nosniff"


def test_create_app_without_allowed_hosts_has_no_guard() -> None:
    app = create_app(Health())
    assert request(app, "GET", "/api/health", {"host": "evil.example:8710"}).status_code == 200


def test_local_hosts_names_what_a_browser_sends_to_the_listener() -> None:
    assert local_hosts("127.0.0.1", 8710) == ["127.0.0.1:8710", "localhost:8710"]
    assert local_hosts("::1", 8710) == ["[::1]:8710", "localhost:8710"]
    assert local_hosts("[::1]", 8710) == ["[::1]:8710", "localhost:8710"]
    assert local_hosts("192.168.1.20", 8710) == ["192.168.1.20:8710"]
    assert local_hosts("fe80::1", 8710) == ["[fe80::1]:8710"]
    assert local_hosts("hub.lan", 80) == ["hub.lan:80"]
