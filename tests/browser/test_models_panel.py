"""The Models panel in Debian's Chromium against a real hub and the loopback Hugging Face
stand-in (tests/fake_hf.py): search, a repository's files and whether each fits here, a
throttled pull watched and cancelled, a pull to the stick, seating it, and a file too big for
this laptop pulled anyway. The page's event streams are counted by a wrapper around
EventSource, so that "one stream, closed when nothing needs it" is seen, not assumed."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from playwright.sync_api import Browser, Page, expect

from council.models.demo import write_demo_model
from council.models.starter import starter_model
from council.units import human_size
from tests.browser.conftest import new_page, screenshot
from tests.fake_hf import FakeFile, FakeHub, running_hub
from tests.hubs import HubProcess

StartHub = Callable[..., HubProcess]
REPO = "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF"
STARTER = "SmolLM2-135M-Instruct.Q4_1.gguf"
TIGHT = "SmolLM2-135M-Instruct.Q8_0.gguf"
TOO_BIG = "SmolLM2-135M-Instruct.F16.gguf"
GATED = "demo/tiny-GGUF"
GONE = "demo/gone-GGUF"
MODEL = f"SmolLM2-135M-Instruct-GGUF/{STARTER}"

# Every EventSource the page opens on /api/pulls/events, kept for the test to look at.
COUNT_STREAMS = """
window.pullStreams = [];
window.EventSource = class extends window.EventSource {
  constructor(url, options) {
    super(url, options);
    if (String(url).includes("/api/pulls/events")) window.pullStreams.push(this);
  }
};
"""


@pytest.fixture
def fake_hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeHub]:
    with running_hub() as hub:
        hub.add(REPO, {STARTER: starter_model()}, downloads=900)
        tiny = write_demo_model(tmp_path / "tiny-F16.gguf")
        hub.add(GATED, {"tiny-F16.gguf": tiny}, downloads=10, gated=True)
        hub.add(GONE, {"tiny-F16.gguf": tiny}, downloads=5)
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.delenv("HF_TOKEN", raising=False)
        yield hub


def stream_states(page: Page) -> list[int]:
    """The readyState of each pull stream the page opened: 0 connecting, 1 open, 2 closed."""
    states: list[int] = page.evaluate("window.pullStreams.map((stream) => stream.readyState)")
    return states


def progress_value(page: Page) -> float:
    value: float = page.locator(".pull progress").first.evaluate("(bar) => bar.value")
    return value


def test_the_owner_searches_pulls_cancels_pulls_again_and_seats_the_model(
    fake_hub: FakeHub, start_hub: StartHub, browser: Browser
) -> None:
    hub = start_hub()
    hub.wait_ok()
    # Two more files in the starter's repository, listed with sizes that make one tight and one
    # too big on this machine (the table reads only their sizes; nothing downloads them). The
    # too-big one is bigger than the stick's free space too: pulled anyway, it fails at once.
    (starter,) = httpx.get(f"{hub.url}/api/hf/files", params={"repo": REPO}).json()["candidates"]
    beyond = starter["memory"] - starter["size"]  # the KV cache and the engine, the same for all
    available = psutil.virtual_memory().available
    tight = int(available * 0.9) - beyond
    too_big = 2 * max(available, shutil.disk_usage(hub.data).free)
    gguf = starter_model()
    files = fake_hub.repos[REPO].files
    files[TIGHT] = FakeFile(gguf, tight, "a" * 64)
    files[TOO_BIG] = FakeFile(gguf, too_big, "b" * 64)
    size = gguf.stat().st_size

    refused = ("status of 404",)  # the repository that went away, in the console
    with new_page(browser, refused, viewport={"width": 1200, "height": 800}) as page:
        page.add_init_script(COUNT_STREAMS)
        page.goto(hub.url)
        models = page.get_by_role("button", name="Models", exact=True)
        models.click()
        panel = page.get_by_role("dialog", name="Models")
        expect(panel).to_be_visible()
        expect(models).to_have_attribute("aria-expanded", "true")
        query = page.get_by_label("Search Hugging Face")
        expect(query).to_be_focused()
        expect(page.locator("#pulls-empty")).to_have_text("No pulls yet.")
        page.wait_for_function("window.pullStreams.length === 1")
        page.wait_for_function("window.pullStreams[0].readyState === 1")

        # ---- search: most downloaded first, the gated one tagged -----------------------------
        query.fill("gguf")
        query.press("Enter")
        repos = page.locator("#hf-repos .repo")
        expect(page.locator("#hf-repos .repo-name")).to_have_text([REPO, GATED, GONE])
        expect(repos.nth(0).locator(".repo-meta")).to_have_text("900 downloads · 1 like")
        expect(repos.nth(0).locator(".gated")).to_have_count(0)
        expect(repos.nth(1).locator(".gated")).to_have_text("gated")
        expect(repos.nth(2).locator(".gated")).to_have_count(0)

        # ---- an error from the hub is shown in the panel, in its own words -------------------
        del fake_hub.repos[GONE]  # gone from the Hub after the search listed it
        page.locator(f'.repo[data-repo="{GONE}"]').click()
        expect(page.locator("#models-error")).to_contain_text(f"no repository {GONE} on ")
        expect(page.locator("#hf-files")).to_be_hidden()

        # ---- the file table: sizes as the CLI prints them, fit marks, the suggested row -----
        page.locator(f'.repo[data-repo="{REPO}"]').click()
        expect(page.locator(f'.repo[data-repo="{REPO}"]')).to_have_attribute("aria-pressed", "true")
        expect(page.locator("#models-error")).to_be_hidden()
        rows = page.locator("#hf-files-table tbody tr")
        expect(rows).to_have_count(3)
        expect(rows.locator(".file-name")).to_have_text(
            [f"{STARTER} suggested", TIGHT, TOO_BIG]  # smallest first
        )
        row = {name: page.locator(f'#hf-files-table tr[data-file="{name}"]') for name in files}
        expect(row[STARTER].locator("td")).to_have_text(
            ["Q4_1", "98.4 MB", human_size(starter["memory"]), "fits", "Pull"]
        )
        expect(row[TIGHT].locator("td")).to_have_text(
            ["Q8_0", human_size(tight), human_size(tight + beyond), "tight", "Pull"]
        )
        expect(row[TOO_BIG].locator("td")).to_have_text(
            ["F16", human_size(too_big), human_size(too_big + beyond), "too big", "Pull"]
        )
        assert human_size(size) == "98.4 MB"
        expect(row[STARTER]).to_have_attribute("data-chosen", "true")
        expect(page.locator("#hf-files-table .suggested")).to_have_count(1)
        marks = page.locator("#hf-files-table .fit").evaluate_all(
            "(marks) => marks.map((mark) => getComputedStyle(mark).backgroundColor)"
        )
        assert len(set(marks)) == 3, marks  # each mark looks different, besides its words
        expect(page.locator("#hf-available")).to_have_text(
            re.compile(
                rf"^Memory available here: [\d.]+ [KMGT]?B\. Suggested: {re.escape(STARTER)}, "
                r"the largest that fits\.$"
            )
        )
        expect(page.locator("#hf-files-title")).to_have_text(f"{REPO} at main (0123456)")

        # ---- a throttled pull: the bar grows; the stream outlives the panel while it runs --
        fake_hub.faults.throttle = 10_000_000
        pull_button = row[STARTER].locator(".pull-button")
        pull_button.click()
        expect(pull_button).to_have_text("Pulling…")  # pressing it again would be the same pull
        expect(pull_button).to_be_disabled()
        first = page.locator(".pull").first
        expect(first).to_have_attribute("data-state", "running")
        expect(first.locator(".pull-what")).to_have_text(f"{STARTER} from {REPO}")
        expect(first.locator("progress")).to_have_attribute("max", str(size))
        page.wait_for_function("document.querySelector('.pull progress').value > 0")
        before = progress_value(page)
        page.wait_for_function(
            "(v) => document.querySelector('.pull progress').value > v", arg=before
        )
        assert before < progress_value(page) < size
        expect(first.locator(".pull-numbers")).to_have_text(
            re.compile(r"^[\d.]+ [KM]?B of 98\.4 MB · [\d.]+ [KM]B/s · \d+ s left$")
        )
        panel.get_by_role("button", name="Close models").click()
        expect(panel).to_be_hidden()
        expect(page.locator("#models-badge")).to_have_text(re.compile(r"^\d+%$"))
        assert stream_states(page) == [1]  # a pull runs: its stream stays open
        models.click()
        expect(panel).to_be_visible()
        assert stream_states(page) == [1]  # and serves the panel again: still one stream

        first.get_by_role("button", name=f"Cancel the pull of {STARTER}").click()
        expect(first).to_have_attribute("data-state", "cancelled")
        expect(first.locator(".pull-state")).to_have_text("cancelled")
        expect(first.get_by_role("button")).to_have_count(0)
        assert progress_value(page) < size  # it stopped short
        assert list((hub.data / "downloads").iterdir()) == []  # nothing kept to resume
        assert not list((hub.data / "models").rglob(STARTER))
        expect(pull_button).to_have_text("Pull")
        expect(pull_button).to_be_enabled()
        expect(page.locator("#models-badge")).to_be_hidden()

        # ---- the same file again, at full speed, to the stick; then seated ------------------
        fake_hub.faults.throttle = None
        pull_button.click()
        expect(page.locator(".pull")).to_have_count(2)
        done = page.locator(".pull").first  # the newest first
        expect(done).to_have_attribute("data-state", "done", timeout=60_000)
        expect(done.locator(".pull-numbers")).to_have_text(f"98.4 MB on the stick: models/{MODEL}")
        assert done.locator("progress").evaluate("(bar) => [bar.value, bar.max]") == [size, size]
        expect(page.locator(".pull").nth(1)).to_have_attribute("data-state", "cancelled")
        assert (hub.data / "models" / MODEL).read_bytes() == gguf.read_bytes()

        done.get_by_role("button", name=f"Seat {STARTER}").click()
        seated = done.locator("button.seated")
        expect(seated).to_have_text(re.compile(r"^Seated as \S+$"), timeout=30_000)
        name = seated.inner_text().removeprefix("Seated as ")
        seats = {seat["name"]: seat for seat in httpx.get(f"{hub.url}/api/seats").json()["seats"]}
        assert seats[name]["model"] == MODEL
        assert seats[name]["kind"] == "local"
        expect(page.locator(f'#seat-choice input[value="{name}"]')).to_have_count(1)

        page.get_by_role("button", name="Seats", exact=True).click()
        expect(panel).to_be_hidden()
        expect(page.locator(f'#seats-table tr[data-seat="{name}"]')).to_contain_text(MODEL)
        assert stream_states(page) == [2]  # closed with the panel: nothing runs

        models.click()
        expect(panel).to_be_visible()
        expect(page.locator("#seats-panel")).to_be_hidden()
        page.wait_for_function("window.pullStreams.length === 2")
        expect(done.locator("button.seated")).to_have_text(f"Seated as {name}")
        expect(page.locator("#hf-files-table tbody tr")).to_have_count(3)  # still on show
        query.blur()  # no focus ring in the picture
        screenshot(page, "models-panel")  # docs/images/models-panel.png is a copy of it

        # ---- too big: a first press only asks; the second pulls with force ------------------
        big = row[TOO_BIG].locator(".pull-button")
        big.click()
        expect(big).to_have_text("Pull anyway")
        assert len(httpx.get(f"{hub.url}/api/pulls").json()["pulls"]) == 2  # nothing asked yet
        with page.expect_request(
            lambda request: request.url.endswith("/api/pulls") and request.method == "POST"
        ) as asked:
            big.click()
        assert asked.value.post_data_json == {
            "repo": REPO,
            "file": TOO_BIG,
            "revision": "main",
            "force": True,
        }
        failed = page.locator(".pull").first
        expect(failed).to_have_attribute("data-state", "failed", timeout=30_000)
        error = failed.locator(".pull-error")
        expect(error).to_be_visible()
        expect(error).to_contain_text(f"{TOO_BIG} needs {human_size(too_big)} more but the stick")
        expect(error).not_to_contain_text("add --force")  # the hub got the force

        # A pull of it asked for elsewhere, without force, fails saying so; its row offers the
        # page's way of adding --force.
        unforced = {"repo": REPO, "file": TOO_BIG}
        assert httpx.post(f"{hub.url}/api/pulls", json=unforced).status_code == 202
        expect(page.locator(".pull")).to_have_count(4)
        refusal = page.locator(".pull").first
        expect(refusal).to_have_attribute("data-state", "failed", timeout=30_000)
        expect(refusal.locator(".pull-error")).to_contain_text("add --force to pull it anyway")
        with page.expect_request(
            lambda request: request.url.endswith("/api/pulls") and request.method == "POST"
        ) as asked:
            refusal.get_by_role("button", name=f"Pull {TOO_BIG} anyway").click()
        assert asked.value.post_data_json == {**unforced, "revision": "main", "force": True}
        expect(page.locator(".pull")).to_have_count(5)
        expect(page.locator(".pull").first.locator(".pull-error")).to_contain_text(
            "more but the stick", timeout=30_000
        )

        # ---- Escape closes the panel, the focus goes back, the stream is closed -------------
        query.focus()
        page.keyboard.press("Escape")
        expect(panel).to_be_hidden()
        expect(models).to_be_focused()
        expect(models).to_have_attribute("aria-expanded", "false")
        page.wait_for_function("window.pullStreams.every((stream) => stream.readyState === 2)")
        assert stream_states(page) == [2, 2]
