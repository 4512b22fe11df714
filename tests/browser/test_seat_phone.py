"""The browser seat on a paired phone: Chromium emulating a Pixel 7, over the LAN listener's real
HTTPS (trusting only the stick's CA), loads the model into the tab and joins the council as
"browser (phone)"; the laptop's round gets its answer. Also: a page served from an address that
is not a secure context says so and turns to the host."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from playwright.sync_api import Browser, Route, expect

from council.datafolder import DataFolder
from tests.browser.conftest import as_owner, new_page, screenshot
from tests.browser.test_phone import (
    browser_at_home,
    home_trusting,
    lan_hub,
    pairing_url,
    phone_profile,
)
from tests.browser.test_seat import expect_the_host_to_answer, wait_for_model_urls
from tests.browser.test_seat_council import joined_seat, listed
from tests.hubs import HubProcess, ask_round, new_conversation

__all__ = ["lan_hub"]  # the fixture, shared with test_phone


def test_a_paired_phone_runs_the_model_in_its_tab_over_https_and_joins_the_council(
    lan_hub: tuple[HubProcess, str], browser: Browser, isolated_data: DataFolder, tmp_path: Path
) -> None:
    hub, base = lan_hub
    wait_for_model_urls(hub)
    home = home_trusting(tmp_path / "phone-home", isolated_data.tls / "ca.pem")
    with browser_at_home(browser, home) as phone, new_page(phone, **phone_profile()) as page:
        page.goto(pairing_url(base))
        page.get_by_role("button", name="Pair").click()
        expect(page.locator("#pair-status")).to_contain_text("Paired as")

        page.goto(f"{base}/seat/")
        name = joined_seat(page)
        assert page.evaluate("[isSecureContext, crossOriginIsolated]") == [True, True]
        expect(page.locator("#reasons")).to_contain_text("this page is cross-origin isolated")
        expect(page.locator("#council-status")).to_have_text(
            f"Joined the council as {name}, shown as “browser (phone)”."
        )
        assert listed(hub, name)["label"] == "browser (phone)"
        screenshot(page, "seat-phone")

        conversation = new_conversation(hub)
        events = ask_round(
            hub,
            conversation,
            "Name a fruit.",
            seats=["demo-1", name],
            chair="demo-1",
            max_tokens=16,
            stage_timeout=100,
        )
        assert events[-1][1]["status"] == "done"
        stored = httpx.get(f"{hub.url}/api/conversations/{conversation}", timeout=10).json()
        [answer] = [
            out
            for out in stored["messages"][-1]["outputs"]
            if out["seat"] == name and out["stage"] == "answer"
        ]
        assert answer["status"] == "done", answer
        assert answer["content"].strip()


def test_a_page_that_is_not_a_secure_context_says_so_and_turns_to_the_host(
    hub: HubProcess, browser: Browser
) -> None:
    """Served as http://seat.example (a name, not loopback), the page is not a secure context;
    every request is answered by the real hub through Playwright's routing."""
    wait_for_model_urls(hub)
    context = as_owner(browser.new_context(viewport={"width": 1280, "height": 900}), hub.url)

    def through_the_hub(route: Route) -> None:
        path = re.sub(r"^http://seat\.example", "", route.request.url)
        route.fulfill(response=route.fetch(url=f"{hub.url}{path}"))

    try:
        context.route("http://seat.example/**", through_the_hub)
        page = context.new_page()
        page.goto("http://seat.example/seat/")
        assert page.evaluate("[isSecureContext, crossOriginIsolated]") == [False, False]
        # The host's /v1 would answer it; this routed copy of the page is of another origin, so
        # the hub's own origin check refuses its POSTs, and the test stops at the decision.
        expect_the_host_to_answer(
            page,
            "this page is not a secure context (it came over plain HTTP from another address), "
            "so the browser withholds cross-origin isolation and WebGPU",
        )
    finally:
        context.close()
