"""The admin surface switched off, and body logging switched on, on both engines."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import openai

from tests.fakes.upstream import FakeUpstream
from tests.router import router_config, run_router
from tests.store.helpers import ADMIN, ADMIN_HEADERS, admin_get, wait_records

MESSAGES: list[Any] = [{"role": "user", "content": "Say hi please"}]


def test_admin_surface_is_off_without_admin_keys(up: FakeUpstream) -> None:
    cfg = router_config(
        providers={"p": {"kind": "openai", "base_url": up.base_url}},
        models={"m": {"provider": "p"}},
        routes={"default": {"models": ["m"]}},
    )
    with run_router(cfg) as r:
        for path in ("/admin/logs", "/admin/usage", "/admin/logs/x"):
            resp = httpx2.get(r.url + path, headers=ADMIN_HEADERS, timeout=5)
            assert resp.status_code == 404
        assert httpx2.get(r.url + "/health", timeout=5).json()["store"] == {"state": "off"}


def test_bodies_are_kept_only_with_log_bodies(store_url: str, up: FakeUpstream) -> None:
    cfg = router_config(
        providers={"p": {"kind": "openai", "base_url": up.base_url}},
        models={"m": {"provider": "p"}},
        routes={"default": {"models": ["m"]}},
        server={"admin_keys": [ADMIN], "log_bodies": True},
        store={"url": store_url},
    )
    with run_router(cfg) as r:
        client = openai.OpenAI(base_url=r.base_url, api_key="x", max_retries=0)
        plain = client.chat.completions.with_raw_response.create(model="m", messages=MESSAGES)
        streamed = client.chat.completions.with_raw_response.create(
            model="m", messages=MESSAGES, stream=True
        )
        assert "".join(c.choices[0].delta.content or "" for c in streamed.parse() if c.choices)
        wait_records(store_url, 2)
        one = admin_get(r.url, f"/admin/logs/{plain.headers['x-request-id']}")
        two = admin_get(r.url, f"/admin/logs/{streamed.headers['x-request-id']}")
        listed = admin_get(r.url, "/admin/logs")["data"]
    assert json.loads(one["request_body"]) == MESSAGES
    assert json.loads(one["response_body"])["choices"][0]["message"]["content"] == "hello from up"
    assert json.loads(two["request_body"]) == MESSAGES
    assert two["response_body"] == "hello from up"  # the stream's text, joined
    assert all("request_body" not in r for r in listed)  # pages leave bodies out
