"""A phone's whole first visit, in Debian's Chromium emulating a Pixel 7, over real HTTPS.

The hub runs with `--lan` (bound to loopback); the phone opens the URL of the pairing QR code,
pairs, follows the page's link into the council UI and gets the chair's answer. Chromium trusts
the stick's CA the way a person's browser would, through its NSS trust store ($HOME/.pki/nssdb):
no certificate error is ignored, and a browser without the CA gets a certificate error.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Error, expect, sync_playwright

from council.datafolder import DataFolder
from tests.browser.conftest import CHROMIUM, FLAGS, new_page, screenshot
from tests.hubs import HubProcess, free_port

StartHub = Callable[..., HubProcess]
PHONE = "Pixel 7"


def phone_profile(name: str = PHONE) -> dict[str, Any]:
    """Playwright's descriptor of the phone, as `new_context` options.

    The session's Playwright (the `browser` fixture's) does not expose its device list, and a
    second sync Playwright cannot start on a thread that runs one, so a short-lived one on a
    worker thread reads it.
    """

    def read() -> dict[str, Any]:
        with sync_playwright() as playwright:
            return dict(playwright.devices[name])

    with ThreadPoolExecutor(max_workers=1) as worker:
        profile = worker.submit(read).result(timeout=60)
    assert profile.pop("default_browser_type") == "chromium"
    assert profile["is_mobile"]
    assert profile["has_touch"]
    return profile


def home_trusting(home: Path, ca: Path | None) -> Path:
    """A HOME whose NSS database (what Chromium on Linux trusts) holds only `ca`, if any."""
    certutil = shutil.which("certutil")
    if certutil is None:
        pytest.fail("certutil is missing: `make test` installs Debian's libnss3-tools")
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    database = f"sql:{nssdb}"
    subprocess.run([certutil, "-d", database, "-N", "--empty-password"], check=True)
    if ca is not None:
        subprocess.run(
            [certutil, "-d", database, "-A", "-t", "C,,", "-n", "council-test-ca", "-i", str(ca)],
            check=True,
        )
        listed = subprocess.run(
            [certutil, "-d", database, "-L"], check=True, capture_output=True, text=True
        ).stdout
        assert "council-test-ca" in listed
    return home


@contextmanager
def browser_at_home(session: Browser, home: Path) -> Iterator[Browser]:
    """Chromium of its own, with this HOME (so this trust store); no certificate error ignored."""
    env: dict[str, str | float | bool] = {**os.environ, "HOME": str(home)}
    browser = session.browser_type.launch(executable_path=CHROMIUM, args=FLAGS, env=env)
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture
def lan_hub(start_hub: StartHub) -> tuple[HubProcess, str]:
    port = free_port()
    hub = start_hub(None, "--lan", "--lan-host", "127.0.0.1", "--lan-port", str(port))
    hub.wait_ok()
    return hub, f"https://127.0.0.1:{port}"


def pairing_url(base: str) -> str:
    made = subprocess.run(
        [sys.executable, "-m", "council", "pair", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    url: str = json.loads(made.stdout)["url"]
    assert url.startswith(f"{base}/pair#code="), url
    return url


def test_a_phone_opens_the_qr_link_pairs_and_gets_a_council_answer_over_https(
    lan_hub: tuple[HubProcess, str],
    browser: Browser,
    isolated_data: DataFolder,
    tmp_path: Path,
) -> None:
    hub, base = lan_hub
    url = pairing_url(base)
    home = home_trusting(tmp_path / "phone-home", isolated_data.tls / "ca.pem")
    with browser_at_home(browser, home) as phone, new_page(phone, **phone_profile()) as page:
        page.goto(url)  # raises on a certificate error: the CA must really be trusted
        expect(page).to_have_url(f"{base}/pair")  # the one-time code is wiped from the bar
        name = page.get_by_label("Name for this device")
        expect(name).to_have_value("Android phone")  # named from the Pixel's user agent
        name.fill("Kitchen Pixel")
        screenshot(page, "phone-pair")
        page.get_by_role("button", name="Pair").click()
        expect(page.locator("#pair-status")).to_have_text("Paired as Kitchen Pixel.")
        expect(page.locator("#base-url")).to_have_text(f"{base}/v1")
        expect(page.locator("#token")).to_have_text(re.compile(r"^council_\S+$"))
        screenshot(page, "phone-paired")

        (cookie,) = page.context.cookies()
        assert cookie["name"] == "council_device"
        assert (cookie["httpOnly"], cookie["secure"], cookie["sameSite"]) == (True, True, "Strict")
        assert cookie["domain"] == "127.0.0.1"
        assert page.evaluate("document.cookie") == ""  # HttpOnly: no script can read it

        page.get_by_role("link", name="council").click()
        expect(page).to_have_url(f"{base}/")
        assert page.evaluate("[location.protocol, window.isSecureContext]") == ["https:", True]
        expect(page.locator("#hub-status")).to_have_text("all seats ready", timeout=30_000)
        expect(page.locator("#show-devices")).to_be_hidden()  # pairing is the laptop's business
        # A guest: seats and defaults are the owner's, so their controls are not shown.
        expect(page.locator("#save-defaults")).to_be_hidden()
        expect(page.locator("#remote-form")).to_be_hidden()
        expect(page.locator("#local-form")).to_be_hidden()
        expect(page.locator("#seat-choice input")).to_have_count(3)
        page.locator("#question").fill("What should a phone ask the council?")
        page.locator("#send").tap()
        round_ = page.locator(".round").last
        expect(round_).to_have_attribute("data-state", "done", timeout=60_000)
        expect(round_.locator(".stage-answer .pane")).to_have_count(3)
        expect(round_.locator(".chair h3")).to_have_text("Final answer · chair: demo-1")
        answer = round_.locator(".chair-text")
        expect(answer).not_to_be_empty()
        assert answer.inner_text().strip()
        expect(page.locator("#title")).to_have_text("What should a phone ask the council?")
        answer.scroll_into_view_if_needed()
        screenshot(page, "phone-answer")

        scope = page.evaluate("navigator.serviceWorker.ready.then((r) => r.scope)")
        assert scope == f"{base}/"  # the offline shell installs on the LAN listener too

    (conversation,) = httpx.get(f"{hub.url}/api/conversations").json()["conversations"]
    assert conversation["title"] == "What should a phone ask the council?"
    assert conversation["messages"] == 1


def test_a_browser_without_the_ca_gets_a_certificate_error(
    lan_hub: tuple[HubProcess, str], browser: Browser, tmp_path: Path
) -> None:
    _, base = lan_hub
    url = pairing_url(base)
    home = home_trusting(tmp_path / "stranger-home", None)
    with browser_at_home(browser, home) as stranger:
        context = stranger.new_context(**phone_profile())
        try:
            with pytest.raises(Error, match=r"net::ERR_CERT_AUTHORITY_INVALID"):
                context.new_page().goto(url)
        finally:
            context.close()
