"""Logging in to the page in Debian's Chromium: the link `council up` prints is the way in,
once; a browser without it is shown how to get one."""

from __future__ import annotations

from playwright.sync_api import Browser, expect

from tests.hubs import HubProcess
from tests.integration.test_owner_auth import printed_login_link


def test_the_printed_login_link_opens_the_page_once_and_a_browser_without_it_is_asked_to_log_in(
    hub: HubProcess, browser: Browser
) -> None:
    link = printed_login_link(hub)
    contexts = [browser.new_context() for _ in range(3)]  # three browsers, none logged in
    try:
        stranger, owner, latecomer = (context.new_page() for context in contexts)
        stranger.goto(hub.url)
        expect(stranger).to_have_url(f"{hub.url}/login")
        expect(stranger.locator("#login-status")).to_have_text("Not logged in.")
        expect(stranger.locator("#login-help")).to_contain_text("council login")

        owner.goto(link)
        expect(owner).to_have_url(f"{hub.url}/")
        expect(owner.locator("#hub-status")).to_have_text("all seats ready", timeout=30_000)
        assert owner.evaluate("document.cookie") == ""  # HttpOnly: no script reads the session

        latecomer.goto(link)  # the same link, used up
        expect(latecomer.locator("#login-status")).to_contain_text("used up or expired")
        assert "#code=" not in latecomer.url  # the code left the address bar
    finally:
        for context in contexts:
            context.close()
