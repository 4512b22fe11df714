"""Hybrid model choice in Debian's Chromium: the smallest model answers at once, a larger one
downloads in the background and takes over between answers, and a second visit downloads
neither."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest
from playwright.sync_api import Browser, Route, expect

from council.datafolder import DataFolder
from council.models.demo import DemoShape, write_demo_model
from tests.browser.conftest import as_owner, screenshot
from tests.browser.test_seat import (
    LOAD_TIMEOUT,
    ask,
    loaded_from,
    model_bytes_sent,
    wait_for_model_urls,
)
from tests.hubs import HubProcess

# About 6.6 MB: larger than the stick's demo model, and still quick to download.
LARGER = DemoShape(embedding_length=256, block_count=4, feed_forward_length=768)


def catalog(hub: HubProcess) -> dict[str, dict[str, object]]:
    models = httpx.get(f"{hub.url}/api/models", timeout=10).json()["models"]
    return {str(model["path"]): model for model in models}


@pytest.fixture
def hub_with_a_larger_model(
    start_hub: Callable[..., HubProcess], isolated_data: DataFolder
) -> tuple[HubProcess, dict[str, dict[str, object]]]:
    """A hub with the demo seats' models and one larger model, every file hashed; its catalog."""
    write_demo_model(isolated_data.models / "larger.gguf", name="larger", shape=LARGER)
    hub = start_hub()
    hub.wait_ok()
    wait_for_model_urls(hub)
    return hub, catalog(hub)


def test_the_smallest_model_answers_first_and_a_larger_one_takes_over_once_downloaded(
    hub_with_a_larger_model: tuple[HubProcess, dict[str, dict[str, object]]], browser: Browser
) -> None:
    hub, models = hub_with_a_larger_model
    larger = models["larger.gguf"]
    small = min(models.values(), key=lambda model: int(str(model["size_bytes"])))
    sizes = {str(m["url"]): int(str(m["size_bytes"])) for m in (small, larger)}
    context = as_owner(browser.new_context(viewport={"width": 1280, "height": 1000}))
    held: list[Route] = []
    # The larger model's download waits until the small one has answered, so the order is sure.
    released = False

    def hold(route: Route) -> None:
        if released:
            route.continue_()
        else:
            held.append(route)

    context.route("**/larger.gguf", hold)
    try:
        page = context.new_page()
        page.goto(f"{hub.url}/seat/")
        assert loaded_from(page)[0] == "hub"
        expect(page.locator("#reasons")).to_contain_text(
            "a larger model, council demo (larger, random weights) · 6.6 MB, also fits, so it "
            "downloads in the background while the smallest answers"
        )
        expect(page.locator("#fetch-larger")).to_be_checked()
        ask(page, "Hello from the small model")
        expect(page.locator("#reply")).to_have_attribute("data-model", str(small["name"]))

        for _ in range(300):
            if held:
                break
            page.wait_for_timeout(100)
        assert held, "the larger model's download never started"
        released = True
        for route in held:
            route.continue_()
        body = page.locator("body")
        expect(body).to_have_attribute("data-larger", "ready", timeout=LOAD_TIMEOUT)
        expect(page.locator("#answered-by")).to_contain_text(
            "Now answering with council demo (larger, random weights)"
        )
        expect(page.locator("#larger-status")).to_contain_text("from the hub; kept in this")
        ask(page, "Hello from the larger model")
        expect(page.locator("#reply")).to_have_attribute("data-model", str(larger["name"]))
        joined = page.locator("body").get_attribute("data-council-seat")
        assert seat_model(hub, joined) == "larger.gguf (in the tab)"  # told the hub on the swap
        screenshot(page, "seat-hybrid-larger")
        sent = {url: model_bytes_sent(hub, url) for url in sizes}
        assert sent == sizes

        again = context.new_page()
        again.goto(f"{hub.url}/seat/")
        assert loaded_from(again) == ("storage", 0)
        expect(again.locator("body")).to_have_attribute(
            "data-larger", "ready", timeout=LOAD_TIMEOUT
        )
        assert again.locator("body").get_attribute("data-larger-source") == "storage"
        expect(again.locator("#larger-status")).to_have_text(
            "Loaded from this browser's storage: 0 B downloaded."
        )
        assert {url: model_bytes_sent(hub, url) for url in sizes} == sizes  # nothing more sent
    finally:
        context.close()


def test_a_visitor_who_unticks_the_background_fetch_keeps_the_small_model_on_later_visits(
    hub_with_a_larger_model: tuple[HubProcess, dict[str, dict[str, object]]], browser: Browser
) -> None:
    hub, models = hub_with_a_larger_model
    larger_url = str(models["larger.gguf"]["url"])
    small = min(models.values(), key=lambda model: int(str(model["size_bytes"])))
    context = as_owner(browser.new_context(viewport={"width": 1280, "height": 1000}))
    try:
        page = context.new_page()
        page.goto(f"{hub.url}/seat/?model=larger.gguf")  # an explicit choice: nothing else fetched
        loaded_from(page)
        expect(page.locator("#reasons")).to_contain_text(
            "no larger model is fetched in the background, since the address names this one"
        )
        expect(page.locator("#larger-choice")).to_be_hidden()

        page = context.new_page()
        page.goto(f"{hub.url}/seat/")
        expect(page.locator("#fetch-larger")).to_be_enabled()
        page.locator("#fetch-larger").uncheck()
        sent = model_bytes_sent(hub, larger_url)

        later = context.new_page()
        later.goto(f"{hub.url}/seat/")
        loaded_from(later)
        expect(later.locator("#fetch-larger")).not_to_be_checked()
        ask(later, "Hello from the small model, by choice")
        expect(later.locator("#reply")).to_have_attribute("data-model", str(small["name"]))
        assert later.locator("body").get_attribute("data-larger") is None
        assert model_bytes_sent(hub, larger_url) == sent
        screenshot(later, "seat-hybrid-declined")
    finally:
        context.close()


def seat_model(hub: HubProcess, name: str | None, timeout: float = 10) -> str:
    """The model /api/seats lists for the browser seat `name`, once it has changed from the
    smallest (the tab tells the hub of a swap in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        seats = httpx.get(f"{hub.url}/api/seats", timeout=10).json()["seats"]
        model = next((str(seat["model"]) for seat in seats if seat["name"] == name), "")
        if model.startswith("larger") or time.monotonic() > deadline:
            return model
        time.sleep(0.05)
