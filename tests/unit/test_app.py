from __future__ import annotations

import httpx

from council.server.app import create_app
from tests.running import run


class Health:
    def health(self) -> dict[str, object]:
        return {"status": "starting", "seats": [{"name": "a", "state": "starting"}]}


def request(method: str, path: str) -> httpx.Response:
    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(Health()))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            return await client.request(method, path)

    return run(send())


def test_health_reports_what_the_hub_says() -> None:
    response = request("GET", "/api/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "starting",
        "seats": [{"name": "a", "state": "starting"}],
        "owner": True,
    }
    assert response.headers["cache-control"] == "no-store"


def test_unknown_routes_and_methods_answer_with_a_json_error() -> None:
    missing = request("GET", "/api/nothing-here")
    assert missing.status_code == 404
    assert missing.json() == {"error": {"status": 404, "message": "Not Found"}}
    wrong = request("POST", "/api/health")
    assert wrong.status_code == 405
    assert wrong.json()["error"]["status"] == 405


def test_every_response_carries_the_security_headers() -> None:
    for path in ("/", "/static/app.js", "/api/health", "/missing"):
        headers = request("GET", path).headers
        assert "script-src 'self'" in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
