"""The browser seat in Debian's Chromium (headless, CPU/WebAssembly), against a real hub."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Route, expect

from council.settings import ENV_SEAT_ISOLATION as ISOLATION_ENV
from tests.browser.conftest import as_owner, new_page, screenshot
from tests.hubs import HubProcess

StartHub = Callable[..., HubProcess]
ISOLATION = {
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-embedder-policy": "require-corp",
    "cross-origin-resource-policy": "same-origin",
}
LOAD_TIMEOUT = 120_000
SEAT_MODULES = tuple(
    f"/seat/{name}.js"
    for name in ("seat", "capabilities", "decide", "host", "join", "loading", "model", "page")
)
SHARED_MODULES = ("/static/lib/dom.js", "/static/lib/sse.js")


def open_seat(page: Page, hub: HubProcess) -> None:
    page.goto(f"{hub.url}/seat/")


def wait_for_model_urls(hub: HubProcess, timeout: float = 30) -> str:
    """The hub hashes model files after it starts; a browser can fetch them only then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        models = httpx.get(f"{hub.url}/api/models", timeout=10).json()["models"]
        if all(model["url"] for model in models):
            return str(min(models, key=lambda model: model["path"])["url"])
        time.sleep(0.1)
    pytest.fail(f"the hub never listed download URLs: {models}")


def model_bytes_sent(hub: HubProcess, url: str) -> int:
    """What the hub counts as sent of the model file at `url` (/models/<digest>/<name>)."""
    digest = url.split("/")[2]
    metrics = httpx.get(f"{hub.url}/metrics", timeout=10).text
    found = re.search(rf'^council_model_bytes_sent_total{{file="{digest}"}} (\S+)$', metrics, re.M)
    return int(float(found[1])) if found else 0


def ask(page: Page, question: str) -> None:
    page.locator("#prompt").fill(question)
    page.locator("#send").click()
    expect(page.locator("#reply")).to_have_attribute("data-state", "done", timeout=LOAD_TIMEOUT)
    expect(page.locator("#reply")).not_to_be_empty()


def test_the_page_and_the_wasm_it_loads_carry_the_isolation_headers(hub: HubProcess) -> None:
    for path in (
        "/seat/",
        *SEAT_MODULES,
        "/seat/vendor/index.js",
        "/seat/vendor/wllama.wasm",
        "/seat/vendor/compat/wllama.wasm",
        "/seat/vendor/compat/wllama.js",
    ):
        response = httpx.get(f"{hub.url}{path}", timeout=10)
        assert response.status_code == 200, path
        assert {name: response.headers.get(name) for name in ISOLATION} == ISOLATION, path
    for path in SHARED_MODULES:  # same origin: an isolated page may load them without the headers
        response = httpx.get(f"{hub.url}{path}", timeout=10)
        assert response.status_code == 200, path
        assert "javascript" in response.headers["content-type"], path
    wasm = httpx.head(f"{hub.url}/seat/vendor/wllama.wasm", timeout=10)
    assert wasm.headers["content-type"] == "application/wasm"
    csp = httpx.get(f"{hub.url}/seat/", timeout=10).headers["content-security-policy"]
    assert "script-src 'self' 'wasm-unsafe-eval';" in csp
    assert "worker-src 'self' blob:;" in csp
    main_page = httpx.get(hub.url, timeout=10)
    assert "wasm-unsafe-eval" not in main_page.headers["content-security-policy"]
    assert "cross-origin-embedder-policy" not in main_page.headers


def watch_errors(page: Page, errors: list[str]) -> Page:
    page.on("pageerror", lambda error: errors.append(str(error)))

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("console", on_console)
    return page


def loaded_from(page: Page) -> tuple[str | None, int]:
    """Where the tab got the model ("hub" or "storage") and the bytes the network delivered."""
    body = page.locator("body")
    expect(body).to_have_attribute("data-mode", "tab", timeout=LOAD_TIMEOUT)
    return body.get_attribute("data-model-source"), int(
        body.get_attribute("data-downloaded-bytes") or "-1"
    )


def test_an_isolated_tab_runs_the_model_on_threads_and_downloads_it_once(
    hub: HubProcess, browser: Browser
) -> None:
    """Pages of one browser context share its storage, as visits of one person do."""
    model_url = wait_for_model_urls(hub)
    size = httpx.head(f"{hub.url}{model_url}", timeout=10).headers["content-length"]
    context = as_owner(browser.new_context(viewport={"width": 1280, "height": 900}))
    errors: list[str] = []
    try:
        page = watch_errors(context.new_page(), errors)
        open_seat(page, hub)
        assert page.evaluate("crossOriginIsolated") is True
        source, downloaded = loaded_from(page)
        assert source == "hub"
        assert downloaded > int(size)  # the file and its response headers
        assert model_bytes_sent(hub, model_url) == int(size)
        expect(page.locator("#decision")).to_have_text("Runs in this tab.")
        expect(page.locator("#reasons")).to_contain_text("this page is cross-origin isolated")
        assert page.locator("body").get_attribute("data-multithread") == "true"
        assert int(page.locator("body").get_attribute("data-threads") or "0") > 1
        expect(page.locator("#runtime")).to_have_text(
            re.compile(r"Running on \d+ WebAssembly threads\.")
        )
        expect(page.locator("#download-status")).to_contain_text(
            "from the hub; kept in this browser"
        )
        ask(page, "Hello from the tab")
        expect(page.locator("#answered-by")).to_contain_text("the model in this tab")
        screenshot(page, "seat-in-tab")

        again = watch_errors(context.new_page(), errors)
        open_seat(again, hub)
        assert loaded_from(again) == ("storage", 0)
        assert model_bytes_sent(hub, model_url) == int(size)  # the hub sent nothing more
        expect(again.locator("#download-status")).to_have_text(
            "Loaded from this browser's storage: 0 B downloaded."
        )
        ask(again, "And again")
        screenshot(again, "seat-second-visit")

        again.locator("#clear-cache").click()
        expect(again.locator("#download-status")).to_have_text(
            "Downloaded models cleared from this browser."
        )
        after_clearing = watch_errors(context.new_page(), errors)
        open_seat(after_clearing, hub)
        assert loaded_from(after_clearing)[0] == "hub"
        assert errors == []
    finally:
        context.close()


def expect_the_host_to_answer(page: Page, reason: str) -> None:
    """The page decided for the host's seat, for `reason`, and shows no model card."""
    expect(page.locator("body")).to_have_attribute("data-mode", "host", timeout=30_000)
    expect(page.locator("#decision")).to_have_text(
        "The host's engine answers, not this tab, because:"
    )
    expect(page.locator("#reasons")).to_have_text(reason)
    expect(page.locator("#answered-by")).to_have_text("Answers come from the host's seat demo-1.")
    expect(page.locator("#model-card")).to_be_hidden()


def test_without_isolation_the_page_says_why_and_the_host_answers(
    start_hub: StartHub, browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ISOLATION_ENV, "off")
    hub = start_hub()
    hub.wait_ok()
    response = httpx.get(f"{hub.url}/seat/", timeout=10)
    assert not any(name in response.headers for name in ISOLATION)
    with new_page(browser, viewport={"width": 1280, "height": 900}) as page:
        open_seat(page, hub)
        assert page.evaluate("crossOriginIsolated") is False
        expect_the_host_to_answer(
            page,
            "this page is not cross-origin isolated (the hub sent it without the COOP/COEP "
            "headers), so WebAssembly could use only one thread — too slow for a model",
        )
        ask(page, "Hello from a tab that can't")
        screenshot(page, "seat-host-fallback")


def test_the_ask_box_and_another_caller_take_turns_with_the_model(
    hub: HubProcess, page: Page
) -> None:
    """wllama runs one completion at a time: a second caller waits for the first to finish."""
    wait_for_model_urls(hub)
    open_seat(page, hub)
    loaded_from(page)
    page.locator("#prompt").fill("Hello from the Ask box")
    page.locator("#send").click()
    other = page.evaluate("window.councilSeat.generate('Hello from another caller', 16)")
    expect(page.locator("#reply")).to_have_attribute("data-state", "done", timeout=LOAD_TIMEOUT)
    expect(page.locator("#reply")).not_to_be_empty()
    assert other["text"]
    assert other["usage"]["completion_tokens"] == 16
    expect(page.locator("body")).to_have_attribute("data-model-busy", "false")


def test_a_download_that_stalls_gives_way_to_the_host_and_says_why(
    hub: HubProcess, browser: Browser
) -> None:
    wait_for_model_urls(hub)
    context = as_owner(browser.new_context(viewport={"width": 1280, "height": 900}))
    held: list[Route] = []

    def hold(route: Route) -> None:  # never answered: not a byte of the model arrives
        held.append(route)

    try:
        context.add_init_script("window.councilSeatStallMs = 1500")
        context.route("**/*.gguf", hold)
        page = context.new_page()
        open_seat(page, hub)
        expect(page.locator("body")).to_have_attribute("data-mode", "host", timeout=30_000)
        assert held, "the page never asked for the model"
        expect(page.locator("#reasons")).to_have_text(
            "the model could not load in this tab (no model bytes arrived for 1.5 s)"
        )
        expect(page.locator("#download-status")).to_have_text(
            "Stopped: no model bytes arrived for 1.5 s."
        )
        ask(page, "Hello from a tab whose download stalled")
    finally:
        context.close()


BROWSER = {
    "secure": True,
    "isolated": True,
    "webgpu": False,
    "shaderF16": False,
    "jspi": True,
    "memory64": True,
    "compat": False,
    "deviceMemoryGb": 8,
    "cores": 4,
    "quota": 10 * 2**30,
    "free": 10 * 2**30,
}
CATALOG = [
    {"path": "small.gguf", "name": "small", "size_bytes": 300 * 2**20, "url": "/models/a/s.gguf"},
    {"path": "large.gguf", "name": "large", "size_bytes": 3 * 2**30, "url": "/models/b/l.gguf"},
]
DECIDE = (
    "([facts, catalog, asked]) => "
    "import('/seat/decide.js').then((seat) => seat.decide(facts, catalog, asked))"
)


def decision(page: Page, asked: str | None = None, **facts: object) -> dict[str, Any]:
    """The page's own `decide()` for a browser with `facts` (over BROWSER) and CATALOG, the
    address naming the model `asked` or none. The module is pure: importing it runs nothing."""
    return dict(page.evaluate(DECIDE, [{**BROWSER, **facts}, CATALOG, asked]))


def test_the_decision_follows_what_the_browser_can_do_and_says_why(
    hub: HubProcess, page: Page
) -> None:
    wait_for_model_urls(hub)
    open_seat(page, hub)
    loaded_from(page)

    able = decision(page)
    assert able["where"] == "tab"
    assert (able["model"]["path"], able["larger"]["path"]) == ("small.gguf", "large.gguf")
    assert "there is no WebGPU adapter, so the CPU does the work" in able["reasons"]

    named = decision(page, asked="large.gguf")
    assert (named["model"]["path"], named["larger"]) == ("large.gguf", None)
    assert named["reasons"][1] == "the model asked for, large · 3.2 GB, fits in this tab's 4.3 GB"

    gpu = decision(page, webgpu=True, shaderF16=True)["reasons"]
    assert "a WebGPU adapter with shader-f16 is available, so layers run on the GPU" in gpu
    no_f16 = decision(page, webgpu=True)["reasons"]
    assert (
        "the WebGPU adapter lacks shader-f16, which llama.cpp's WebGPU backend needs, so the "
        "CPU does the work"
    ) in no_f16

    compat = decision(page, jspi=False, compat=True)  # 2 GB a file at most: no larger model
    assert compat["larger"] is None
    assert (
        "this browser lacks JSPI or Memory64, so the slower compatible build runs"
        in (compat["reasons"])
    )

    insecure = decision(page, secure=False, isolated=False)
    assert (insecure["where"], insecure["reasons"]) == (
        "host",
        [
            "this page is not a secure context (it came over plain HTTP from another address), so "
            "the browser withholds cross-origin isolation and WebGPU"
        ],
    )
    tiny = decision(page, deviceMemoryGb=0.5)
    assert (tiny["where"], tiny["reasons"]) == (
        "host",
        ["no model on the hub fits in this tab's 268 MB"],
    )
