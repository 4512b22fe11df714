"""The Seats panel's "Add another hub", against two real hubs (the peer's LAN listener on
127.0.0.2) in Debian's Chromium."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from council.config import HubConfig, save_config
from council.datafolder import DataFolder
from council.defaults import demo_seats
from council.engine.binary import EngineBinary
from tests.browser.conftest import new_page, screenshot
from tests.hubs import HubProcess, free_port

StartHub = Callable[..., HubProcess]


def pairing_link(engine: EngineBinary, peer: HubProcess) -> str:
    env = {**os.environ, "COUNCIL_LLAMA_SERVER": str(engine.path)}
    made = subprocess.run(
        [sys.executable, "-m", "council", "pair", "--data", str(peer.data), "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    return str(json.loads(made.stdout)["url"])


def test_another_hub_is_paired_from_the_seats_panel_and_its_seats_join(
    start_hub: StartHub, engine_binary: EngineBinary, page: Page, tmp_path: Path
) -> None:
    folder = DataFolder(tmp_path / "peer-stick")
    folder.root.mkdir()
    folder.prepare()
    save_config(folder, HubConfig(seats=demo_seats()))
    peer = start_hub(
        folder.root, "--lan", "--lan-host", "127.0.0.2", "--lan-port", str(free_port())
    )
    hub = start_hub()
    hub.wait_ok()
    peer.wait_ok()
    page.goto(hub.url)
    expect(page.locator("#hub-status")).to_have_text("all seats ready", timeout=30_000)
    page.locator("#show-seats").click()
    rows = page.locator("#seats-table tbody tr")
    expect(rows).to_have_count(3)

    form = page.locator("#peer-form")
    form.locator('input[name="url"]').fill(pairing_link(engine_binary, peer))
    form.locator('input[name="name"]').fill("kitchen")
    form.locator('button[type="submit"]').click()
    listed = page.locator('#peer-list li[data-peer="kitchen"]')
    expect(listed).to_have_attribute("data-state", "reachable", timeout=30_000)
    expect(listed).to_contain_text("3 seats")
    expect(rows).to_have_count(6, timeout=30_000)
    row = page.locator('#seats-table tr[data-seat="kitchen/demo-2"]')
    expect(row).to_contain_text("peer")
    expect(row).to_contain_text("ready")
    expect(row.locator("button")).to_have_count(0)  # a peer's seat goes when the peer is forgotten
    expect(page.locator('#seat-choice input[value="kitchen/demo-1"]')).to_have_count(1)
    screenshot(page, "seats-peer")

    page.locator('button[aria-label="Forget kitchen"]').click()
    expect(listed).to_have_count(0)
    expect(rows).to_have_count(3)


def test_a_link_that_is_not_a_pairing_link_is_refused_with_the_reason(
    start_hub: StartHub, browser: Browser
) -> None:
    hub = start_hub()
    hub.wait_ok()
    with new_page(browser, expected=("400",), viewport={"width": 1440, "height": 900}) as page:
        page.goto(hub.url)
        page.locator("#show-seats").click()
        form = page.locator("#peer-form")
        form.locator('input[name="url"]').fill("https://127.0.0.2:8711/somewhere")
        form.locator('button[type="submit"]').click()
        expect(page.locator("#peer-error")).to_contain_text("that is not a pairing link")
        expect(page.locator("#peer-list li")).to_have_count(0)


# Chromium on Linux has no BarcodeDetector and this machine no camera: both are stood in for,
# the camera by a canvas's own stream, the detector by one that sees the link on its second look.
FAKE_CAMERA_AND_DETECTOR = """
navigator.mediaDevices.getUserMedia = async () => {
  const canvas = document.createElement("canvas");
  canvas.getContext("2d").fillRect(0, 0, 10, 10);
  return canvas.captureStream(5);
};
window.BarcodeDetector = class {
  constructor(options) { this.formats = options.formats; window.__looks = 0; }
  async detect() {
    window.__looks += 1;
    return window.__looks < 2 ? [] : [{ rawValue: "https://127.0.0.2:8711/pair#code=abc&fp=00" }];
  }
};
"""


def test_where_the_browser_reads_qr_codes_the_camera_fills_in_the_link(
    start_hub: StartHub, browser: Browser
) -> None:
    hub = start_hub()
    hub.wait_ok()
    with new_page(browser, viewport={"width": 1440, "height": 900}) as page:
        page.goto(hub.url)
        page.locator("#show-seats").click()
        expect(page.locator("#scan-peer")).to_be_hidden()  # no BarcodeDetector here
    with new_page(browser, viewport={"width": 1440, "height": 900}) as page:
        page.add_init_script(FAKE_CAMERA_AND_DETECTOR)
        page.goto(hub.url)
        page.locator("#show-seats").click()
        page.locator("#scan-peer").click()
        url = page.locator('#peer-form input[name="url"]')
        expect(url).to_have_value("https://127.0.0.2:8711/pair#code=abc&fp=00")
        expect(page.locator("#scan-view")).to_be_hidden()  # the camera is off again
        expect(page.locator("#scan-peer")).to_have_text("Scan its QR code")
