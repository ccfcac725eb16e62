"""Permissions and limits over MCP (Streamable HTTP, the ``mcp`` SDK's client): the same
rules and messages as HTTP, refusals as tool errors, one count for both surfaces."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import orjson
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import TextContent

from tests.fakes.upstream import FakeUpstream
from tests.governance.conftest import FREE
from tests.router import RunningRouter


@asynccontextmanager
async def mcp_client(r: RunningRouter, key: str) -> AsyncIterator[Client]:
    hc = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=20)
    async with hc, Client(streamable_http_client(r.url + "/mcp", http_client=hc)) as c:
        yield c


def text(result: Any) -> str:
    block = result.content[0]
    assert isinstance(block, TextContent)
    return block.text


async def test_chat_refusals_are_tool_errors_with_the_http_message(
    router: RunningRouter, up: FakeUpstream
) -> None:
    async with mcp_client(router, "sk-narrow") as c:
        refused = await c.call_tool("chat", {"prompt": "hi", "model": "beta"})
        listed = await c.call_tool("chat", {"prompt": "hi", "models": ["alpha", "both"]})
        served = await c.call_tool("chat", {"prompt": "hi", "model": "alpha"})
    assert refused.is_error
    assert text(refused).startswith("Error 403 (model_not_allowed): 'beta' is not allowed")
    assert listed.is_error and "'both' is not allowed" in text(listed)
    assert not served.is_error
    http = httpx2.post(
        router.base_url + "/chat/completions",
        json={"model": "beta", "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": "Bearer sk-narrow"},
    )
    assert http.json()["error"]["message"] in text(refused)
    assert up.calls == 1


async def test_compare_checks_each_model(router: RunningRouter, up: FakeUpstream) -> None:
    async with mcp_client(router, "sk-narrow") as c:
        result = await c.call_tool("compare", {"prompt": "hi", "models": ["alpha", "beta"]})
    assert result.structured_content is not None
    answers = {a["model"]: a for a in result.structured_content["results"]}
    assert answers["alpha"]["content"] and answers["alpha"]["error"] is None
    assert "'beta' is not allowed" in answers["beta"]["error"]
    assert up.calls == 1


async def test_list_models_and_the_models_resource_show_what_the_key_may_use(
    router: RunningRouter,
) -> None:
    async with mcp_client(router, "sk-narrow") as c:
        narrow = (await c.call_tool("list_models", {})).structured_content
        resource = (await c.read_resource("modelrouter://models")).contents[0]
        with pytest.raises(MCPError):
            await c.read_resource("modelrouter://routes/both")
        await c.read_resource("modelrouter://routes/default")
    async with mcp_client(router, FREE) as c:
        everything = (await c.call_tool("list_models", {})).structured_content
    assert narrow is not None and everything is not None
    assert [r["name"] for r in narrow["routes"]] == ["default"]
    assert [m["name"] for m in narrow["models"]] == ["alpha"]
    assert orjson.loads(getattr(resource, "text", "{}"))["models"] == narrow["models"]
    assert [r["name"] for r in everything["routes"]] == ["default", "both"]
    assert {m["name"] for m in everything["models"]} == {"alpha", "beta", "emb"}


async def test_prompts_follow_their_route(router: RunningRouter) -> None:
    async with mcp_client(router, "sk-narrow") as c:
        names = [p.name for p in (await c.list_prompts()).prompts]
        await c.get_prompt("on_default", {"word": "x"})
        with pytest.raises(MCPError, match="'both' is not allowed for this key"):
            await c.get_prompt("on_both", {"word": "x"})
    assert names == ["on_default"]
    async with mcp_client(router, FREE) as c:
        assert len((await c.list_prompts()).prompts) == 2


async def test_mcp_and_http_calls_count_against_the_same_limits(
    router: RunningRouter, up: FakeUpstream
) -> None:
    http = httpx2.post(
        router.base_url + "/chat/completions",
        json={"messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": "Bearer sk-rpm2"},
    )
    assert http.headers["x-ratelimit-remaining-requests"] == "1"
    async with mcp_client(router, "sk-rpm2") as c:
        second = await c.call_tool("chat", {"prompt": "hi"})
        third = await c.call_tool("chat", {"prompt": "hi"})
    assert not second.is_error
    assert third.is_error
    assert text(third).startswith("Error 429 (rate_limit_exceeded): Rate limit reached: ")
    assert "this key's limit of 2 requests per minute (rpm)" in text(third)
    assert up.calls == 2
