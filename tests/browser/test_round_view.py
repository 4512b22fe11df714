"""A long council round on the page: following it, reading it whole, copying and asking again."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from playwright.sync_api import Browser, Locator, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from council.config import HubConfig, SeatConfig, save_config
from council.datafolder import DataFolder
from council.models.demo import write_demo_model
from tests.browser.conftest import new_page
from tests.browser.test_ui import long_answers
from tests.hubs import HubProcess

StartHub = Callable[..., HubProcess]

# The thread's scroll position, as the person sees it.
THREAD = """() => {
  const t = document.getElementById("thread");
  const gap = t.scrollHeight - t.scrollTop - t.clientHeight;
  return { top: t.scrollTop, height: t.scrollHeight, gap };
}"""


def open_hub(page: Page, hub: HubProcess) -> None:
    hub.wait_ok()
    page.goto(hub.url)
    expect(page.locator("#hub-status")).to_have_text("all seats ready", timeout=30_000)
    expect(page.locator("#seat-choice input")).not_to_have_count(0)


def ask(page: Page, question: str) -> Locator:
    page.locator("#question").fill(question)
    page.locator("#question").press("Enter")
    return page.locator(".round").last


def finished(round_: Locator) -> Locator:
    expect(round_).to_have_attribute("data-state", "done", timeout=90_000)
    return round_


def stored_message(hub: HubProcess, index: int = 0) -> dict[str, Any]:
    (conversation,) = httpx.get(f"{hub.url}/api/conversations").json()["conversations"]
    messages = httpx.get(f"{hub.url}/api/conversations/{conversation['id']}").json()["messages"]
    return messages[index]  # type: ignore[no-any-return]


def clipboard(page: Page) -> str:
    return page.evaluate("navigator.clipboard.readText()")  # type: ignore[no-any-return]


def thread(page: Page) -> dict[str, float]:
    return page.evaluate(THREAD)  # type: ignore[no-any-return]


def wait_thread(page: Page, condition: str) -> None:
    """Until `condition` holds of `t`, the thread's position; sampled between frames, when
    the page has done with each frame's text and scrolling."""
    try:
        page.wait_for_function(
            f"() => {{ const t = ({THREAD})(); return {condition}; }}", polling=100, timeout=90_000
        )
    except PlaywrightTimeoutError:
        state = page.locator(".round").last.locator(".pane-state, .round-status").all_inner_texts()
        raise AssertionError(f"never {condition}: thread {thread(page)}, round {state}") from None


def demo_seats(folder: DataFolder) -> None:
    """Three seats on random-weight demo models: fast noise, 512 tokens an answer."""
    seats = []
    for seed in (1, 2, 3):
        write_demo_model(folder.models / f"demo-{seed}.gguf", seed=seed)
        seats.append(SeatConfig(f"demo-{seed}", f"demo-{seed}.gguf"))
    save_config(folder, HubConfig(seats=tuple(seats)))


def settled(page: Page) -> dict[str, float]:
    """The thread's position once a wheel's smooth scrolling has come to rest."""
    before = thread(page)
    for _ in range(40):
        page.wait_for_timeout(250)
        now = thread(page)
        if now["top"] == before["top"]:
            return now
        before = now
    raise AssertionError("the thread never stopped scrolling")


def test_each_answer_and_the_final_answer_copy_their_own_text(
    start_hub: StartHub, page: Page, isolated_data: DataFolder
) -> None:
    demo_seats(isolated_data)
    hub = start_hub()
    open_hub(page, hub)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=hub.url)
    round_ = finished(ask(page, "Copy me"))
    message = stored_message(hub)
    answers = [o for o in message["outputs"] if o["stage"] == "answer"]
    assert len(answers) == 3
    for output in answers:
        copy = round_.locator(f'.pane[data-seat="{output["seat"]}"] button.copy')
        expect(copy).to_have_accessible_name(f"Copy {output['seat']}'s answer")
        copy.click()
        expect(copy).to_have_text("Copied")
        assert clipboard(page) == output["content"]  # the model's own text, not the page's HTML
    copy = round_.locator(".chair button.copy")
    expect(copy).to_have_accessible_name("Copy the final answer")
    copy.click()
    expect(copy).to_have_text("Copied")
    assert clipboard(page) == message["answer"]
    expect(copy).to_have_text("Copy", timeout=5_000)


def test_a_long_answer_folds_when_the_round_ends_and_opens_whole(
    start_hub: StartHub, page: Page, isolated_data: DataFolder
) -> None:
    demo_seats(isolated_data)
    hub = start_hub()
    open_hub(page, hub)
    round_ = finished(ask(page, "Say a lot"))
    pane = round_.locator(".stage-answer .pane").first
    toggle = pane.get_by_role("button", name="Show the whole answer")
    expect(toggle).to_be_visible()
    expect(toggle).to_have_attribute("aria-expanded", "false")
    fold = pane.locator(".fold")
    assert fold.evaluate("(box) => box.scrollHeight > box.clientHeight")  # folded, so: long

    toggle.click()
    expect(pane.get_by_role("button", name="Show less")).to_have_attribute("aria-expanded", "true")
    for box in (fold, pane.locator(".pane-text")):
        assert box.evaluate("(box) => box.scrollHeight <= box.clientHeight + 1")  # nothing cut off
    assert pane.locator(".pane-text").evaluate("(box) => getComputedStyle(box).overflowY") == (
        "visible"
    )  # and no box of its own to scroll

    page.reload()  # the same conversation, replayed from the store, folds the same way
    page.locator(".conversation").first.click()
    replayed = page.locator(".round .stage-answer .pane").first
    expect(replayed.get_by_role("button", name="Show the whole answer")).to_be_visible()


def test_ask_again_asks_the_same_question_again_in_the_same_conversation(
    start_hub: StartHub, page: Page, isolated_data: DataFolder
) -> None:
    demo_seats(isolated_data)
    hub = start_hub()
    open_hub(page, hub)
    first = finished(ask(page, "Once more?"))
    page.locator("#question").fill("a draft")
    first.locator(".chair").get_by_role("button", name="Ask again").click()
    rounds = page.locator(".round")
    expect(rounds).to_have_count(2)
    expect(rounds.nth(1).locator(".question-text")).to_have_text("Once more?")
    expect(page.locator("#question")).to_have_value("a draft")  # what was typed stays
    finished(rounds.nth(1))
    (conversation,) = httpx.get(f"{hub.url}/api/conversations").json()["conversations"]
    assert conversation["messages"] == 2
    assert stored_message(hub, 1)["question"] == "Once more?"


def test_when_the_round_ends_the_view_lands_on_the_start_of_the_final_answer(
    start_hub: StartHub, browser: Browser, isolated_data: DataFolder
) -> None:
    demo_seats(isolated_data)
    hub = start_hub()
    # A short window, so the final answer is taller than the thread and following the text to
    # its end alone would leave the answer's start out of sight.
    with new_page(browser, viewport={"width": 1100, "height": 560}) as page:
        open_hub(page, hub)
        round_ = finished(ask(page, "Where do I look?"))
        chair = round_.locator(".chair")
        page.wait_for_function(
            """() => {
              const thread = document.getElementById("thread").getBoundingClientRect();
              const chair = document.querySelector(".round .chair").getBoundingClientRect();
              return Math.abs(chair.top - thread.top) < 40;
            }""",
            polling=100,
        )
        expect(chair.locator("h3")).to_be_in_viewport()
        assert chair.evaluate(
            "(c) => c.offsetHeight > document.getElementById('thread').clientHeight"
        )  # so it could only be the landing, not the end of the text, that shows it


def test_scrolling_up_during_a_round_stops_following_until_back_at_the_bottom(
    start_hub: StartHub, browser: Browser, isolated_data: DataFolder
) -> None:
    long_answers(isolated_data)
    hub = start_hub()
    # A phone's width: the answer grows by many lines a second even on a busy CPU.
    with new_page(browser, viewport={"width": 420, "height": 640}) as page:
        open_hub(page, hub)
        ask(page, "Go on and on")
        expect(page.locator(".pane-state").first).to_contain_text("tokens…", timeout=30_000)
        wait_thread(page, "t.gap <= 2 && t.top > 300")  # the newest text in view, past the window

        box = page.locator("#thread").bounding_box()
        assert box is not None
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.wheel(0, -250)
        wait_thread(page, "t.gap > 150")
        read_at = settled(page)
        wait_thread(page, f"t.height > {read_at['height'] + 150}")
        assert abs(thread(page)["top"] - read_at["top"]) <= 1  # left where the person put it

        # Back to the bottom, as dragging the scroll bar there does (a wheel's travel is
        # capped, and a busy machine writes faster than a few turns of it catch up with).
        page.locator("#thread").evaluate("t => t.scrollTo({ top: t.scrollHeight })")
        wait_thread(page, "t.gap <= 2")
        back_at = thread(page)
        wait_thread(page, f"t.gap <= 2 && t.height > {back_at['height'] + 150}")  # following again
        page.locator("#stop").click()
        expect(page.locator(".round")).to_have_attribute("data-state", "cancelled", timeout=30_000)
