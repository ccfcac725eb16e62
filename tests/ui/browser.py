"""Chromium for the dashboard tests: Debian's ``/usr/bin/chromium`` driven by Playwright.

No browser is downloaded: Playwright launches the system's Chromium by path. Without
it (or without the ``playwright`` package) the browser tests skip saying why, unless
``MODELROUTER_REQUIRE_SERVICES=1`` (CI), which turns the skip into a failure.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("MODELROUTER_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
"""The browser binary (``MODELROUTER_CHROMIUM`` to use another)."""
ARTIFACTS = Path(__file__).resolve().parents[2] / ".ci" / "artifacts" / "screenshots"
"""Where every run writes its screenshots (CI keeps the folder)."""
DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
"""The README's screenshots: written only with ``MODELROUTER_DOC_SCREENSHOTS=1``."""
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def _missing(reason: str) -> None:
    if os.environ.get("MODELROUTER_REQUIRE_SERVICES") == "1":
        pytest.fail(reason + " and MODELROUTER_REQUIRE_SERVICES=1")
    pytest.skip(reason)


def launch(playwright: Any) -> Any:
    """A headless Chromium, or a skip (a failure in CI) saying what is missing."""
    if not os.access(CHROMIUM, os.X_OK):
        _missing(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")
    return playwright.chromium.launch(executable_path=CHROMIUM)


def sync_playwright() -> Any:
    """Playwright's sync entry point, or a skip (a failure in CI) when it is not installed."""
    try:
        from playwright.sync_api import sync_playwright as start
    except ImportError:
        _missing("the playwright package is not installed (pip install -e '.[test]')")
    return start()


def screenshot(page: Any, name: str) -> None:
    """Save a full-page screenshot under the artifacts folder (and docs/, when asked)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    if os.environ.get("MODELROUTER_DOC_SCREENSHOTS") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOCS / f"{name}.png"), full_page=True)


def expect(locator: Any) -> Any:
    """Playwright's ``expect`` (imported here: the module loads without Playwright)."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)
