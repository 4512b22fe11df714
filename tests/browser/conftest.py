"""Real Chromium (Debian's), driven by Playwright for Python; screenshots go to test-output/."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, sync_playwright

from tests.owner import session_cookie

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
OUTPUT = Path(__file__).resolve().parents[2] / "test-output" / "browser"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


@contextmanager
def new_page(
    browser: Browser, expected: tuple[str, ...] = (), **context_options: Any
) -> Iterator[Page]:
    """A fresh page in a fresh context; any console error or page error fails the test, except
    those containing one of the `expected` texts (a refusal the test asks for)."""
    context = as_owner(browser.new_context(accept_downloads=True, **context_options))
    page = context.new_page()
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error" and not any(text in message.text for text in expected):
            errors.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert errors == []


def as_owner(context: BrowserContext, *hubs: str) -> BrowserContext:
    """A context whose pages are logged in as the owner of each test hub they open, the first
    time they open it (through a login link, as a person is: tests/owner.py); of `hubs` (their
    URLs) at once, for requests that reach them other than by a page opening them."""
    logged_in: set[int] = set()
    new_page = context.new_page

    def log_in_for(url: str) -> None:
        port = httpx.URL(url).port
        if port is not None and port not in logged_in:
            cookie = session_cookie(url)
            if cookie is not None:
                context.add_cookies([cookie])  # type: ignore[list-item]
                logged_in.add(port)

    def opened() -> Page:
        page = new_page()
        goto = page.goto

        def go(url: str, **options: Any) -> Any:
            log_in_for(url)
            return goto(url, **options)

        page.goto = go  # type: ignore[method-assign]
        return page

    context.new_page = opened  # type: ignore[method-assign]
    for url in hubs:
        log_in_for(url)
    return context


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    with new_page(browser, viewport={"width": 1440, "height": 900}) as page:
        yield page


def screenshot(page: Page, name: str) -> Path:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    path = OUTPUT / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
