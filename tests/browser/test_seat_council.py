"""A tab of Debian's Chromium runs the demo model with wllama and takes part in a council round
of a real hub, beside a real llama-server seat."""

from __future__ import annotations

import time
from typing import Any

import httpx
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import new_page, screenshot
from tests.browser.test_seat import LOAD_TIMEOUT, wait_for_model_urls
from tests.hubs import HubProcess, ask_round, new_conversation
from tests.integration.test_model_files import served_models


def joined_seat(page: Page) -> str:
    body = page.locator("body")
    expect(body).to_have_attribute("data-mode", "tab", timeout=LOAD_TIMEOUT)
    expect(body).to_have_attribute("data-council-seat", timeout=30_000)
    return str(body.get_attribute("data-council-seat"))


def listed(hub: HubProcess, name: str) -> dict[str, Any]:
    seats = httpx.get(f"{hub.url}/api/seats", timeout=10).json()["seats"]
    [seat] = [seat for seat in seats if seat["name"] == name]
    return dict(seat)


def test_a_tab_that_runs_the_model_joins_the_council_and_its_answer_is_stored(
    hub: HubProcess, browser: Browser
) -> None:
    wait_for_model_urls(hub)
    with new_page(browser, viewport={"width": 1280, "height": 1000}) as tab:
        tab.goto(f"{hub.url}/seat/")
        name = joined_seat(tab)
        expect(tab.locator("#join")).to_be_checked()
        expect(tab.locator("#council-status")).to_have_text(
            f"Joined the council as {name}, shown as “browser (this tab)”."
        )
        assert (listed(hub, name)["kind"], listed(hub, name)["label"]) == (
            "browser",
            "browser (this tab)",
        )
        # The tab names the model it runs (the smallest), and the hub counts tokens with it.
        running = tab.locator("body").get_attribute("data-answering-with")
        smallest = min(served_models(hub), key=lambda model: model["size_bytes"])
        assert running == smallest["name"]
        assert listed(hub, name)["model"] == f"{smallest['path']} (in the tab)"

        conversation = new_conversation(hub)
        events = ask_round(
            hub,
            conversation,
            "Name a colour.",
            seats=["demo-1", name],
            max_tokens=24,
            stage_timeout=100,
        )
        assert events[-1][1]["status"] == "done"
        assert any(kind == "seat_delta" and data["seat"] == name for kind, data in events)
        stored = httpx.get(f"{hub.url}/api/conversations/{conversation}", timeout=10).json()
        outputs = [out for out in stored["messages"][-1]["outputs"] if out["seat"] == name]
        answer = next(out for out in outputs if out["stage"] == "answer")
        assert answer["status"] == "done", answer
        assert answer["content"].strip()
        assert answer["completion_tokens"] > 0
        expect(tab.locator("#council-task")).to_contain_text("Answered (")
        screenshot(tab, "seat-council-tab")

        with new_page(browser, viewport={"width": 1280, "height": 900}) as council:
            council.goto(hub.url)
            chip = council.locator("#seat-choice label", has_text=name)
            expect(chip).to_have_text(f"{name}browser (this tab)")
            council.locator("#question").fill("Name a fruit.")
            council.locator("#send").click()
            round_ = council.locator(".round").last
            expect(round_).to_have_attribute("data-state", "done", timeout=100_000)
            pane = round_.locator(f'.stage-answer .pane[data-seat="{name}"]')
            expect(pane.locator("header")).to_contain_text(f"{name}browser (this tab)")
            expect(pane).to_have_attribute("data-state", "done")
            council.locator("#show-seats").click()
            row = council.locator(f'#seats-table tr[data-seat="{name}"]')
            expect(row).to_contain_text("browser (this tab)")
            expect(row.locator("button")).to_have_count(0)
            screenshot(council, "seat-council-seats")

        tab.locator("#join").uncheck()
        expect(tab.locator("#council-status")).to_have_text("Not in the council.")
        assert left_the_council(hub, name)


def left_the_council(hub: HubProcess, name: str) -> bool:
    for _ in range(100):
        seats = httpx.get(f"{hub.url}/api/seats", timeout=10).json()["seats"]
        if name not in {seat["name"] for seat in seats}:
            return True
        time.sleep(0.05)
    return False
