"""The anthropic provider over real HTTP against the strict fake Messages API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from providers.anthropic import AnthropicOptions, AnthropicProvider
from providers.base import ChatRequest, Failure, ProviderError, Target
from tests.fakes.anthropic_upstream import KEY, FakeAnthropic, Refusal, ToolUse, error_body
from tests.fakes.upstream import bad_json, cut_stream, status, stream_error

from .helpers import HI, WEATHER, chunks_of, joined_text, joined_tool_calls

TARGET = Target(name="sonnet", upstream_model="claude-fake")


def provider(base_url: str, key: str = KEY) -> AnthropicProvider:
    opts = AnthropicOptions(kind="anthropic", base_url=base_url, api_key=key)
    return AnthropicProvider("claude", opts)


@pytest.fixture
async def claude(anthropic_up: FakeAnthropic) -> AsyncIterator[AnthropicProvider]:
    p = provider(anthropic_up.base_url)
    await p.start()
    yield p
    await p.aclose()


async def collect(p: AnthropicProvider, body: dict[str, Any]) -> list[bytes]:
    return [e async for e in p.stream(ChatRequest.from_body(body), TARGET, 5.0)]


async def test_chat(claude: AnthropicProvider, anthropic_up: FakeAnthropic) -> None:
    anthropic_up.usage_extra.update(cache_read_input_tokens=40, cache_creation_input_tokens=2)
    done = await claude.chat(ChatRequest.from_body({"model": "sonnet", "messages": HI}), TARGET, 5)
    body = orjson.loads(done.body)
    assert body["choices"][0]["message"]["content"] == "Hello from Claude"
    assert body["choices"][0]["finish_reason"] == "stop"
    assert done.usage is not None and done.usage["prompt_tokens_details"]["cached_tokens"] == 40
    sent = anthropic_up.requests[-1]
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == KEY
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in sent.headers
    assert sent.json["system"] == [{"type": "text", "text": "Be brief."}]
    assert sent.json["max_tokens"] == 4096


async def test_stop_and_max_tokens_reach_the_upstream(claude: AnthropicProvider) -> None:
    msgs = [{"role": "user", "content": "go"}]
    stopped = await claude.chat(
        ChatRequest.from_body({"messages": msgs, "stop": "from"}), TARGET, 5
    )
    assert orjson.loads(stopped.body)["choices"][0]["message"]["content"] == "Hello "
    cut = await claude.chat(ChatRequest.from_body({"messages": msgs, "max_tokens": 1}), TARGET, 5)
    assert orjson.loads(cut.body)["choices"][0]["finish_reason"] == "length"


async def test_stream_with_usage(claude: AnthropicProvider) -> None:
    body = {"messages": HI, "stream": True, "stream_options": {"include_usage": True}}
    events = await collect(claude, body)
    assert events[-1] == b"data: [DONE]\n\n"
    chunks = chunks_of(events)
    assert joined_text(chunks) == "Hello from Claude"
    assert chunks[-1]["usage"]["completion_tokens"] == 3


async def test_stream_tool_call(claude: AnthropicProvider, anthropic_up: FakeAnthropic) -> None:
    anthropic_up.script(ToolUse("get_weather", {"city": "Paris"}))
    events = await collect(claude, {"messages": HI, "tools": [WEATHER], "stream": True})
    chunks = chunks_of(events)
    assert joined_tool_calls(chunks) == [
        {"id": "toolu_fake0001", "name": "get_weather", "arguments": '{"city":"Paris"}'}
    ]
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    # Not asked for, the usage chunk still ends the stream: the dispatcher needs it.
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0


@pytest.mark.parametrize(
    ("behaviour", "failure", "code"),
    [
        (status(529), Failure.SERVER, 529),
        (status(500), Failure.SERVER, 500),
        (
            status(429, error_body(429, "rate limited"), {"retry-after": "7"}),
            Failure.RATE_LIMIT,
            429,
        ),
        (status(401), Failure.MISCONFIGURED, 401),
        (status(403), Failure.MISCONFIGURED, 403),
        (status(404), Failure.MISCONFIGURED, 404),
        (
            status(400, error_body(400, "prompt is too long: 300000 tokens > 200000 maximum")),
            Failure.CONTEXT_LENGTH,
            400,
        ),
        (
            status(400, error_body(400, "Your credit balance is too low")),
            Failure.MISCONFIGURED,
            400,
        ),
        (status(413), Failure.CLIENT, 413),
        (bad_json(), Failure.MALFORMED, None),
        (Refusal(), Failure.CONTENT_FILTER, None),
    ],
)
async def test_chat_errors(
    claude: AnthropicProvider,
    anthropic_up: FakeAnthropic,
    behaviour: Any,
    failure: Failure,
    code: int | None,
) -> None:
    anthropic_up.script(behaviour)
    with pytest.raises(ProviderError) as info:
        await claude.chat(ChatRequest.from_body({"messages": HI}), TARGET, 5)
    assert info.value.failure is failure
    assert info.value.status == code
    assert KEY not in info.value.message
    if code == 429:
        assert info.value.retry_after == 7


@pytest.mark.parametrize(
    ("behaviour", "failure", "sent"),
    [
        (stream_error(after=0, message="Overloaded"), Failure.SERVER, 0),
        (stream_error(after=2, message="Overloaded"), Failure.SERVER, 3),
        (cut_stream(after=1), Failure.INTERRUPTED, 2),
        (status(529), Failure.SERVER, 0),
        (bad_json(), Failure.MALFORMED, 0),
    ],
)
async def test_stream_errors(
    claude: AnthropicProvider,
    anthropic_up: FakeAnthropic,
    behaviour: Any,
    failure: Failure,
    sent: int,
) -> None:
    anthropic_up.script(behaviour)
    events: list[bytes] = []
    with pytest.raises(ProviderError) as info:
        async for event in claude.stream(
            ChatRequest.from_body({"messages": HI, "stream": True}), TARGET, 5
        ):
            events.append(event)
    assert info.value.failure is failure
    # Nothing reached the caller before an early failure, so the router may fall back.
    assert len(events) == sent


async def test_request_the_api_refuses_is_a_client_error(claude: AnthropicProvider) -> None:
    orphan = [
        {"role": "user", "content": "x"},
        {"role": "tool", "tool_call_id": "t1", "content": "r"},
    ]
    with pytest.raises(ProviderError) as info:
        await claude.chat(ChatRequest.from_body({"messages": orphan}), TARGET, 5)
    assert info.value.failure is Failure.CLIENT
    assert info.value.body is not None
    assert orjson.loads(info.value.body)["error"]["type"] == "invalid_request_error"


async def test_probes(claude: AnthropicProvider, anthropic_up: FakeAnthropic) -> None:
    await claude.probe(TARGET, 5, "models")
    assert anthropic_up.requests[-1].path == "/v1/models/claude-fake"
    await claude.probe(TARGET, 5, "chat")
    assert anthropic_up.requests[-1].json["max_tokens"] == 1
    with pytest.raises(ProviderError) as info:
        await claude.probe(Target("x", "claude-missing"), 5, "models")
    assert info.value.failure is Failure.MISCONFIGURED


async def test_wrong_key_and_v1_base_url(anthropic_up: FakeAnthropic) -> None:
    p = provider(anthropic_up.base_url + "/v1/", key="sk-wrong-secret")
    await p.start()
    try:
        with pytest.raises(ProviderError) as info:
            await p.probe(TARGET, 5, "models")
    finally:
        await p.aclose()
    assert info.value.failure is Failure.MISCONFIGURED
    assert anthropic_up.requests[-1].path == "/v1/models/claude-fake"
    assert "sk-wrong-secret" not in info.value.message
