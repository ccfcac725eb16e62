"""Every vendor through the real router, with the openai SDK as the client.

One route mixes them all — ``["gpt-4o-mini", "claude-sonnet", "gemini-flash",
"local-llama"]`` — and its first vendor is down, as in the issue's example.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.fakes.anthropic_upstream import KEY as ANTHROPIC_KEY
from tests.fakes.anthropic_upstream import FakeAnthropic, ToolUse
from tests.fakes.gemini_upstream import KEY as GEMINI_KEY
from tests.fakes.gemini_upstream import Blocked, FakeGemini, FunctionCall
from tests.fakes.upstream import FakeUpstream, refused_base_url, status, stream_error
from tests.router import RunningRouter, router_config, run_router

from .openai_like import FakeAzure, FakeOllama, ToolCalls

VENDORS = ["claude-sonnet", "gemini-flash", "azure-gpt", "local-llama"]
GREETING = {
    "claude-sonnet": "Hello from Claude",
    "gemini-flash": "Hello from Gemini",
    "azure-gpt": "hello from azure",
    "local-llama": "hello from ollama",
}
WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
ASK: Any = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What is the weather in Paris?"},
]


@pytest.fixture(scope="module")
def router(vendors: dict[str, FakeUpstream]) -> Iterator[RunningRouter]:
    ollama = vendors["ollama"]
    assert isinstance(ollama, FakeOllama)
    cfg = router_config(
        providers={
            "claude": {
                "kind": "anthropic",
                "base_url": vendors["anthropic"].base_url,
                "api_key": ANTHROPIC_KEY,
            },
            "gem": {
                "kind": "gemini",
                "base_url": vendors["gemini"].base_url,
                "api_key": GEMINI_KEY,
            },
            "az": {"kind": "azure", "base_url": vendors["azure"].base_url, "api_key": "azure-key"},
            "local": {"kind": "ollama", "base_url": ollama.root},
            "down": {"kind": "openai", "base_url": refused_base_url(), "api_key": "sk-down"},
        },
        models={
            "gpt-4o-mini": {"provider": "down"},
            "claude-sonnet": {"provider": "claude", "model": "claude-fake"},
            "gemini-flash": {"provider": "gem", "model": "gemini-fake"},
            "azure-gpt": {"provider": "az", "model": "gpt-dep"},
            "local-llama": {"provider": "local", "model": "llama3.2"},
        },
        routes={
            "default": {"models": ["gpt-4o-mini", "claude-sonnet", "gemini-flash", "local-llama"]},
        },
        # Failures are scripted on purpose here: keep every breaker closed.
        health={"failure_threshold": 1000, "min_requests": 1000},
    )
    with run_router(cfg) as r:
        yield r


@pytest.fixture
def client(router: RunningRouter) -> Iterator[openai.OpenAI]:
    c = openai.OpenAI(base_url=router.base_url, api_key="unused", max_retries=0, timeout=10)
    yield c
    c.close()


@pytest.fixture
def fakes(
    anthropic_up: FakeAnthropic, gemini_up: FakeGemini, azure_up: FakeAzure, ollama_up: FakeOllama
) -> dict[str, FakeUpstream]:
    """Each vendor model's fake, reset."""
    return {
        "claude-sonnet": anthropic_up,
        "gemini-flash": gemini_up,
        "azure-gpt": azure_up,
        "local-llama": ollama_up,
    }


def script_weather_call(model: str, up: FakeUpstream) -> None:
    if model == "claude-sonnet":
        up.script(ToolUse("get_weather", {"city": "Paris"}))
    elif model == "gemini-flash":
        up.script(FunctionCall("get_weather", {"city": "Paris"}, signature="thought"))
    else:
        up.script(ToolCalls((("get_weather", {"city": "Paris"}),)))


@pytest.mark.parametrize("model", VENDORS)
def test_plain_chat(client: openai.OpenAI, fakes: dict[str, FakeUpstream], model: str) -> None:
    raw = client.chat.completions.with_raw_response.create(model=model, messages=ASK)
    resp = raw.parse()
    assert raw.headers["x-modelrouter-model"] == model
    assert resp.choices[0].message.content == GREETING[model]
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage is not None and resp.usage.total_tokens > 0
    assert fakes[model].calls == 1


@pytest.mark.parametrize("model", VENDORS)
def test_streaming(client: openai.OpenAI, fakes: dict[str, FakeUpstream], model: str) -> None:
    stream = client.chat.completions.create(
        model=model, messages=ASK, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == GREETING[model]
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finishes == ["stop"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


@pytest.mark.parametrize("model", VENDORS)
def test_tool_calling_round_trip(
    client: openai.OpenAI, fakes: dict[str, FakeUpstream], model: str
) -> None:
    up = fakes[model]
    script_weather_call(model, up)
    first = client.chat.completions.create(model=model, messages=ASK, tools=[WEATHER])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}

    messages = [
        *ASK,
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 21}'},
    ]
    final = client.chat.completions.create(model=model, messages=messages, tools=[WEATHER])
    answer = final.choices[0].message.content
    assert final.choices[0].finish_reason == "stop"
    if model in ("claude-sonnet", "gemini-flash"):
        # The fake answers with what the tool said: the result reached it intact.
        assert answer is not None and "tool said:" in answer and "21" in answer
    if model == "gemini-flash":
        # Gemini's thought signature went out in extra_content and came back on the call.
        call_turn = up.requests[-1].json["contents"][1]
        assert call_turn["parts"][0]["thoughtSignature"] == "dGhvdWdodA=="
    if model in ("azure-gpt", "local-llama"):
        # Passthrough: the tool turn reached the upstream exactly as the client sent it.
        assert answer == GREETING[model]
        sent = up.requests[-1].json["messages"]
        assert sent[-1] == {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 21}'}
        assert sent[-2]["tool_calls"][0]["id"] == call.id


@pytest.mark.parametrize("model", VENDORS)
def test_streamed_tool_call(
    client: openai.OpenAI, fakes: dict[str, FakeUpstream], model: str
) -> None:
    script_weather_call(model, fakes[model])
    stream = client.chat.completions.create(model=model, messages=ASK, tools=[WEATHER], stream=True)
    name, args, finish = "", "", None
    for chunk in stream:
        if not chunk.choices:
            continue
        for tc in chunk.choices[0].delta.tool_calls or ():
            name += tc.function.name or "" if tc.function else ""
            args += tc.function.arguments or "" if tc.function else ""
        finish = chunk.choices[0].finish_reason or finish
    assert name == "get_weather"
    assert json.loads(args) == {"city": "Paris"}
    assert finish == "tool_calls"


def test_route_whose_first_vendor_is_down_answers_from_the_next(
    client: openai.OpenAI, fakes: dict[str, FakeUpstream]
) -> None:
    raw = client.chat.completions.with_raw_response.create(model="default", messages=ASK)
    assert raw.headers["x-modelrouter-model"] == "claude-sonnet"
    assert raw.parse().choices[0].message.content == "Hello from Claude"
    assert int(raw.headers["x-modelrouter-attempts"]) >= 2


def test_overloaded_anthropic_falls_back_to_gemini(
    client: openai.OpenAI, fakes: dict[str, FakeUpstream]
) -> None:
    fakes["claude-sonnet"].script(status(529), status(529))
    raw = client.chat.completions.with_raw_response.create(model="default", messages=ASK)
    assert raw.headers["x-modelrouter-model"] == "gemini-flash"
    assert raw.parse().choices[0].message.content == "Hello from Gemini"


def test_anthropic_error_event_before_content_falls_back_in_a_stream(
    client: openai.OpenAI, fakes: dict[str, FakeUpstream]
) -> None:
    fakes["claude-sonnet"].script(stream_error(after=0), stream_error(after=0))
    raw = client.chat.completions.with_raw_response.create(
        model="default", messages=ASK, stream=True
    )
    assert raw.headers["x-modelrouter-model"] == "gemini-flash"
    text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert text == "Hello from Gemini"


def test_gemini_safety_block_falls_back(
    client: openai.OpenAI, fakes: dict[str, FakeUpstream]
) -> None:
    fakes["claude-sonnet"].script(status(529), status(529))
    fakes["gemini-flash"].script(Blocked("SAFETY"))
    raw = client.chat.completions.with_raw_response.create(model="default", messages=ASK)
    assert raw.headers["x-modelrouter-model"] == "local-llama"
    assert fakes["gemini-flash"].calls == 1, "a content filter is not retried on the same model"


def test_request_the_vendor_refuses_is_returned_not_retried(
    client: openai.OpenAI, fakes: dict[str, FakeUpstream]
) -> None:
    orphan: Any = [*ASK, {"role": "tool", "tool_call_id": "nope", "content": "x"}]
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="claude-sonnet", messages=orphan)
    assert "tool_use_id" in str(info.value)
    assert fakes["claude-sonnet"].calls == 1
