"""What the dashboard tests share: a router with two fake upstreams and a store, logins."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx2

from modelrouter.api.session import COOKIE
from tests.fakes.upstream import FakeUpstream
from tests.router import router_config

ADMIN = "adm-ui-test-key-1"
API_KEY = "sk-ui-test-key"
UPSTREAM_KEY = "sk-ui-upstream"


def config(first: FakeUpstream, second: FakeUpstream, store: Path | str, **server: Any) -> Any:
    """Route ``default`` = first (priced) then second; admin and API keys; a SQLite store."""
    url = store if isinstance(store, str) else f"sqlite:///{store}"
    return router_config(
        providers={
            "p1": {"kind": "openai", "base_url": first.base_url, "api_key": UPSTREAM_KEY},
            "p2": {"kind": "openai", "base_url": second.base_url, "api_key": UPSTREAM_KEY},
        },
        models={
            "first": {
                "provider": "p1",
                "model": "up-first",
                "input_cost_per_mtok": 2.5,
                "output_cost_per_mtok": 10.0,
            },
            "second": {"provider": "p2", "model": "up-second"},
        },
        routes={"default": {"models": ["first", "second"]}},
        router={"retries_per_model": 0},
        server={"api_keys": [API_KEY], "admin_keys": [ADMIN], "host": "127.0.0.1", **server},
        store={"url": url},
    )


def login(base: str, key: str = ADMIN, **headers: str) -> httpx2.Response:
    """POST the login form; the raw answer (no redirect followed)."""
    return httpx2.post(
        base + "/ui/login",
        data={"key": key, "next": "/ui/logs"},
        headers=headers,
        follow_redirects=False,
        timeout=10,
    )


def session_cookie(base: str) -> str:
    """A fresh session cookie's value."""
    resp = login(base)
    assert resp.status_code == 303, resp.text
    match = re.match(rf"{COOKIE}=([^;]+);", resp.headers["set-cookie"])
    assert match, resp.headers["set-cookie"]
    return match.group(1)


def csrf_of(base: str, cookie: str) -> str:
    """The CSRF token the page shell gives a session."""
    page = httpx2.get(base + "/ui", cookies={COOKIE: cookie}, timeout=10)
    assert page.status_code == 200, page.text
    match = re.search(r'<meta name="csrf-token" content="([^"]+)">', page.text)
    assert match
    return match.group(1)
