"""The keys and teams page in Chromium against the admin API of CONTRACT.md §5: a team
and a key made in the page, the key's secret (shown once) used with the openai SDK,
then rotated and revoked from the page."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.fakes.upstream import FakeUpstream
from tests.router import run_router
from tests.ui.browser import expect, screenshot
from tests.ui.conftest import log_in, open_tab
from tests.ui.helpers import ADMIN, config

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("modelrouter.api.admin_keys") is None,
    reason="needs the admin API for keys and teams (POST/GET /admin/keys, /admin/teams: "
    "the 'keys' branch), not merged into this checkout yet",
)

MESSAGES: list[Any] = [{"role": "user", "content": "hi"}]


def chat(base_url: str, key: str) -> str:
    client = openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=10)
    answer = client.chat.completions.create(model="default", messages=MESSAGES)
    return answer.choices[0].message.content or ""


def test_a_key_made_in_the_page_works_then_rotates_and_revokes(
    browser: Any, tmp_path: Path
) -> None:
    with (
        FakeUpstream.in_thread("first") as first,
        FakeUpstream.in_thread("second") as second,
        run_router(config(first, second, tmp_path / "calls.db")) as r,
    ):
        t = open_tab(browser, r.url)
        log_in(t, ADMIN)
        page = t.go("/ui/keys")
        assert "No keys yet" in page.locator("#keys-h + div").inner_text()
        # A team with a budget, then a key in it.
        page.fill("#t-name", "research")
        page.fill("#t-budget", "5")
        page.click("text=Create team")
        expect(page.locator("tr[data-team='research']")).to_contain_text("$0 of $5.00 this month")
        page.fill("#k-name", "ci-bot")
        page.select_option("#k-team", "research")
        page.fill("#k-budget", "1")
        page.select_option("#k-period", "day")
        page.click("text=Create key")
        secret = page.locator(".secret-panel code.secret")
        expect(secret).to_have_text(re.compile(r"^mr-\S+$"))
        key = secret.inner_text()
        row = page.locator("tr[data-key='ci-bot']")
        expect(row).to_contain_text("research")
        expect(row).to_contain_text("$0 of $1.00 today")
        expect(row).to_contain_text(key[:8])  # the prefix, never the whole secret
        assert key not in row.inner_text()
        screenshot(page, "keys")
        assert chat(r.base_url, key)  # the secret works with the openai SDK

        # Rotate at once: the old secret stops, the new one works.
        row.locator("button", has_text="Rotate").click()
        row.locator("button", has_text="Yes, rotate").click()
        expect(page.locator(".secret-panel h3")).to_have_text("Key rotated")
        new_key = page.locator(".secret-panel code.secret").inner_text()
        assert new_key != key and new_key.startswith("mr-")
        with pytest.raises(openai.AuthenticationError):
            chat(r.base_url, key)
        assert chat(r.base_url, new_key)

        # Revoke: refused from now on, shown as revoked.
        row = page.locator("tr[data-key='ci-bot']")
        row.locator("button", has_text="Revoke").click()
        row.locator("button", has_text="Yes, revoke").click()
        expect(page.locator("tr[data-key='ci-bot']")).to_contain_text("revoked")
        with pytest.raises(openai.AuthenticationError):
            chat(r.base_url, new_key)
        t.check_clean()
        t.context.close()
