"""The dashboard in Chromium through the real server: fake upstreams behind it, traffic
sent with the openai SDK, every page read as a person would (and by keyboard), each
page photographed at desktop and phone width."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

from modelrouter.api.session import COOKIE
from modelrouter.ui.routes import WRONG_KEY
from tests.fakes.upstream import FakeUpstream, status
from tests.router import RunningRouter, run_router
from tests.store.helpers import wait_until
from tests.ui.browser import PHONE, expect, screenshot
from tests.ui.conftest import Tab, log_in, open_tab
from tests.ui.helpers import ADMIN, API_KEY, config

MESSAGES: list[Any] = [{"role": "user", "content": "Say hi please"}]
FALLBACK_ID = "ui-fallback-1"
FAILED_ID = "ui-failed-1"
PLAIN = 60
"""Plain requests: more than one page of logs (50)."""


@dataclass
class Dash:
    router: RunningRouter
    first: FakeUpstream
    second: FakeUpstream
    total: int = 0
    ids: dict[str, str] = field(default_factory=dict)


def _admin(r: RunningRouter, path: str, **params: Any) -> Any:
    headers = {"authorization": f"Bearer {ADMIN}"}
    return httpx2.get(r.url + path, params=params, headers=headers, timeout=10).json()


@pytest.fixture(scope="module")
def dash(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dash]:
    store = tmp_path_factory.mktemp("ui-browser") / "calls.db"
    with (
        FakeUpstream.in_thread("first") as first,
        FakeUpstream.in_thread("second") as second,
        run_router(config(first, second, store)) as r,
    ):
        d = Dash(r, first, second)
        client = openai.OpenAI(base_url=r.base_url, api_key=API_KEY, max_retries=0, timeout=20)
        first.script(status(500))  # the first model fails once: the route falls back
        client.chat.completions.create(
            model="default", messages=MESSAGES, extra_headers={"x-request-id": FALLBACK_ID}
        )
        first.script(status(503))
        second.script(status(500))
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(
                model="default", messages=MESSAGES, extra_headers={"x-request-id": FAILED_ID}
            )
        stream = client.chat.completions.create(
            model="first", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        for _ in range(PLAIN):
            client.chat.completions.create(model="default", messages=MESSAGES)
        d.total = 3 + PLAIN
        wait_until(
            lambda: len(_admin(r, "/admin/logs", limit=1000)["data"]) >= d.total,
            what="every record written",
        )
        yield d


@pytest.fixture
def tab(browser: Any, dash: Dash) -> Iterator[Tab]:
    t = open_tab(browser, dash.router.url)
    log_in(t, ADMIN)
    yield t
    t.check_clean()
    t.context.close()


def test_login_says_when_the_key_is_wrong_then_lets_the_right_one_in(
    browser: Any, dash: Dash
) -> None:
    t = open_tab(browser, dash.router.url)
    page = t.page
    page.goto(dash.router.url + "/ui/logs")
    assert page.url.endswith("/ui/login?next=/ui/logs")
    page.fill("#key", "not-an-admin-key")
    page.press("#key", "Enter")
    alert = page.locator("[role=alert]")
    assert alert.inner_text() == WRONG_KEY
    screenshot(page, "login")
    page.fill("#key", ADMIN)
    page.press("#key", "Enter")
    t.wait_ready()
    assert page.url == dash.router.url + "/ui/logs"  # back where the visitor was going
    cookie = next(c for c in t.context.cookies() if c["name"] == COOKIE)
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/"
    assert page.evaluate("document.cookie") == ""  # scripts cannot read it
    t.check_clean()
    t.context.close()


def test_overview_shows_the_traffic(tab: Tab, dash: Dash) -> None:
    page = tab.go("/ui?range=1h&by=model")

    def card(name: str) -> str:
        return str(page.locator(f".card[data-card='{name}'] .card-value").inner_text())

    assert card("Requests") == str(dash.total)
    assert card("Errors") == "1"
    # The failed request fell back once too (first -> second): two fallbacks.
    assert card("Fallbacks") == "2"
    assert card("Cost") != "$0"
    charts = page.locator("figure.chart")
    assert charts.count() == 5
    requests_chart = charts.filter(has_text="Requests")
    assert requests_chart.locator("svg path").count() >= 2
    legend = requests_chart.locator(".legend").inner_text()
    assert "first" in legend and "second" in legend
    ticks = requests_chart.locator("text.tick").all_text_contents()
    assert any(":" in t for t in ticks)  # times on x
    rows = page.locator("table tbody tr")
    assert {rows.nth(i).locator("th").inner_text() for i in range(rows.count())} >= {
        "first",
        "second",
    }
    screenshot(page, "overview")
    # Grouping by route: one group, the route itself.
    page.select_option("#group-by", "route")
    tab.wait_ready()
    assert "by=route" in page.url
    assert page.locator("table tbody th").all_inner_texts() == ["default", "first"] or (
        "default" in page.locator("table tbody th").all_inner_texts()
    )
    page.set_viewport_size(PHONE)
    page.wait_for_timeout(200)  # the charts redraw at the new width
    screenshot(page, "overview-phone")


def test_empty_pages_say_why_they_are_empty(browser: Any, tmp_path: Path) -> None:
    with (
        FakeUpstream.in_thread("first") as first,
        FakeUpstream.in_thread("second") as second,
        run_router(config(first, second, tmp_path / "empty.db")) as r,
    ):
        t = open_tab(browser, r.url)
        log_in(t, ADMIN)
        page = t.go("/ui?range=1h")
        empty = page.locator(".chart-empty").all_inner_texts()
        assert empty == ["No requests in the last hour."] * 5
        assert page.locator(".card[data-card='Requests'] .card-value").inner_text() == "0"
        page = t.go("/ui?range=7d")
        assert page.locator(".chart-empty").first.inner_text() == "No requests in the last 7 days."
        screenshot(page, "overview-empty")
        page = t.go("/ui/logs")
        assert "No requests are logged yet" in page.locator(".note").inner_text()
        t.check_clean()
        t.context.close()


def test_models_page_shows_live_health(tab: Tab, dash: Dash) -> None:
    page = tab.go("/ui/models")
    rows = page.locator("table.models tbody tr")
    assert rows.count() == 2
    first = rows.filter(has_text="first")
    assert "p1" in first.inner_text()
    assert "default #1" in first.inner_text() or "default #2" in first.inner_text()
    assert "server" in first.locator("td").nth(7).inner_text()  # last error: the 500/503
    route = page.locator("article.route")
    assert "default" in route.inner_text() and "ready" in route.inner_text()
    screenshot(page, "models")
    before = sum("/ui/api/health" in u for u in tab.requests)
    page.wait_for_timeout(3500)
    assert sum("/ui/api/health" in u for u in tab.requests) > before  # refreshed by itself
    page.uncheck("#auto-refresh")
    paused = sum("/ui/api/health" in u for u in tab.requests)
    page.wait_for_timeout(3500)
    assert sum("/ui/api/health" in u for u in tab.requests) == paused


def test_logs_newest_first_paged_and_filtered(tab: Tab, dash: Dash) -> None:
    page = tab.go("/ui/logs")
    rows = page.locator("table.logs tbody tr")
    assert rows.count() == 50
    first_api = [u for u in tab.requests if "/admin/logs?" in u]
    assert first_api and all("limit=50" in u for u in first_api)
    times = page.locator("table.logs tbody tr a.row-link").all_inner_texts()
    assert len(times) == 50
    screenshot(page, "logs")
    page.click("text=Load more")
    expect(page.locator("table.logs tbody tr")).to_have_count(dash.total)
    assert page.locator("text=Load more").is_hidden()
    # Filter: errors only.
    page.fill("#f-status", "error")
    page.click("form.filters button[type=submit]")
    tab.wait_ready()
    assert "status=error" in page.url
    rows = page.locator("table.logs tbody tr")
    assert rows.count() == 1
    assert FAILED_ID in rows.first.inner_text() and "502" in rows.first.inner_text()
    # Filter: a model that served nothing.
    tab.go("/ui/logs?model=nope")
    assert "No request matches these filters" in page.locator(".note").inner_text()


def test_a_fallen_back_request_shows_both_attempts(tab: Tab) -> None:
    page = tab.go("/ui/logs?model=second")
    row = page.locator("table.logs tbody tr", has_text=FALLBACK_ID)
    while not row.count():  # the oldest records: page through
        page.click("text=Load more")
        page.wait_for_timeout(100)
    row.locator("td").nth(3).click()  # anywhere on the row opens it
    page.wait_for_selector("body[data-ready='1'] .timeline")
    assert "/ui/logs/" in page.url
    assert page.locator("h1").inner_text() == f"Request {FALLBACK_ID}"
    attempts = page.locator("li.attempt")
    assert attempts.count() == 2
    one, two = attempts.nth(0), attempts.nth(1)
    assert (one.get_attribute("data-model"), one.get_attribute("data-outcome")) == (
        "first",
        "server",
    )
    assert (two.get_attribute("data-model"), two.get_attribute("data-outcome")) == ("second", "ok")
    assert "via p1" in one.inner_text() and "500" in one.inner_text()
    assert "via p2" in two.inner_text() and "200" in two.inner_text()
    assert " ms" in one.locator(".attempt-ms").inner_text()
    screenshot(page, "request")
    page.go_back()
    tab.wait_ready()
    assert page.url.endswith("/ui/logs?model=second")


def test_playground_streams_and_shows_the_attempts(tab: Tab, dash: Dash) -> None:
    page = tab.go("/ui/playground")
    options = page.locator("#pg-model option").all_inner_texts()
    assert any(o.startswith("default") for o in options)
    assert any(o.startswith("second") for o in options)
    # Whichever model the route tries first now fails once: the trail shows two attempts.
    health = httpx2.get(
        dash.router.url + "/health", headers={"authorization": f"Bearer {API_KEY}"}, timeout=10
    ).json()
    top, then = health["routes"]["default"]["order"]
    (dash.first if top == "first" else dash.second).script(status(500))
    page.select_option("#pg-model", "default")
    page.fill("#pg-message", "Hello there")
    page.click("form.playground button[type=submit]")
    page.wait_for_selector(".pg-trail[data-ready='1']", timeout=15_000)
    assert page.locator(".pg-headers").get_attribute("data-model") == then
    headers = page.locator(".pg-headers").inner_text()
    assert "Attempts\n2" in headers
    assert page.locator(".answer-text").inner_text().strip()
    trail = page.locator(".pg-trail li.attempt")
    assert trail.count() == 2
    assert [trail.nth(i).get_attribute("data-model") for i in (0, 1)] == [top, then]
    posted = [u for u in tab.requests if u.endswith("/ui/api/playground")]
    assert len(posted) == 1
    screenshot(page, "playground")


def test_keyboard_reaches_and_follows_the_main_nav(tab: Tab) -> None:
    page = tab.go("/ui")
    page.locator("body").focus()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    names = []
    for _ in range(6):
        page.keyboard.press("Tab")
        names.append(page.evaluate("document.activeElement.textContent.trim()"))
    assert names == [
        "modelrouter",
        "Overview",
        "Models and routes",
        "Logs",
        "Keys and teams",
        "Playground",
    ]
    # Back to "Logs" and follow it with Enter.
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")
    tab.wait_ready()
    assert page.url.endswith("/ui/logs")
    assert page.evaluate("document.activeElement.tagName") == "H1"  # focus moved to the page
    assert page.locator("nav a[aria-current=page]").inner_text() == "Logs"
    # A log row's link follows with Space as well as Enter.
    page.locator("table.logs tbody tr a.row-link").first.focus()
    page.keyboard.press("Space")
    page.wait_for_selector("body[data-ready='1'] h2#trail-h")
    assert "/ui/logs/" in page.url
    # The focus ring is visible.
    page.keyboard.press("Tab")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"


def test_logout_clears_the_session(tab: Tab, dash: Dash) -> None:
    page = tab.go("/ui/models")
    old = next(c["value"] for c in tab.context.cookies() if c["name"] == COOKIE)
    page.click("text=Log out")
    page.wait_for_selector("text=You are logged out.")
    assert not [c for c in tab.context.cookies() if c["name"] == COOKIE]
    page.goto(dash.router.url + "/ui/keys")
    assert "/ui/login" in page.url
    refused = httpx2.get(dash.router.url + "/admin/logs", cookies={COOKIE: old}, timeout=10)
    assert refused.status_code == 401


def test_every_page_renders_at_phone_width(browser: Any, dash: Dash) -> None:
    t = open_tab(browser, dash.router.url, PHONE)
    log_in(t, ADMIN)
    for name, path in (
        ("models-phone", "/ui/models"),
        ("logs-phone", "/ui/logs"),
        ("playground-phone", "/ui/playground"),
    ):
        page = t.go(path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{path} scrolls sideways ({width} px)"
        screenshot(page, name)
    t.check_clean()
    t.context.close()


def test_first_render_is_quick(tab: Tab) -> None:
    started = time.monotonic()
    for path in ("/ui", "/ui/models", "/ui/logs", "/ui/playground"):
        page = tab.go(path)
        assert int(page.evaluate("document.body.dataset.readyMs")) < 1000, path
    assert time.monotonic() - started < 10
