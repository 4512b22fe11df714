"""The Devices panel in Debian's Chromium against a real hub: pair a phone with a QR code,
approve its claim, rename it, revoke it. The phone's side is `pairing.exchange` on the hub's
database, as the LAN listener would call it."""

from __future__ import annotations

import re
from urllib.parse import parse_qs

from playwright.sync_api import Page, expect

from council.datafolder import DataFolder
from council.security import pairing
from council.store import devices as store
from council.store.db import connect
from tests.browser.conftest import screenshot
from tests.hubs import HubProcess

PHONE = "192.168.1.23"


def code_of(url: str) -> str:
    return parse_qs(url.split("#", 1)[1])["code"][0]


def test_the_owner_pairs_approves_renames_and_revokes_a_phone(hub: HubProcess, page: Page) -> None:
    page.goto(hub.url)
    page.get_by_role("button", name="Devices", exact=True).click()
    panel = page.get_by_role("dialog", name="Devices")
    expect(panel).to_be_visible()
    expect(page.locator("#lan-note")).to_have_text(
        "Phones can't reach this hub yet: start it with council up --lan."
    )
    expect(page.locator("#devices-empty")).to_be_visible()

    panel.get_by_role("button", name="Pair a phone").click()
    qr = page.get_by_role("img", name="QR code of the pairing link")
    expect(qr).to_be_visible()
    expect(qr).to_have_attribute("src", re.compile(r"^data:image/svg\+xml;base64,"))
    page.wait_for_function("document.getElementById('pair-qr').naturalWidth > 0")
    first_url = page.get_by_label("Pairing link").input_value()
    assert re.fullmatch(r"https://\S+/pair#code=[\w-]+&fp=[0-9a-f]{64}", first_url), first_url
    expect(page.locator("#pair-expiry")).to_have_text(re.compile(r"^Expires in [45]:\d\d$"))
    expect(page.locator("#pair-comparison")).to_be_hidden()
    screenshot(page, "devices-pair")

    panel.get_by_label("Ask me to confirm").check()
    panel.get_by_role("button", name="New code").click()
    expect(page.get_by_label("Pairing link")).not_to_have_value(first_url)
    expect(page.locator("#pair-comparison")).to_be_visible()
    shown = re.search(r"\d{6}", page.locator("#pair-comparison").inner_text())
    assert shown is not None
    comparison = shown.group()

    db = connect(DataFolder(hub.data).database)
    try:
        code = code_of(page.get_by_label("Pairing link").input_value())
        waiting = pairing.exchange(db, code, "Test phone", PHONE)  # the phone scans the code
        assert not waiting.paired
        assert waiting.comparison == comparison
        claim = page.locator(f'.pending-claim[data-comparison="{comparison}"]')
        expect(claim).to_have_text(re.compile(rf"Test phone at {PHONE} shows {comparison}"))
        screenshot(page, "devices-pending")
        claim.get_by_role("button", name=re.compile("^Approve")).click()
        expect(page.locator("#pending-section")).to_be_hidden()
        expect(page.locator("#pair-result")).to_have_text(
            "Approved Test phone: it pairs on its next try."
        )
        paired = pairing.exchange(db, code, "Test phone", PHONE)  # the phone's next poll
        assert paired.paired
        assert paired.token is not None

        row = page.locator(f'#devices-table tr[data-device="{paired.device_id}"]')
        expect(row).to_have_attribute("data-state", "active")
        expect(row).to_contain_text(PHONE)
        expect(page.locator("#pair-result")).to_have_text("Paired Test phone.")
        expect(qr).to_be_hidden()  # the code is spent: nothing left to scan or copy
        expect(page.get_by_label("Pairing link")).to_be_hidden()
        screenshot(page, "devices-paired")

        row.get_by_role("button", name="Rename Test phone").click()
        name = row.get_by_label("New name for Test phone")
        name.fill("Kitchen phone")
        name.press("Enter")
        expect(row.locator(".device-name")).to_have_text("Kitchen phone")
        assert store.list_devices(db)[0].name == "Kitchen phone"

        row.get_by_role("button", name="Revoke Kitchen phone").click()
        confirm = row.get_by_role("button", name="Confirm: revoke Kitchen phone")
        expect(confirm).to_be_visible()
        assert pairing.authenticate(db, paired.token, PHONE) is not None  # one press is not enough
        confirm.click()
        expect(row).to_have_attribute("data-state", "revoked")
        expect(row.locator(".state")).to_have_text(re.compile(r"^revoked \d{4}-\d\d-\d\d"))
        expect(row.get_by_role("button", name=re.compile("^Revoke"))).to_have_count(0)
        assert pairing.authenticate(db, paired.token, PHONE) is None
    finally:
        db.close()

    page.locator("#devices-audit summary").click()
    expect(page.locator("#audit-list li").first).to_contain_text("revoked")
    expect(page.locator("#audit-list")).to_contain_text("confirmed")
    screenshot(page, "devices-revoked")
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(page.get_by_role("button", name="Devices", exact=True)).to_be_focused()


def test_a_rejected_claim_leaves_no_device(hub: HubProcess, page: Page) -> None:
    page.goto(hub.url)
    page.get_by_role("button", name="Devices", exact=True).click()
    page.get_by_label("Ask me to confirm").check()
    page.get_by_role("button", name="Pair a phone").click()
    expect(page.locator("#pair-comparison")).to_be_visible()
    code = code_of(page.get_by_label("Pairing link").input_value())
    db = connect(DataFolder(hub.data).database)
    try:
        claimed = pairing.exchange(db, code, "Stranger", "192.168.1.66")
        claim = page.locator(f'.pending-claim[data-comparison="{claimed.comparison}"]')
        claim.get_by_role("button", name=re.compile("^Reject")).click()
        expect(page.locator("#pending-section")).to_be_hidden()
        expect(page.locator("#pair-result")).to_have_text("Rejected Stranger.")
        expect(page.locator("#pair-qr")).to_be_hidden()
        assert pairing.pending(db) == []
        assert store.list_devices(db) == []
    finally:
        db.close()
    expect(page.locator("#devices-empty")).to_be_visible()


def test_a_pairing_code_counts_down_and_goes_away_when_it_expires(
    hub: HubProcess, page: Page
) -> None:
    page.clock.install()
    page.goto(hub.url)
    page.get_by_role("button", name="Devices", exact=True).click()
    page.get_by_role("button", name="Pair a phone").click()
    expiry = page.locator("#pair-expiry")
    expect(expiry).to_have_text(re.compile(r"^Expires in [45]:\d\d$"))
    page.clock.fast_forward("01:30")
    expect(expiry).to_have_text(re.compile(r"^Expires in 3:\d\d$"))
    page.clock.fast_forward("04:00")
    expect(page.locator("#pair-result")).to_have_text("This code has expired.")
    expect(page.locator("#pair-qr")).to_be_hidden()
    expect(page.get_by_label("Pairing link")).to_be_hidden()
    page.get_by_role("button", name="New code").click()
    expect(page.locator("#pair-qr")).to_be_visible()
    expect(page.locator("#pair-result")).to_be_empty()
