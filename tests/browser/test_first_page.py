"""The first page, in a real browser, against a real hub with real demo seats."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.browser.conftest import screenshot
from tests.hubs import HubProcess

StartHub = Callable[..., HubProcess]


def test_the_first_page_shows_the_seats_coming_up_and_the_demo_banner(
    start_hub: StartHub, page: Page
) -> None:
    hub = start_hub()
    hub.wait_serving()
    page.goto(hub.url)
    expect(page.locator("#status")).to_have_text("All seats are ready.", timeout=60_000)
    rows = page.locator("#seats tbody tr")
    expect(rows).to_have_count(3)
    for index, name in enumerate(["demo-1", "demo-2", "demo-3"]):
        expect(rows.nth(index)).to_contain_text(name)
        expect(rows.nth(index)).to_contain_text("healthy")
        expect(rows.nth(index)).to_contain_text("demo model: noise")
    expect(page.locator("#demo-banner")).to_contain_text("To add real models, copy GGUF files")
    screenshot(page, "first-page-laptop")


def test_the_first_page_sends_a_strict_content_security_policy(
    start_hub: StartHub, page: Page
) -> None:
    hub = start_hub()
    hub.wait_serving()
    response = page.goto(hub.url)
    assert response is not None
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
