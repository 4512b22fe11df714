"""The council page in Debian's Chromium, against a real hub with real demo seats."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, Page, expect

from council.config import HubConfig, SeatConfig, save_config
from council.datafolder import DataFolder
from council.defaults import demo_seats
from council.models.demo import write_demo_model
from council.settings import RoundDefaults
from tests.browser.conftest import new_page, screenshot
from tests.fakes import cloud_seat, url_of
from tests.hubs import HubProcess

StartHub = Callable[..., HubProcess]


def open_hub(page: Page, hub: HubProcess) -> None:
    hub.wait_ok()
    page.goto(hub.url)
    expect(page.locator("#hub-status")).to_have_text("all seats ready", timeout=30_000)
    expect(page.locator("#seat-choice input")).not_to_have_count(0)


def ask(page: Page, question: str) -> None:
    page.locator("#question").fill(question)
    page.locator("#question").press("Enter")


def last_round(page: Page):  # type: ignore[no-untyped-def]
    return page.locator(".round").last


def test_a_synthesize_round_from_question_to_the_chairs_answer(
    start_hub: StartHub, page: Page
) -> None:
    hub = start_hub()
    open_hub(page, hub)
    expect(page.locator("#demo-banner")).to_contain_text("noise")
    ask(page, "What makes a good council?")
    round_ = last_round(page)
    expect(round_).to_have_attribute("data-state", "done", timeout=60_000)
    answers = round_.locator(".stage-answer .pane")
    expect(answers).to_have_count(3)
    for index in range(3):
        expect(answers.nth(index)).to_have_attribute("data-state", "done")
        expect(answers.nth(index).locator(".pane-state")).to_contain_text("tokens")
    reviews = round_.locator(".review")
    expect(reviews).to_have_count(3)
    expect(reviews.first.locator(".legend")).to_contain_text("Labels it saw: A = demo-")
    expect(reviews.first.locator(".extracted")).to_have_text(
        "Ranking unparsed: no FINAL RANKING block"
    )
    expect(round_.locator(".aggregate table tbody tr")).to_have_count(3)
    expect(round_.locator(".chair h3")).to_have_text("Final answer · chair: demo-1")
    expect(round_.locator(".chair-text")).not_to_be_empty()
    expect(page.locator("#title")).to_have_text("What makes a good council?")
    expect(page.locator(".conversation-title").first).to_have_text("What makes a good council?")
    expect(page.locator("#question")).to_be_focused()
    expect(page.locator("#stop")).to_be_hidden()
    screenshot(page, "round-laptop")
    round_.locator(".chair").scroll_into_view_if_needed()
    screenshot(page, "round-laptop-chair")


def test_a_follow_up_stays_in_the_conversation_and_is_there_after_a_reload(
    start_hub: StartHub, page: Page
) -> None:
    hub = start_hub()
    open_hub(page, hub)
    page.locator("#question").fill("line one")
    page.locator("#question").press("Shift+Enter")
    page.locator("#question").press_sequentially("line two")
    expect(page.locator("#question")).to_have_value("line one\nline two")
    expect(page.locator(".round")).to_have_count(0)  # Shift+Enter is a newline, not send
    ask(page, "First question")
    expect(last_round(page)).to_have_attribute("data-state", "done", timeout=60_000)
    ask(page, "A follow-up")
    expect(page.locator(".round")).to_have_count(2)
    expect(last_round(page)).to_have_attribute("data-state", "done", timeout=60_000)
    (conversation,) = httpx.get(f"{hub.url}/api/conversations").json()["conversations"]
    assert conversation["messages"] == 2

    page.reload()
    expect(page.locator(".round")).to_have_count(0)
    page.locator(".conversation").first.click()
    expect(page.locator(".round")).to_have_count(2)
    expect(page.locator(".round .question-text").nth(1)).to_have_text("A follow-up")
    expect(page.locator(".round").first.locator(".review")).to_have_count(3)


def test_a_question_the_hub_refuses_says_why_and_leaves_no_conversation(
    start_hub: StartHub, browser: Browser
) -> None:
    hub = start_hub()
    hub.wait_ok()
    refused = ("status of 404",)  # the refusal itself, in the console
    with cloud_seat() as cloud, new_page(browser, refused) as page:
        seat: dict[str, object] = {"name": "cloud", "url": url_of(cloud), "model": "m"}
        seat |= {"token": cloud.token, "allow_private": True}  # the fake listens on loopback
        assert httpx.post(f"{hub.url}/api/seats", json=seat).status_code == 201
        open_hub(page, hub)
        page.locator("#chair").select_option("cloud")
        # The seat goes away behind the page's back, so the hub refuses the chair.
        assert httpx.delete(f"{hub.url}/api/seats/cloud").status_code == 204
        ask(page, "Who chairs?")
        expect(page.locator("#composer-error")).to_contain_text("cloud")
        expect(page.locator(".round")).to_have_count(0)
        expect(page.locator(".conversation")).to_have_count(0)
    assert httpx.get(f"{hub.url}/api/conversations").json()["conversations"] == []


def long_answers(folder: DataFolder) -> None:
    write_demo_model(folder.models / "slow.gguf", seed=21, context_length=65536)
    save_config(
        folder,
        HubConfig(
            seats=(SeatConfig("slow", "slow.gguf", ctx_size=32768),),
            council=RoundDefaults(max_tokens=30000),
        ),
    )


def test_stop_ends_a_running_round_and_keeps_what_was_written(
    start_hub: StartHub, page: Page, isolated_data: DataFolder
) -> None:
    long_answers(isolated_data)
    hub = start_hub()
    open_hub(page, hub)
    ask(page, "Go on forever")
    pane = last_round(page).locator(".pane").first
    expect(pane.locator(".pane-state")).to_contain_text("tokens…", timeout=30_000)
    page.locator("#stop").click()
    expect(last_round(page)).to_have_attribute("data-state", "cancelled", timeout=30_000)
    expect(pane).to_have_attribute("data-state", "cancelled")
    expect(pane.locator(".pane-error")).to_have_text("Stopped: stopped")
    expect(pane.locator(".pane-text")).not_to_be_empty()
    expect(page.locator("#send")).to_be_visible()


def test_a_failing_seat_shows_its_error_in_its_own_pane(
    start_hub: StartHub, page: Page, isolated_data: DataFolder
) -> None:
    write_demo_model(isolated_data.models / "real.gguf", seed=3)
    save_config(
        isolated_data,
        HubConfig(seats=(SeatConfig("real", "real.gguf"), SeatConfig("ghost", "gone.gguf"))),
    )
    hub = start_hub()
    hub.wait_for(lambda h: h["status"] == "degraded" and h["seats"][0]["state"] == "healthy")
    page.goto(hub.url)
    expect(page.locator("#seat-choice input")).to_have_count(2)
    ask(page, "Who answers?")
    round_ = last_round(page)
    expect(round_).to_have_attribute("data-state", "done", timeout=60_000)
    ghost = round_.locator('.pane[data-seat="ghost"]')
    expect(ghost).to_have_attribute("data-state", "failed")
    expect(ghost.locator(".pane-error")).to_have_text(
        "Failed: model file not found: models/gone.gguf"
    )
    expect(round_.locator(".notes")).to_contain_text("only real answered")
    screenshot(page, "failed-seat-laptop")


XSS_REPLY = (
    'Look: <img src=x onerror="window.__xss = 1"> and '
    "[click me](javascript:window.__xss=2) and <script>window.__xss = 3</script> **bold**"
)


def test_model_output_cannot_run_script(start_hub: StartHub, page: Page) -> None:
    hub = start_hub()
    open_hub(page, hub)
    with cloud_seat(replies={"xss": XSS_REPLY}) as cloud:
        added = httpx.post(
            f"{hub.url}/api/seats",
            json={
                "name": "xss",
                "url": url_of(cloud),
                "model": "xss",
                "token": cloud.token,
                "allow_private": True,
            },
        )
        assert added.status_code == 201
        page.reload()
        expect(page.locator("#seat-choice input")).to_have_count(4)
        for name in ("demo-2", "demo-3"):
            page.locator(f'#seat-choice input[value="{name}"]').uncheck()
        page.locator("#chair").select_option("xss")
        page.locator("#save-defaults").click()
        expect(page.locator("#save-defaults")).to_have_text("Saved as the defaults")
        defaults = httpx.get(f"{hub.url}/api/council/defaults").json()
        assert (defaults["seats"], defaults["chair"]) == (["demo-1", "xss"], "xss")
        ask(page, "Say something dangerous")
        expect(last_round(page)).to_have_attribute("data-state", "done", timeout=60_000)
    pane = last_round(page).locator('.stage-answer .pane[data-seat="xss"] .pane-text')
    expect(pane.locator("strong")).to_have_text("bold")
    expect(pane).to_contain_text('<img src=x onerror="window.__xss = 1">')  # shown as text
    expect(pane.locator("a")).to_have_text("click me")
    assert pane.locator("a").get_attribute("href") is None
    assert page.evaluate("window.__xss") is None
    assert last_round(page).locator("img, script").count() == 0
    for link in last_round(page).locator("a").all():
        assert not (link.get_attribute("href") or "").lower().startswith("javascript")
    expect(last_round(page).locator(".chair-text strong")).to_have_text("bold")


def test_a_conversation_exports_and_can_be_renamed_and_deleted(
    start_hub: StartHub, page: Page
) -> None:
    hub = start_hub()
    open_hub(page, hub)
    ask(page, "Export me")
    expect(last_round(page)).to_have_attribute("data-state", "done", timeout=60_000)
    with page.expect_download() as markdown:
        page.locator("#export-md").click()
    assert markdown.value.suggested_filename.endswith(".md")
    text = Path(markdown.value.path()).read_text(encoding="utf-8")
    assert text.startswith("# Export me")
    with page.expect_download() as exported:
        page.locator("#export-json").click()
    assert exported.value.suggested_filename.endswith(".json")

    page.locator("#rename").click()
    page.locator(".title-input").fill("Renamed")
    page.locator(".title-input").press("Enter")
    expect(page.locator("#title")).to_have_text("Renamed")
    expect(page.locator(".conversation-title").first).to_have_text("Renamed")

    page.locator("#search").fill("no such words")
    expect(page.locator("#conversations")).to_have_text("Nothing found.")
    page.locator("#search").fill("renam")
    expect(page.locator(".conversation-title")).to_have_text(["Renamed"])
    page.locator("#search").fill("")

    page.locator("#delete").click()
    expect(page.locator("#delete")).to_have_text("Confirm delete")
    page.locator("#delete").click()
    expect(page.locator("#title")).to_have_text("New conversation")
    expect(page.locator(".conversation")).to_have_count(0)
    assert httpx.get(f"{hub.url}/api/conversations").json()["conversations"] == []


def test_on_a_phone_the_seats_are_tabs_and_the_sidebar_a_drawer(
    start_hub: StartHub, browser: Browser
) -> None:
    hub = start_hub()
    with new_page(
        browser,
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
        device_scale_factor=2,
    ) as page:
        open_hub(page, hub)
        expect(page.locator("#sidebar")).not_to_be_in_viewport()
        ask(page, "Small screen?")
        round_ = last_round(page)
        expect(round_).to_have_attribute("data-state", "done", timeout=60_000)
        answers = round_.locator(".stage-answer")
        expect(answers.locator(".tab")).to_have_count(3)
        expect(answers.locator(".pane:visible")).to_have_count(1)
        answers.locator(".tab").nth(1).click()
        expect(answers.locator(".pane:visible")).to_have_attribute("data-seat", "demo-2")
        screenshot(page, "round-phone")
        page.locator("#menu").click()
        expect(page.locator("#sidebar")).to_be_in_viewport()
        expect(page.locator(".conversation-title").first).to_have_text("Small screen?")
        screenshot(page, "sidebar-phone")


def test_on_a_phone_the_seats_panel_shows_a_failed_seats_whole_reason(
    start_hub: StartHub, browser: Browser, isolated_data: DataFolder
) -> None:
    missing = "nowhere/a-model-that-was-deleted-from-the-stick-long-ago.gguf"
    save_config(isolated_data, HubConfig(seats=(*demo_seats(), SeatConfig("lost", missing))))
    hub = start_hub()
    hub.wait_for(lambda health: "starting" not in {seat["state"] for seat in health["seats"]})
    with new_page(
        browser,
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
        device_scale_factor=2,
    ) as page:
        page.goto(hub.url)
        page.locator("#menu").click()
        page.locator("#show-seats").click()
        row = page.locator('#seats-table tr[data-seat="lost"]')
        expect(row).to_have_attribute("data-state", "failed")
        reason = row.locator(".reason")
        expected = f"model file not found: models/{missing}"
        expect(reason).to_have_text(expected)
        assert reason.inner_text() == expected
        seen = reason.evaluate(
            """(node) => {
                const box = node.getBoundingClientRect();
                return {scroll: node.scrollWidth, client: node.clientWidth, left: box.left,
                        right: box.right, width: document.documentElement.clientWidth};
            }"""
        )
        assert seen["scroll"] <= seen["client"], seen  # wrapped, not cut
        assert seen["left"] >= 0, seen  # on the screen, not off the side of a wide table
        assert seen["right"] <= seen["width"], seen
        screenshot(page, "seats-phone")


def test_the_seats_panel_lists_seats_and_adds_and_removes_a_remote_one(
    start_hub: StartHub, page: Page
) -> None:
    hub = start_hub()
    open_hub(page, hub)
    page.locator("#show-seats").click()
    rows = page.locator("#seats-table tbody tr")
    expect(rows).to_have_count(3)
    options = page.locator("#local-model option")  # a seated model may be seated again
    expect(options).to_have_count(3)
    expect(options.first).to_contain_text("seated 1")
    expect(rows.first).to_contain_text("demo model: noise")
    expect(rows.first).to_contain_text("F16")
    expect(rows.first).to_contain_text("healthy")
    form = page.locator("#remote-form")
    form.locator('input[name="name"]').fill("cloud")
    form.locator('input[name="url"]').fill("https://api.example.invalid")
    form.locator('input[name="model"]').fill("big-model")
    form.locator('input[name="token"]').fill("sk-secret")
    form.locator('button[type="submit"]').click()
    expect(rows).to_have_count(4)
    expect(page.locator('#seats-table tr[data-seat="cloud"]')).to_contain_text("remote")
    screenshot(page, "seats-laptop")
    page.locator('button[aria-label="Remove cloud"]').click()
    expect(rows).to_have_count(3)


def test_a_model_on_the_stick_is_seated_from_the_seats_panel(
    start_hub: StartHub, page: Page, isolated_data: DataFolder
) -> None:
    hub = start_hub()
    open_hub(page, hub)
    write_demo_model(isolated_data.models / "extra.gguf", seed=8)
    page.locator("#show-seats").click()
    expect(page.locator("#local-model option")).to_have_count(4)
    page.locator("#local-model").select_option("extra.gguf")
    page.locator("#local-form button[type=submit]").click()
    row = page.locator('#seats-table tr[data-seat="extra"]')
    expect(row).to_be_visible()
    expect(row).to_have_attribute("data-state", "healthy", timeout=30_000)
    expect(page.locator('#seat-choice input[value="extra"]')).to_be_checked()
    page.locator('button[aria-label="Remove extra"]').click()
    expect(row).to_have_count(0)


def test_the_page_is_an_installable_app_with_an_offline_shell(
    start_hub: StartHub, page: Page
) -> None:
    hub = start_hub()
    open_hub(page, hub)
    manifest = page.locator('link[rel="manifest"]').get_attribute("href")
    assert manifest is not None
    response = httpx.get(f"{hub.url}{manifest}")
    assert response.json()["display"] == "standalone"
    scope = page.evaluate("navigator.serviceWorker.ready.then((r) => r.scope)")
    assert scope == f"{hub.url}/"
    cached = page.evaluate("caches.keys().then((keys) => keys.length)")
    assert cached >= 1


def test_the_hub_refuses_a_foreign_host_and_cross_origin_writes(start_hub: StartHub) -> None:
    hub = start_hub()
    hub.wait_ok()
    rebound = httpx.get(f"{hub.url}/api/conversations", headers={"host": "attacker.example"})
    assert rebound.status_code == 403
    forged = httpx.post(
        f"{hub.url}/api/conversations", json={}, headers={"origin": "http://attacker.example"}
    )
    assert forged.status_code == 403
    assert httpx.get(f"{hub.url}/api/conversations").json()["conversations"] == []


def test_the_seats_panel_seats_a_model_again_with_its_own_sampling(
    start_hub: StartHub, page: Page
) -> None:
    hub = start_hub()
    open_hub(page, hub)
    page.locator("#show-seats").click()
    form = page.locator("#local-form")
    form.locator("#local-model").select_option("demo/demo-1.gguf")
    form.locator('input[name="temperature"]').fill("0.3")
    form.locator('input[name="seed"]').fill("9")
    form.locator('textarea[name="system_prompt"]').fill("Answer in one line.")
    form.locator("button[type=submit]").click()
    row = page.locator('#seats-table tr[data-seat="demo-1-2"]')
    expect(row).to_contain_text("temperature 0.3 · seed 9 · own system prompt")
    expect(row).to_have_attribute("data-state", "healthy", timeout=30_000)
    seats = {seat["name"]: seat for seat in hub_seats(hub)}
    assert seats["demo-1-2"]["model"] == "demo/demo-1.gguf"
    assert (seats["demo-1-2"]["temperature"], seats["demo-1-2"]["seed"]) == (0.3, 9)


def hub_seats(hub: HubProcess) -> list[dict[str, Any]]:
    seats: list[dict[str, Any]] = httpx.get(f"{hub.url}/api/seats", timeout=10).json()["seats"]
    return seats
