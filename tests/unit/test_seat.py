"""The browser seat's routes and headers, through the hub's app (no hub process, no browser)."""

from __future__ import annotations

import httpx
import pytest

from council.server.app import SECURITY_HEADERS, create_app
from council.server.seat import ISOLATION_HEADERS, SEAT_CSP
from council.settings import ENV_SEAT_ISOLATION as ISOLATION_ENV
from tests.running import run

ISOLATION = {name.decode(): value.decode() for name, value in ISOLATION_HEADERS}
HUB_CSP = dict(SECURITY_HEADERS)[b"content-security-policy"].decode()


class Health:
    def health(self) -> dict[str, object]:
        return {"status": "ok", "seats": []}


def get(path: str) -> httpx.Response:
    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(Health()))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            return await client.get(path)

    return run(send())


def isolation_of(response: httpx.Response) -> dict[str, str | None]:
    return {name: response.headers.get(name) for name in ISOLATION}


def test_the_seat_page_is_cross_origin_isolated_with_its_own_csp() -> None:
    page = get("/seat/")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-cache"
    assert isolation_of(page) == ISOLATION
    assert page.headers["content-security-policy"] == SEAT_CSP.decode()
    assert page.headers["x-content-type-options"] == "nosniff"


def test_the_seat_modules_are_isolated_too_and_the_rest_of_the_hub_is_not() -> None:
    assert isolation_of(get("/seat/seat.js")) == ISOLATION
    main = get("/static/app.js")
    assert isolation_of(main) == dict.fromkeys(ISOLATION)
    assert main.headers["content-security-policy"] == HUB_CSP
    assert "wasm-unsafe-eval" not in HUB_CSP


def test_seat_without_a_slash_redirects_to_the_page() -> None:
    response = get("/seat")
    assert response.status_code in {307, 308}
    assert response.headers["location"].endswith("/seat/")


def test_the_test_switch_serves_the_seat_without_isolation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ISOLATION_ENV, "off")
    page = get("/seat/")
    assert page.status_code == 200
    assert isolation_of(page) == dict.fromkeys(ISOLATION)
