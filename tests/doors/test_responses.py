"""The official ``openai`` SDK's ``responses`` against the router, every vendor behind it."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.gemini_upstream import FakeGemini
from tests.fakes.upstream import FakeUpstream, status
from tests.providers.openai_like import FakeOpenAI
from tests.router import RunningRouter

from .conftest import GREETING, KEY, SERVED
from .test_messages_sdk import _script_tool_call, upstream_of

WEATHER: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def client(r: RunningRouter) -> openai.OpenAI:
    return openai.OpenAI(base_url=r.base_url, api_key=KEY, max_retries=0, timeout=20)


@pytest.fixture(autouse=True)
def _fresh(openai_up: FakeOpenAI, gemini_up: FakeGemini, anthropic_up: FakeAnthropic) -> None:
    """Every vendor fake reset before each test."""


@pytest.mark.parametrize("served", SERVED)
def test_plain_response(router: RunningRouter, served: str) -> None:
    raw = client(router).responses.with_raw_response.create(model=served, input="Say hi")
    resp = raw.parse()
    assert resp.object == "response" and resp.id.startswith("resp_")
    assert resp.status == "completed" and resp.error is None
    assert resp.output_text == GREETING[served]
    [item] = resp.output
    assert item.type == "message" and item.role == "assistant" and item.status == "completed"
    assert resp.usage is not None and resp.usage.output_tokens > 0
    assert resp.usage.total_tokens == resp.usage.input_tokens + resp.usage.output_tokens
    assert raw.headers["x-modelrouter-model"] == served


@pytest.mark.parametrize("served", SERVED)
def test_instructions_and_input_items(
    router: RunningRouter, served: str, vendors: dict[str, FakeUpstream]
) -> None:
    up = upstream_of(served, vendors)
    resp = client(router).responses.create(
        model=served,
        instructions="You are terse.",
        input=[
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": [{"type": "input_text", "text": "Again"}]},
        ],
        max_output_tokens=40,
        temperature=0.5,
    )
    assert resp.max_output_tokens == 40 and resp.instructions == "You are terse."
    sent = up.requests[-1].json
    if served == "gpt":
        assert sent["messages"] == [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "Again"},
        ]
        assert (sent["max_tokens"], sent["temperature"]) == (40, 0.5)
    elif served == "gemini":
        assert sent["systemInstruction"] == {"parts": [{"text": "You are terse."}]}
        assert sent["generationConfig"]["maxOutputTokens"] == 40
    else:
        assert sent["system"] == [{"type": "text", "text": "You are terse."}]
        assert sent["max_tokens"] == 40


@pytest.mark.parametrize("served", SERVED)
def test_function_call_round_trip(
    router: RunningRouter, served: str, vendors: dict[str, FakeUpstream]
) -> None:
    up = _script_tool_call(served, vendors)
    c = client(router)
    ask: Any = [{"role": "user", "content": "Weather in Paris?"}]
    first = c.responses.create(model=served, input=ask, tools=[WEATHER])
    [call] = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather" and call.call_id
    assert call.arguments == '{"city":"Paris"}'
    followup: Any = [
        *ask,
        call.model_dump(exclude_none=True),
        {"type": "function_call_output", "call_id": call.call_id, "output": "Sunny, 21C"},
    ]
    second = c.responses.create(model=served, input=followup, tools=[WEATHER])
    assert second.status == "completed" and second.output_text
    sent = up.requests[-1].json
    if served == "gpt":
        assert sent["messages"][-2]["tool_calls"][0]["id"] == call.call_id
        assert sent["messages"][-1] == {
            "role": "tool",
            "tool_call_id": call.call_id,
            "content": "Sunny, 21C",
        }
    elif served == "gemini":
        part = sent["contents"][-1]["parts"][0]
        assert part == {
            "functionResponse": {"name": "get_weather", "response": {"output": "Sunny, 21C"}}
        }
    else:
        assert sent["messages"][-1]["content"][0] == {
            "type": "tool_result",
            "tool_use_id": call.call_id,
            "content": "Sunny, 21C",
        }


@pytest.mark.parametrize("served", SERVED)
def test_stream_helper(router: RunningRouter, served: str) -> None:
    with client(router).responses.stream(model=served, input="Say hi") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == GREETING[served]
    assert final.output_text == GREETING[served] and final.status == "completed"
    assert final.usage is not None and final.usage.output_tokens > 0


@pytest.mark.parametrize("served", SERVED)
def test_stream_function_call(
    router: RunningRouter, served: str, vendors: dict[str, FakeUpstream]
) -> None:
    _script_tool_call(served, vendors)
    with client(router).responses.stream(
        model=served, input="Weather in Paris?", tools=[WEATHER]
    ) as stream:
        final = stream.get_final_response()
    [call] = final.output
    assert call.type == "function_call" and call.status == "completed"
    assert (call.name, call.arguments) == ("get_weather", '{"city":"Paris"}')


def test_state_is_refused_with_a_reason(router: RunningRouter) -> None:
    c = client(router)
    with pytest.raises(openai.BadRequestError) as info:
        c.responses.create(model="gpt", input="Hi", previous_response_id="resp_123")
    assert "keeps no conversation state" in info.value.message
    assert info.value.param == "previous_response_id"
    with pytest.raises(openai.BadRequestError) as stored:
        c.responses.create(model="gpt", input="Hi", store=True)
    assert "stateless" in stored.value.message and stored.value.param == "store"
    assert c.responses.create(model="gpt", input="Hi", store=False).status == "completed"


def test_what_the_router_cannot_do_is_refused(router: RunningRouter) -> None:
    c = client(router)
    with pytest.raises(openai.BadRequestError, match="function tools only"):
        c.responses.create(model="gpt", input="Hi", tools=[{"type": "web_search"}])
    with pytest.raises(openai.BadRequestError, match="Unknown parameter: 'bogus'"):
        c.responses.create(model="gpt", input="Hi", extra_body={"bogus": 1})
    with pytest.raises(openai.NotFoundError):
        c.responses.create(model="no-such-model", input="Hi")


def test_serving_hints_are_named_not_sent(router: RunningRouter, openai_up: FakeOpenAI) -> None:
    raw = client(router).responses.with_raw_response.create(
        model="gpt", input="Hi", service_tier="flex", prompt_cache_key="k"
    )
    assert raw.headers["x-modelrouter-ignored"] == "prompt_cache_key,service_tier"
    assert "service_tier" not in openai_up.requests[-1].json


def test_fallback_from_a_failing_primary(router: RunningRouter, openai_up: FakeOpenAI) -> None:
    openai_up.script(status(500))
    raw = client(router).responses.with_raw_response.create(model="gpt-then-claude", input="Hi")
    assert raw.parse().output_text == GREETING["claude"]
    assert raw.headers["x-modelrouter-model"] == "claude"
    openai_up.script(status(503))
    with client(router).responses.stream(model="gpt-then-claude", input="Hi") as stream:
        assert stream.get_final_response().output_text == GREETING["claude"]


def test_token_limit_is_incomplete(router: RunningRouter) -> None:
    resp = client(router).responses.create(model="claude", input="Hi", max_output_tokens=2)
    assert resp.status == "incomplete"
    assert resp.incomplete_details is not None
    assert resp.incomplete_details.reason == "max_output_tokens"
