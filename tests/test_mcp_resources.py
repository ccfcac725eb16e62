"""MCP resources, prompts and the read-only tools, through the SDK's in-memory client.

Simulated upstreams only: ``first`` always answers 503, ``second`` always answers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS, TextContent, TextResourceContents

from modelrouter.frontdoor import FrontDoor
from modelrouter.mcp.server import build_mcp_server
from modelrouter.runtime import Runtime
from tests.router import router_config


@pytest.fixture
async def server() -> AsyncIterator[MCPServer[Any]]:
    cfg = router_config(
        providers={
            "p1": {"kind": "simulated", "failure_rate": 1.0, "failure_status": 503},
            "p2": {"kind": "simulated"},
        },
        models={"first": {"provider": "p1"}, "second": {"provider": "p2", "model": "up-2"}},
        routes={"default": {"models": ["first", "second"]}, "solo": {"models": ["second"]}},
        router={"retries_per_model": 0},
        prompts={
            "summarize": {
                "description": "Summarize a text",
                "system": "Be {tone}.",
                "template": "Summarize:\n\n{text}",
            }
        },
    )
    rt = Runtime(cfg)
    await rt.start()
    try:
        yield build_mcp_server(FrontDoor(rt))
    finally:
        await rt.aclose()


def text_of(result: Any) -> str:
    block = result.content[0]
    assert isinstance(block, TextContent)
    return block.text


async def test_list_models_and_model_health(server: MCPServer[Any]) -> None:
    async with Client(server) as c:
        await c.call_tool("chat", {"prompt": "hi"})
        listing = await c.call_tool("list_models", {})
        one = await c.call_tool("model_health", {"model": "first"})
        route = await c.call_tool("model_health", {"model": "solo"})
        every = await c.call_tool("model_health", {})
        unknown = await c.call_tool("model_health", {"model": "zzz"})
    data = listing.structured_content
    assert data is not None and data["default_route"] == "default"
    routes = {r["name"]: r for r in data["routes"]}
    assert routes["default"]["models"] == ["first", "second"]
    assert routes["default"]["default"] and routes["default"]["ready"]
    models = {m["name"]: m for m in data["models"]}
    assert models["second"]["upstream_model"] == "up-2"
    assert models["second"]["ranks"] == {
        "default": routes["default"]["order"].index("second") + 1,
        "solo": 1,
    }
    assert models["first"]["breaker"] == "closed"  # one failure: below failure_threshold
    assert one.structured_content is not None
    snap = one.structured_content["models"]
    assert list(snap) == ["first"]
    assert snap["first"]["totals"] == {"requests": 1, "failures": 1}
    assert snap["first"]["consecutive_failures"] == 1
    assert snap["first"]["last_error"]["status"] == 503
    assert route.structured_content is not None
    assert list(route.structured_content["models"]) == ["second"]
    assert every.structured_content is not None
    assert set(every.structured_content["models"]) == {"first", "second"}
    assert unknown.is_error and "zzz" in text_of(unknown)


async def test_resources(server: MCPServer[Any]) -> None:
    async with Client(server) as c:
        uris = {str(r.uri) for r in (await c.list_resources()).resources}
        templates = [t.uri_template for t in (await c.list_resource_templates()).resource_templates]
        contents = {
            uri: (await c.read_resource(uri)).contents[0]
            for uri in ("modelrouter://models", "modelrouter://health", "modelrouter://routes/solo")
        }
        with pytest.raises(MCPError, match="No route 'zzz'"):
            await c.read_resource("modelrouter://routes/zzz")
    assert uris == {"modelrouter://models", "modelrouter://health"}
    assert templates == ["modelrouter://routes/{name}"]
    parsed = {}
    for uri, content in contents.items():
        assert isinstance(content, TextResourceContents)
        assert content.mime_type == "application/json"
        parsed[uri] = orjson.loads(content.text)
    assert {r["name"] for r in parsed["modelrouter://models"]["routes"]} == {"default", "solo"}
    assert set(parsed["modelrouter://health"]["models"]) == {"first", "second"}
    solo = parsed["modelrouter://routes/solo"]
    assert (solo["name"], solo["models"], solo["default"]) == ("solo", ["second"], False)
    assert set(solo["health"]) == {"second"}


async def test_prompts_from_config(server: MCPServer[Any]) -> None:
    async with Client(server) as c:
        prompts = (await c.list_prompts()).prompts
        got = await c.get_prompt("summarize", {"tone": "brief", "text": "abc"})
        with pytest.raises(MCPError, match=r"missing variable\(s\): text"):
            await c.get_prompt("summarize", {"tone": "brief"})
        with pytest.raises(MCPError, match=r"unknown variable\(s\): colour") as wrong_args:
            await c.get_prompt("summarize", {"tone": "a", "text": "b", "colour": "c"})
        # An unknown prompt name is invalid params too (the SDK alone answers code 0).
        with pytest.raises(MCPError, match=r"No prompt 'nope' \(prompts: summarize\)") as unknown:
            await c.get_prompt("nope", {"text": "b"})
    assert wrong_args.value.code == INVALID_PARAMS
    assert unknown.value.code == INVALID_PARAMS
    assert [p.name for p in prompts] == ["summarize"]
    assert prompts[0].description == "Summarize a text"
    args = prompts[0].arguments or []
    assert [(a.name, a.required) for a in args] == [("tone", True), ("text", True)]
    assert len(got.messages) == 1
    msg = got.messages[0]
    assert msg.role == "user"
    assert isinstance(msg.content, TextContent)
    assert msg.content.text == "Be brief.\n\nSummarize:\n\nabc"
