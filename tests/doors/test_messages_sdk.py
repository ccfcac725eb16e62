"""The official ``anthropic`` SDK against the router's Messages door, every vendor behind it."""

from __future__ import annotations

import base64
from typing import Any

import anthropic
import httpx2
import orjson
import pytest

from tests.fakes.anthropic_upstream import FakeAnthropic, ToolUse
from tests.fakes.gemini_upstream import FakeGemini, FunctionCall
from tests.fakes.upstream import FakeUpstream, status
from tests.providers.openai_like import FakeOpenAI, ToolCalls
from tests.router import RunningRouter

from .conftest import GREETING, KEY, SERVED

WEATHER: Any = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n fake image bytes").decode()


def client(r: RunningRouter, key: str = KEY) -> anthropic.Anthropic:
    """An Anthropic client pointed at the router, as ``ANTHROPIC_BASE_URL`` would."""
    return anthropic.Anthropic(base_url=r.url, api_key=key, max_retries=0, timeout=20)


def upstream_of(served: str, vendors: dict[str, FakeUpstream]) -> FakeUpstream:
    """The (freshly reset) fake behind ``served``."""
    up = vendors[{"gpt": "openai", "gemini": "gemini", "claude": "anthropic"}[served]]
    up.clear()
    return up


@pytest.fixture(autouse=True)
def _fresh(openai_up: FakeOpenAI, gemini_up: FakeGemini, anthropic_up: FakeAnthropic) -> None:
    """Every vendor fake reset before each test."""


@pytest.mark.parametrize("served", SERVED)
def test_plain_message(router: RunningRouter, served: str) -> None:
    raw = client(router).messages.with_raw_response.create(
        model=served, max_tokens=200, messages=[{"role": "user", "content": "Say hi"}]
    )
    msg = raw.parse()
    assert msg.type == "message" and msg.role == "assistant"
    assert [b.type for b in msg.content] == ["text"]
    assert msg.content[0].text == GREETING[served]  # type: ignore[union-attr]
    assert msg.stop_reason == "end_turn"
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0
    assert raw.headers["x-modelrouter-model"] == served


@pytest.mark.parametrize("served", SERVED)
def test_system_prompt_reaches_the_vendor(
    router: RunningRouter, served: str, vendors: dict[str, FakeUpstream]
) -> None:
    up = upstream_of(served, vendors)
    client(router).messages.create(
        model=served,
        max_tokens=50,
        system="You are terse.",
        messages=[
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "Again"},
        ],
    )
    sent = up.requests[-1].json
    if served == "gpt":
        assert sent["messages"] == [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "Again"},
        ]
        assert sent["max_tokens"] == 50
    elif served == "gemini":
        assert sent["systemInstruction"] == {"parts": [{"text": "You are terse."}]}
        assert [c["role"] for c in sent["contents"]] == ["user", "model", "user"]
    else:
        assert sent["system"] == "You are terse."
        assert sent["messages"][1] == {"role": "assistant", "content": "Hello."}


def _script_tool_call(served: str, vendors: dict[str, FakeUpstream]) -> FakeUpstream:
    up = upstream_of(served, vendors)
    if served == "gpt":
        up.script(ToolCalls((("get_weather", {"city": "Paris"}),)))  # type: ignore[arg-type]
    elif served == "gemini":
        up.script(FunctionCall("get_weather", {"city": "Paris"}))  # type: ignore[arg-type]
    else:
        up.script(ToolUse("get_weather", {"city": "Paris"}))  # type: ignore[arg-type]
    return up


@pytest.mark.parametrize("served", SERVED)
def test_tool_use_round_trip(
    router: RunningRouter, served: str, vendors: dict[str, FakeUpstream]
) -> None:
    up = _script_tool_call(served, vendors)
    c = client(router)
    ask: Any = [{"role": "user", "content": "Weather in Paris?"}]
    first = c.messages.create(model=served, max_tokens=100, tools=[WEATHER], messages=ask)
    assert first.stop_reason == "tool_use"
    use = first.content[-1]
    assert use.type == "tool_use" and use.name == "get_weather"
    assert use.input == {"city": "Paris"}
    followup: Any = [
        *ask,
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "Sunny, 21C"}],
        },
    ]
    second = c.messages.create(model=served, max_tokens=100, tools=[WEATHER], messages=followup)
    assert second.stop_reason == "end_turn"
    sent = up.requests[-1].json
    if served == "gpt":
        assert sent["messages"][-1] == {
            "role": "tool",
            "tool_call_id": use.id,
            "content": "Sunny, 21C",
        }
        assert sent["messages"][-2]["tool_calls"][0]["function"]["name"] == "get_weather"
        assert sent["tools"][0]["function"]["parameters"] == WEATHER["input_schema"]
    elif served == "gemini":
        response = sent["contents"][-1]["parts"][0]["functionResponse"]
        assert response == {"name": "get_weather", "response": {"output": "Sunny, 21C"}}
        assert second.content[0].text == 'tool said: {"output":"Sunny, 21C"}'  # type: ignore[union-attr]
    else:
        assert sent["messages"][-1]["content"][0]["tool_use_id"] == use.id
        assert second.content[0].text == "tool said: Sunny, 21C"  # type: ignore[union-attr]


@pytest.mark.parametrize("served", SERVED)
def test_image_reaches_the_vendor(
    router: RunningRouter, served: str, vendors: dict[str, FakeUpstream]
) -> None:
    up = upstream_of(served, vendors)
    image: Any = {"type": "base64", "media_type": "image/png", "data": PNG}
    content: Any = [{"type": "image", "source": image}, {"type": "text", "text": "What is this?"}]
    msg = client(router).messages.create(
        model=served, max_tokens=100, messages=[{"role": "user", "content": content}]
    )
    assert msg.content[0].type == "text"
    sent = up.requests[-1].json
    if served == "gpt":
        assert sent["messages"][0]["content"] == [
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
            {"type": "text", "text": "What is this?"},
        ]
    elif served == "gemini":
        assert sent["contents"][0]["parts"][0] == {
            "inlineData": {"mimeType": "image/png", "data": PNG}
        }
    else:
        assert sent["messages"][0]["content"][0] == {"type": "image", "source": image}


@pytest.mark.parametrize("served", SERVED)
def test_stop_sequences_and_max_tokens(
    router: RunningRouter, served: str, vendors: dict[str, FakeUpstream]
) -> None:
    up = upstream_of(served, vendors)
    msg = client(router).messages.create(
        model=served,
        max_tokens=3,
        stop_sequences=["from"],
        messages=[{"role": "user", "content": "Hi"}],
    )
    sent = up.requests[-1].json
    if served == "gpt":
        assert (sent["stop"], sent["max_tokens"]) == (["from"], 3)
    elif served == "gemini":
        config = sent["generationConfig"]
        assert (config["stopSequences"], config["maxOutputTokens"]) == (["from"], 3)
        assert msg.content[0].text == "Hello "  # type: ignore[union-attr]
    else:
        assert msg.stop_reason == "stop_sequence" and msg.stop_sequence == "from"


@pytest.mark.parametrize("served", SERVED)
def test_stream_helper(router: RunningRouter, served: str) -> None:
    with client(router).messages.stream(
        model=served, max_tokens=100, messages=[{"role": "user", "content": "Say hi"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == GREETING[served]
    assert final.content[0].text == GREETING[served]  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0 and final.usage.input_tokens > 0


@pytest.mark.parametrize("served", SERVED)
def test_stream_helper_tool_use(
    router: RunningRouter, served: str, vendors: dict[str, FakeUpstream]
) -> None:
    _script_tool_call(served, vendors)
    with client(router).messages.stream(
        model=served,
        max_tokens=100,
        tools=[WEATHER],
        messages=[{"role": "user", "content": "Weather in Paris?"}],
    ) as stream:
        final = stream.get_final_message()
    use = final.content[-1]
    assert use.type == "tool_use" and use.input == {"city": "Paris"}
    assert final.stop_reason == "tool_use"


def test_fallback_from_a_failing_primary(router: RunningRouter, openai_up: FakeOpenAI) -> None:
    openai_up.script(status(500))
    raw = client(router).messages.with_raw_response.create(
        model="gpt-then-claude", max_tokens=50, messages=[{"role": "user", "content": "Hi"}]
    )
    assert raw.parse().content[0].text == GREETING["claude"]  # type: ignore[union-attr]
    assert raw.headers["x-modelrouter-model"] == "claude"
    assert raw.headers["x-modelrouter-attempts"] == "2"
    assert openai_up.calls == 1


def test_stream_fallback_from_a_refused_primary(router: RunningRouter) -> None:
    with client(router).messages.stream(
        model="dead-then-gemini", max_tokens=50, messages=[{"role": "user", "content": "Hi"}]
    ) as stream:
        assert stream.get_final_text() == GREETING["gemini"]
        assert stream.response.headers["x-modelrouter-model"] == "gemini"


def test_passthrough_sends_the_body_as_sent(
    router: RunningRouter, anthropic_up: FakeAnthropic
) -> None:
    body: Any = {
        "max_tokens": 64,
        "messages": [
            {
                "role": "user",
                "content": [{"type": "text", "text": "Hi", "cache_control": {"type": "ephemeral"}}],
            }
        ],
        "system": [{"type": "text", "text": "Be kind.", "cache_control": {"type": "ephemeral"}}],
        "metadata": {"user_id": "u-1"},
        "service_tier": "auto",
        "model": "claude",
    }
    raw = client(router).messages.with_raw_response.create(
        **body, extra_headers={"anthropic-beta": "fancy-2099"}
    )
    assert IGNORED not in raw.headers
    sent = anthropic_up.requests[-1]
    assert sent.json == {**body, "model": "claude-fake"}
    assert sent.headers["anthropic-beta"] == "fancy-2099"


IGNORED = "x-modelrouter-ignored"


def test_serving_hints_another_vendor_cannot_take_are_named(
    router: RunningRouter, openai_up: FakeOpenAI
) -> None:
    raw = client(router).messages.with_raw_response.create(
        model="gpt",
        max_tokens=64,
        service_tier="auto",
        system=[{"type": "text", "text": "Be kind.", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": "Hi"}],
    )
    assert raw.headers[IGNORED] == "cache_control,service_tier"
    assert "service_tier" not in openai_up.requests[-1].json


def test_what_only_anthropic_serves_skips_other_vendors(
    router: RunningRouter, openai_up: FakeOpenAI, anthropic_up: FakeAnthropic
) -> None:
    c = client(router)
    # A field the translation does not know goes to Anthropic only, as sent; the
    # Anthropic fake knows no such field either, and its own 400 comes back.
    with pytest.raises(anthropic.BadRequestError) as info:
        c.messages.create(
            model="gpt-then-claude",
            max_tokens=64,
            messages=[{"role": "user", "content": "Hi"}],
            extra_body={"future_field": True},
        )
    assert info.value.message == (
        "Error code: 400 - {'type': 'error', 'error': {'type': 'invalid_request_error', "
        "'message': 'future_field: Extra inputs are not permitted'}, 'request_id': 'req_fake'}"
    )
    assert info.value.response.headers["x-modelrouter-model"] == "claude"
    assert openai_up.calls == 0
    # A route with no Anthropic model cannot serve Anthropic's server tools at all.
    server_tool: Any = {"type": "web_search_20250305", "name": "web_search"}
    with pytest.raises(anthropic.BadRequestError) as refused:
        c.messages.create(
            model="gpt",
            max_tokens=64,
            tools=[server_tool],
            messages=[{"role": "user", "content": "Hi"}],
        )
    assert "server tool 'web_search_20250305'" in str(refused.value.api_message)
    assert refused.value.type == "invalid_request_error"
    assert openai_up.calls == 0


def test_wire_body_of_passthrough_is_the_clients_bytes(
    router: RunningRouter, anthropic_up: FakeAnthropic
) -> None:
    raw = (
        b'{"model":"claude","max_tokens":9,'
        b'"messages":[{"role":"user","content":"\\u00e9t\\u00e9"}]}'
    )
    r = httpx2.post(
        router.url + "/v1/messages", content=raw, headers={"x-api-key": KEY}, timeout=10
    )
    assert r.status_code == 200, r.text
    sent = anthropic_up.requests[-1].body
    assert sent == (
        b'{"max_tokens":9,"messages":[{"role":"user","content":"\\u00e9t\\u00e9"}],'
        b'"model":"claude-fake"}'
    )
    assert orjson.loads(r.content)["type"] == "message"


def test_stream_falls_back_to_anthropic_as_sent(
    router: RunningRouter, openai_up: FakeOpenAI, anthropic_up: FakeAnthropic
) -> None:
    openai_up.script(status(500))
    with client(router).messages.stream(
        model="gpt-then-claude", max_tokens=50, messages=[{"role": "user", "content": "Hi"}]
    ) as stream:
        final = stream.get_final_message()
        assert stream.response.headers["x-modelrouter-model"] == "claude"
    # Anthropic's own message, not a translation: its id and model as the fake sent them.
    assert final.id.startswith("msg_fake") and final.model == "claude-fake"
    assert final.content[0].text == GREETING["claude"]  # type: ignore[union-attr]
    assert anthropic_up.requests[-1].json["stream"] is True
