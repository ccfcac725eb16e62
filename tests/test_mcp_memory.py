"""The ``chat`` and ``compare`` tools through the SDK's in-memory client.

The runtime is the real one (dispatcher, health tracker, access log) and the
upstreams are real HTTP fakes, so what these tests see is what an agent sees.
"""

from __future__ import annotations

import io
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp.types import TextContent

from modelrouter.attempts import Attempt
from modelrouter.frontdoor import FrontDoor
from modelrouter.logs import AccessLog
from modelrouter.mcp.chat import ProgressReporter, run_chat
from modelrouter.mcp.server import build_mcp_server
from modelrouter.runtime import Runtime
from tests.fakes.upstream import FakeUpstream, ok, status
from tests.router import router_config


@dataclass
class Env:
    rt: Runtime
    mcp: MCPServer[Any]
    first: FakeUpstream
    second: FakeUpstream
    log: io.StringIO


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    async with FakeUpstream("first") as first, FakeUpstream("second") as second:
        cfg = router_config(
            providers={
                "p1": {"kind": "openai", "base_url": first.base_url, "api_key": "k1"},
                "p2": {"kind": "openai", "base_url": second.base_url, "api_key": "k2"},
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
        log = io.StringIO()
        rt = Runtime(cfg, log=AccessLog(log))
        await rt.start()
        try:
            yield Env(rt, build_mcp_server(FrontDoor(rt)), first, second, log)
        finally:
            await rt.aclose()


def text_of(result: Any) -> str:
    block = result.content[0]
    assert isinstance(block, TextContent)
    return block.text


async def test_tools_have_typed_input_and_output_schemas(env: Env) -> None:
    async with Client(env.mcp) as c:
        tools = {t.name: t for t in (await c.list_tools()).tools}
    assert set(tools) == {"chat", "compare", "list_models", "model_health"}
    chat = tools["chat"]
    props = chat.input_schema["properties"]
    assert set(props) == {
        "prompt",
        "messages",
        "model",
        "models",
        "system",
        "temperature",
        "max_tokens",
    }
    assert "ctx" not in props
    assert chat.input_schema.get("required", []) == []
    assert chat.output_schema is not None
    assert set(chat.output_schema["required"]) == {
        "content",
        "model",
        "provider",
        "attempts",
        "usage",
        "finish_reason",
    }
    assert set(tools["compare"].input_schema["required"]) == {"prompt", "models"}
    for t in tools.values():
        assert t.output_schema is not None and t.output_schema["type"] == "object"


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_chat_falls_back_and_reports_each_attempt(env: Env, mode: Any) -> None:
    env.first.default = status(503)
    progress: list[tuple[float, str | None]] = []

    async def on_progress(p: float, total: float | None, message: str | None) -> None:
        progress.append((p, message))

    async with Client(env.mcp, mode=mode) as c:
        result = await c.call_tool("chat", {"prompt": "hi"}, progress_callback=on_progress)
    assert not result.is_error, text_of(result)
    out = result.structured_content
    assert out is not None
    assert out["content"] == "hello from second"
    assert (out["model"], out["provider"], out["finish_reason"]) == ("second", "p2", "stop")
    assert out["usage"]["total_tokens"] > 0
    trail = [(a["model"], a["provider"], a["status"], a["outcome"]) for a in out["attempts"]]
    assert trail == [("first", "p1", 503, "server"), ("second", "p2", 200, "ok")]
    assert out["attempts"][0]["error"]
    assert [m for _, m in progress] == [
        "trying first",
        "first failed: 503; falling back to second",
        "second answered",
    ]
    assert [p for p, _ in progress] == [1, 2, 3]
    # The dispatcher's health bookkeeping saw both attempts.
    assert env.rt.tracker.snapshot("first")["totals"] == {"requests": 1, "failures": 1}
    assert env.rt.tracker.snapshot("second")["totals"] == {"requests": 1, "failures": 0}


async def test_chat_arguments_reach_upstream_and_access_log(env: Env) -> None:
    args = {
        "messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}],
        "prompt": "c",
        "system": "sys",
        "model": "solo",
        "temperature": 0.5,
        "max_tokens": 7,
    }
    async with Client(env.mcp) as c:
        result = await c.call_tool("chat", args)
    assert not result.is_error, text_of(result)
    sent = env.second.requests[-1].json
    assert sent["model"] == "up-2"
    assert sent["messages"] == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c"},
    ]
    assert (sent["temperature"], sent["max_tokens"]) == (0.5, 7)
    assert not sent.get("stream")
    env.rt.log.stop()
    line = orjson.loads(env.log.getvalue().splitlines()[-1])
    assert (line["surface"], line["route"], line["model"], line["status"]) == (
        "mcp",
        "solo",
        "second",
        200,
    )


async def test_all_failed_is_an_error_result_and_the_session_goes_on(env: Env) -> None:
    env.first.default = status(500)
    env.second.default = status(503)
    async with Client(env.mcp) as c:
        result = await c.call_tool("chat", {"prompt": "hi"})
        assert result.is_error
        text = text_of(result)
        assert "Error 502 (all_models_failed)" in text
        assert "- first (p1): server 500" in text
        assert "- second (p2): server 503" in text
        assert result.structured_content is None  # it would not match the output schema
        # Same session: still usable once an upstream recovers.
        env.second.default = ok()
        assert len((await c.list_tools()).tools) == 4
        again = await c.call_tool("chat", {"prompt": "hi", "model": "solo"})
        assert not again.is_error
        assert again.structured_content is not None
        assert again.structured_content["content"] == "hello from second"
    env.rt.log.stop()
    failed = orjson.loads(env.log.getvalue().splitlines()[0])
    assert (failed["surface"], failed["status"], failed["error_code"]) == (
        "mcp",
        502,
        "all_models_failed",
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ({}, "Give 'prompt'"),
        ({"prompt": "x", "model": "nope"}, "Error 404 (model_not_found)"),
        ({"prompt": "x", "models": ["first", "nope"]}, "'nope' does not exist"),
        ({"prompt": "x", "temperature": 5}, "temperature"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "role"),
    ],
)
async def test_bad_arguments_are_error_results(env: Env, args: Any, needle: str) -> None:
    async with Client(env.mcp) as c:
        result = await c.call_tool("chat", args)
    assert result.is_error
    assert needle in text_of(result)
    assert env.first.calls == env.second.calls == 0


async def test_compare_asks_each_model_alone_and_at_once(env: Env) -> None:
    env.first.script(status(503))
    env.first.default = env.second.default = ok(delay=0.4)
    async with Client(env.mcp) as c:
        t0 = time.perf_counter()
        result = await c.call_tool("compare", {"prompt": "hi", "models": ["second", "first"]})
        took = time.perf_counter() - t0
        bad = await c.call_tool("compare", {"prompt": "hi", "models": ["default", "zzz"]})
    assert not result.is_error, text_of(result)
    assert result.structured_content is not None
    second, first = result.structured_content["results"]
    assert (second["model"], second["content"], second["error"]) == (
        "second",
        "hello from second",
        None,
    )
    assert second["latency_ms"] >= 400 and second["usage"]["total_tokens"] > 0
    assert (first["model"], first["content"]) == ("first", None)
    assert "first" in first["error"] and first["usage"] is None
    assert env.second.calls == 1  # no fallback from the failed model
    assert took < 0.75  # concurrent, not 0.4 + 0.4
    assert bad.is_error
    assert "not a model: default, zzz" in text_of(bad)


class RecordingCtx:
    """Stands in for the SDK's Context: records progress, or fails like a closed channel."""

    def __init__(self, broken: bool = False) -> None:
        self.broken = broken
        self.sent: list[tuple[float, str | None]] = []

    async def report_progress(
        self, progress: float, total: float | None = None, message: str | None = None
    ) -> None:
        if self.broken:
            raise ConnectionResetError("client went away")
        self.sent.append((progress, message))


def failed(model: str, status: int | None, outcome: str) -> Attempt:
    return Attempt(model, "p", status, "boom", 1.0, outcome)


async def test_progress_says_retrying_and_no_model_left() -> None:
    ctx = RecordingCtx()
    reporter = ProgressReporter(ctx)
    await reporter.attempt_started("first", 1)
    await reporter.attempt_failed(failed("first", 503, "server"))
    await reporter.attempt_started("first", 2)
    await reporter.attempt_failed(failed("first", None, "connect"))
    await reporter.finish(None)
    assert ctx.sent == [
        (1, "trying first"),
        (2, "first failed: 503; retrying first"),
        (3, "first failed: connect; no model left"),
    ]


async def test_a_broken_progress_channel_does_not_fail_the_chat(env: Env) -> None:
    env.first.default = status(503)
    result = await run_chat(
        FrontDoor(env.rt),
        {"messages": [{"role": "user", "content": "hi"}]},
        RecordingCtx(broken=True),
    )
    assert result.model == "second"
    assert [a.model for a in result.attempts] == ["first", "second"]
