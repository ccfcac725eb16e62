"""The dashboard over plain HTTP through the real server: login, cookie, CSRF, headers,
logout, the admin API with a session, the playground endpoint, and /ui off without
admin keys."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from modelrouter.api.session import COOKIE
from modelrouter.ui.routes import WRONG_KEY
from modelrouter.ui.throttle import FREE_FAILURES
from tests.fakes.upstream import FakeUpstream
from tests.router import RunningRouter, run_router
from tests.store.helpers import wait_until
from tests.ui.helpers import ADMIN, API_KEY, config, csrf_of, login, session_cookie

CHAT = {"model": "default", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRouter]:
    store = tmp_path_factory.mktemp("ui-http") / "calls.db"
    with (
        FakeUpstream.in_thread("first") as first,
        FakeUpstream.in_thread("second") as second,
        run_router(config(first, second, store)) as r,
    ):
        yield r


def get(r: RunningRouter, path: str, cookie: str | None = None, **kw: object) -> httpx2.Response:
    cookies = {COOKIE: cookie} if cookie else None
    return httpx2.get(r.url + path, cookies=cookies, follow_redirects=False, timeout=10, **kw)  # type: ignore[arg-type]


def test_pages_need_a_session_and_say_where_to_log_in(router: RunningRouter) -> None:
    resp = get(router, "/ui/logs?model=first")
    assert resp.status_code == 303
    assert resp.headers["location"] == "/ui/login?next=/ui/logs%3Fmodel%3Dfirst"
    form = get(router, "/ui/login?next=/ui/logs")
    assert form.status_code == 200
    assert 'name="next" value="/ui/logs"' in form.text
    assert 'type="password"' in form.text and 'for="key"' in form.text


def test_a_wrong_key_is_told_on_the_form(router: RunningRouter) -> None:
    resp = login(router.url, "not-the-key")
    assert resp.status_code == 401
    assert WRONG_KEY in resp.text
    assert "set-cookie" not in resp.headers
    assert login(router.url, API_KEY).status_code == 401  # an API key is not an admin key


def test_login_sets_a_strict_http_only_cookie(router: RunningRouter) -> None:
    resp = login(router.url)
    assert resp.status_code == 303
    assert resp.headers["location"] == "/ui/logs"
    cookie = resp.headers["set-cookie"]
    parts = cookie.split("; ")
    assert {"HttpOnly", "SameSite=Strict", "Path=/"} <= set(parts)
    assert "Secure" not in parts  # plain HTTP
    assert ADMIN not in cookie
    # Behind a TLS proxy on 127.0.0.1 (uvicorn trusts it by default): Secure.
    https = login(router.url, **{"x-forwarded-proto": "https"})
    assert "Secure" in https.headers["set-cookie"].split("; ")


def test_the_shell_carries_the_csrf_token_and_tight_headers(router: RunningRouter) -> None:
    cookie = session_cookie(router.url)
    page = get(router, "/ui/models", cookie)
    assert page.status_code == 200
    h = page.headers
    assert h["content-security-policy"].startswith("default-src 'self';")
    assert "script-src" not in h["content-security-policy"]  # 'self' only, no inline
    assert h["x-frame-options"] == "DENY"
    assert h["cache-control"] == "no-store"
    assert h["x-content-type-options"] == "nosniff"
    assert "<script>" not in page.text and "<script " in page.text  # no inline script
    token = csrf_of(router.url, cookie)
    assert len(token) >= 40
    static = get(router, "/ui/static/js/app.js")
    assert static.status_code == 200
    assert static.headers["content-type"].split(";")[0] in (
        "text/javascript",
        "application/javascript",
    )
    assert static.headers["x-frame-options"] == "DENY"


def test_the_admin_api_takes_the_session_for_reads(router: RunningRouter) -> None:
    cookie = session_cookie(router.url)
    resp = get(router, "/admin/logs", cookie, params={"limit": 5})
    assert resp.status_code == 200
    assert resp.headers["cache-control"] == "no-store"
    assert get(router, "/admin/logs").status_code == 401
    assert get(router, "/admin/logs", "v1.9999999999.forged.sig").status_code == 401
    # The session is an admin credential only: /v1 stays closed to it.
    assert get(router, "/v1/models", cookie).status_code == 401


def test_the_playground_needs_the_csrf_token_and_runs_through_the_router(
    router: RunningRouter,
) -> None:
    cookie = session_cookie(router.url)
    url = router.url + "/ui/api/playground"
    no_session = httpx2.post(url, json=CHAT, timeout=10)
    assert no_session.status_code == 401
    refused = httpx2.post(url, json=CHAT, cookies={COOKIE: cookie}, timeout=10)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "csrf_failed"
    token = csrf_of(router.url, cookie)
    headers = {"x-csrf-token": token}
    resp = httpx2.post(url, json=CHAT, cookies={COOKIE: cookie}, headers=headers, timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-modelrouter-model"] == "first"
    assert resp.headers["x-modelrouter-attempts"] == "1"
    assert resp.json()["choices"][0]["message"]["content"]
    rid = resp.headers["x-request-id"]
    bearer = {"authorization": f"Bearer {ADMIN}"}
    record_url = f"{router.url}/admin/logs/{rid}"
    wait_until(lambda: httpx2.get(record_url, headers=bearer).status_code == 200, what="record")
    record = httpx2.get(record_url, headers=bearer).json()
    assert record["tags"] == ["playground"]
    assert record["endpoint"] == "/ui/api/playground"
    assert record["key_id"] is None
    # Streams as /v1/chat/completions does.
    streamed = httpx2.post(
        url, json={**CHAT, "stream": True}, cookies={COOKIE: cookie}, headers=headers, timeout=10
    )
    assert streamed.headers["content-type"].startswith("text/event-stream")
    assert streamed.text.rstrip().endswith("data: [DONE]")


def test_health_and_models_for_the_pages_need_the_session(router: RunningRouter) -> None:
    assert get(router, "/ui/api/health").status_code == 401
    cookie = session_cookie(router.url)
    health = get(router, "/ui/api/health", cookie).json()
    assert set(health["models"]) == {"first", "second"}
    models = get(router, "/ui/api/models", cookie).json()["data"]
    assert {m["id"] for m in models} == {"default", "first", "second"}


def test_logout_clears_the_cookie_and_ends_the_session(router: RunningRouter) -> None:
    cookie = session_cookie(router.url)
    token = csrf_of(router.url, cookie)
    stale = httpx2.post(
        router.url + "/ui/logout", cookies={COOKIE: cookie}, follow_redirects=False, timeout=10
    )
    assert stale.status_code == 403  # no token: a foreign page cannot log anyone out
    assert get(router, "/admin/logs", cookie).status_code == 200
    out = httpx2.post(
        router.url + "/ui/logout",
        data={"csrf": token},
        cookies={COOKIE: cookie},
        follow_redirects=False,
        timeout=10,
    )
    assert out.status_code == 303
    assert out.headers["location"] == "/ui/login?out=1"
    assert "Max-Age=0" in out.headers["set-cookie"]
    assert get(router, "/admin/logs", cookie).status_code == 401
    assert get(router, "/ui", cookie).status_code == 303
    assert "logged out" in get(router, "/ui/login?out=1").text


def test_a_foreign_page_cannot_post_the_login_form(router: RunningRouter) -> None:
    resp = login(router.url, origin="https://evil.example")
    assert resp.status_code == 403
    assert "set-cookie" not in resp.headers


def test_repeated_wrong_keys_lock_the_address_out(tmp_path: Path) -> None:
    with (
        FakeUpstream.in_thread("first") as first,
        FakeUpstream.in_thread("second") as second,
        run_router(config(first, second, tmp_path / "calls.db")) as r,
    ):
        for _ in range(FREE_FAILURES):
            assert login(r.url, "guess").status_code == 401
        locked = login(r.url, "guess")
        assert locked.status_code == 401
        assert "wait 1 second" in locked.text
        refused = login(r.url)  # even the right key, while locked out
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "1"
        assert "Too many wrong keys" in refused.text
        time.sleep(1.05)
        assert login(r.url).status_code == 303


def test_no_admin_keys_no_dashboard(tmp_path: Path) -> None:
    with (
        FakeUpstream.in_thread("first") as first,
        FakeUpstream.in_thread("second") as second,
        run_router(config(first, second, tmp_path / "calls.db", admin_keys=[])) as r,
    ):
        for path in ("/ui", "/ui/login", "/ui/static/app.css", "/ui/api/health"):
            resp = httpx2.get(r.url + path, timeout=10)
            assert resp.status_code == 404, path
            assert resp.json()["error"]["code"] == "not_found"
