"""Browser fixtures: one Chromium per module, a fresh logged-in page per test that checks,
when the test ends, that the page made no request to another origin and threw nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.ui.browser import DESKTOP, launch, sync_playwright


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless Chromium (skips, or fails in CI, without one)."""
    with sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


class Tab:
    """A browser page with everything it requested and every error it threw."""

    def __init__(self, context: Any, origin: str) -> None:
        self.context = context
        self.origin = origin
        self.page = context.new_page()
        self.requests: list[str] = []
        self.errors: list[str] = []
        context.on("request", lambda r: self.requests.append(r.url))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def go(self, path: str) -> Any:
        """Open a dashboard path and wait until its view says its data is drawn."""
        self.page.goto(self.origin + path)
        return self.wait_ready()

    def wait_ready(self) -> Any:
        """Wait for the current view's data-ready marker."""
        self.page.wait_for_selector("body[data-ready='1']", timeout=15_000)
        return self.page

    def check_clean(self) -> None:
        """Every request went to the router itself; no script error."""
        foreign = [
            u for u in self.requests if _origin(u) != self.origin and not u.startswith("data:")
        ]
        assert not foreign, f"requests to other origins: {foreign}"
        assert self.requests, "the page made no request at all"
        assert not self.errors, f"script errors: {self.errors}"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def open_tab(browser: Any, origin: str, viewport: dict[str, int] = DESKTOP) -> Tab:
    """A fresh browser context (no cookies) and its page."""
    return Tab(browser.new_context(viewport=viewport), origin)


def log_in(tab: Tab, key: str) -> None:
    """Log in through the form, as a person would."""
    tab.page.goto(tab.origin + "/ui/login")
    tab.page.fill("#key", key)
    tab.page.click("form button[type=submit]")
    tab.wait_ready()
