"""The scripted traffic the call-log tests check: one router per engine, every kind of
request (fallback, stream, failures, refusals, bulk, MCP), and what the clients saw."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.fakes.upstream import FakeUpstream, status
from tests.router import RunningRouter, router_config
from tests.store.helpers import ADMIN, upgrade
from tests.store.services import require_pg, reset_pg

KEY = "sk-router-key-e2e"
UPSTREAM_KEY = "sk-upstream-secret-e2e"
OTHER_KEY = "sk-other-upstream-e2e"
MESSAGES: list[Any] = [{"role": "user", "content": "Say hi please"}]  # 3 prompt tokens
IN_PRICE, OUT_PRICE = 2.5, 10.0


@dataclass
class Scenario:
    """What was sent, and what the clients saw."""

    router: RunningRouter
    url: str
    started: float
    ended: float = 0.0
    ids: dict[str, str] = field(default_factory=dict)
    """Name of a request in the scenario -> the x-request-id the client saw."""
    total: int = 0


def config(first: FakeUpstream, second: FakeUpstream, url: str, **server: Any) -> Any:
    return router_config(
        providers={
            "p1": {"kind": "openai", "base_url": first.base_url, "api_key": UPSTREAM_KEY},
            "p2": {"kind": "openai", "base_url": second.base_url, "api_key": OTHER_KEY},
        },
        models={
            "first": {
                "provider": "p1",
                "model": "up-first",
                "input_cost_per_mtok": IN_PRICE,
                "output_cost_per_mtok": OUT_PRICE,
            },
            "second": {"provider": "p2", "model": "up-second"},
        },
        routes={"default": {"models": ["first", "second"]}},
        router={"retries_per_model": 0},
        server={"api_keys": [KEY], "admin_keys": [ADMIN], "host": "127.0.0.1", **server},
        store={"url": url},
    )


def store_for(engine: str, tmp: Path) -> str:
    if engine == "sqlite":
        return f"sqlite:///{tmp / 'calls.db'}"
    url = require_pg()
    asyncio.run(reset_pg(url))
    upgrade(url)
    return url


async def _mcp_chat(r: RunningRouter) -> None:
    hc = httpx2.AsyncClient(headers={"Authorization": f"Bearer {KEY}"}, timeout=30)
    async with hc, Client(streamable_http_client(r.url + "/mcp", http_client=hc)) as c:
        result = await c.call_tool("chat", {"prompt": "Say hi please", "model": "second"})
        assert not result.is_error


def run(s: Scenario, first: FakeUpstream, second: FakeUpstream) -> None:
    client = openai.OpenAI(base_url=s.router.base_url, api_key=KEY, max_retries=0, timeout=20)

    def chat(name: str, **kw: Any) -> Any:
        raw = client.chat.completions.with_raw_response.create(messages=MESSAGES, **kw)
        s.ids[name] = raw.headers["x-request-id"]
        s.total += 1
        return raw.parse()

    # 1. Fallback: the first model answers 500, the second serves; the client names the id.
    first.script(status(500))
    chat(
        "fallback",
        model="default",
        user="alice",
        extra_headers={"x-modelrouter-tags": "team-a, nightly ,", "x-request-id": "client-rid-1"},
    )
    # 2. A stream with usage, served by the priced model (which reports cached tokens).
    first.cached_tokens = 2
    raw = client.chat.completions.with_raw_response.create(
        model="first", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    s.ids["stream"] = raw.headers["x-request-id"]
    s.total += 1
    assert "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    first.cached_tokens = None
    # 3. Every model fails.
    first.script(status(503))
    second.script(status(500))
    with pytest.raises(openai.APIStatusError) as failed:
        chat("failed", model="default")
    s.ids["failed"] = failed.value.response.headers["x-request-id"]
    s.total += 1
    # 4. Refused before any upstream: an unknown model, a wrong key.
    with pytest.raises(openai.NotFoundError) as unknown:
        chat("unknown", model="nope")
    s.ids["unknown"] = unknown.value.response.headers["x-request-id"]
    s.total += 1
    bad = openai.OpenAI(base_url=s.router.base_url, api_key="wrong-key-xyz", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as refused:
        bad.chat.completions.create(model="default", messages=MESSAGES)
    s.ids["refused"] = refused.value.response.headers["x-request-id"]
    s.total += 1
    # 5. Bulk traffic for pages, filters and roll-ups: 12 on first, 6 on second.
    for i in range(18):
        chat(f"bulk{i}", model="first" if i % 3 else "second")
    # 6. MCP.
    asyncio.run(_mcp_chat(s.router))
    s.total += 1
    s.ended = time.time()
