"""Anthropic translation without HTTP: requests, answers, streams and the error table.

Every translated request is also run through the fake's strict schema check, so a
translation the real API would refuse fails here first.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from anthropic.types import Message

from providers.anthropic_reply import AnthropicStream, from_anthropic, usage_of
from providers.anthropic_wire import classify, to_anthropic
from providers.base import Failure, ProviderError
from tests.fakes.anthropic_schema import validate
from tests.fakes.anthropic_upstream import error_body

from .helpers import WEATHER, chunks_of, joined_text, joined_tool_calls

PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5Er"
    "kJggg=="
)


def translate(body: dict[str, Any], stream: bool = False) -> dict[str, Any]:
    out = to_anthropic(body, "claude-x", default_max_tokens=1024, stream=stream)
    validate(out)
    return out


def test_system_messages_go_to_system_and_roles_alternate() -> None:
    out = translate(
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": [{"type": "text", "text": "Use French."}]},
                {"role": "user", "content": "hi"},
                {"role": "user", "content": [{"type": "text", "text": "there"}]},
                {"role": "assistant", "content": "bonjour"},
                {"role": "user", "content": "again"},
            ]
        }
    )
    assert out["system"] == [
        {"type": "text", "text": "Be brief."},
        {"type": "text", "text": "Use French."},
    ]
    assert [m["role"] for m in out["messages"]] == ["user", "assistant", "user"]
    assert out["messages"][0]["content"] == [
        {"type": "text", "text": "hi"},
        {"type": "text", "text": "there"},
    ]
    assert out["max_tokens"] == 1024
    assert "stream" not in out


def test_tool_round_trip_messages() -> None:
    body = {
        "messages": [
            {"role": "user", "content": "weather in Paris and Rome?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "toolu_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    },
                    {
                        "id": "toolu_2",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "toolu_1", "content": "21C"},
            {
                "role": "tool",
                "tool_call_id": "toolu_2",
                "content": [{"type": "text", "text": "25C"}],
            },
            {"role": "user", "content": "which is warmer?"},
        ],
        "tools": [WEATHER],
        "tool_choice": "required",
        "parallel_tool_calls": False,
    }
    before = copy.deepcopy(body)
    out = translate(body)
    assert body == before, "the client's body must not be modified"
    assistant, results = out["messages"][1], out["messages"][2]
    assert assistant["content"] == [
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"city": "Rome"}},
    ]
    assert results["role"] == "user"
    assert results["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "21C"},
        {
            "type": "tool_result",
            "tool_use_id": "toolu_2",
            "content": [{"type": "text", "text": "25C"}],
        },
        {"type": "text", "text": "which is warmer?"},
    ]
    assert out["tools"] == [
        {
            "name": "get_weather",
            "input_schema": WEATHER["function"]["parameters"],  # type: ignore[index]
            "description": "Weather for a city",
        }
    ]
    assert out["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (None, {"type": "auto"}),
        ("auto", {"type": "auto"}),
        ("none", {"type": "none"}),
        ("required", {"type": "any"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"type": "tool", "name": "get_weather"},
        ),
    ],
)
def test_tool_choice(choice: Any, expected: dict[str, Any]) -> None:
    body: dict[str, Any] = {"messages": [{"role": "user", "content": "x"}], "tools": [WEATHER]}
    if choice is not None:
        body["tool_choice"] = choice
    assert translate(body)["tool_choice"] == expected


def test_images_and_pdf() -> None:
    out = translate(
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "what is this?"},
                        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                        {
                            "type": "file",
                            "file": {"file_data": "data:application/pdf;base64,JVBERi0xLjQK"},
                        },
                    ],
                }
            ]
        }
    )
    blocks = out["messages"][0]["content"]
    assert blocks[1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
    }
    assert blocks[2] == {
        "type": "image",
        "source": {"type": "url", "url": "https://example.com/cat.jpg"},
    }
    assert blocks[3]["type"] == "document"
    assert blocks[3]["source"]["media_type"] == "application/pdf"


def test_parameters() -> None:
    out = translate(
        {
            "messages": [{"role": "user", "content": "x"}],
            "max_completion_tokens": 77,
            "max_tokens": 5,
            "stop": "END",
            "user": "u-42",
            "temperature": 0.2,
            "top_p": 0.5,
            "seed": 3,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "r", "schema": {"type": "object"}},
            },
        },
        stream=True,
    )
    assert out["max_tokens"] == 77
    assert out["stop_sequences"] == ["END"]
    assert out["metadata"] == {"user_id": "u-42"}
    assert out["output_config"] == {"format": {"type": "json_schema", "schema": {"type": "object"}}}
    assert out["stream"] is True
    # The Messages API has no sampling parameters: sending them would be a 400.
    assert not {"temperature", "top_p", "seed"} & out.keys()


@pytest.mark.parametrize(
    "body",
    [
        {"messages": [{"role": "user", "content": "x"}], "n": 2},
        {"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]},
        {"messages": [{"role": "function", "content": "x"}]},
        {"messages": [{"role": "user", "content": "x"}], "max_tokens": 0},
        {"messages": [{"role": "user", "content": "x"}], "stop": 3},
        {"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "code_interpreter"}]},
        {
            "messages": [
                {
                    "role": "assistant",
                    "tool_calls": [{"id": "a", "function": {"name": "f", "arguments": "{oops"}}],
                }
            ]
        },
    ],
)
def test_untranslatable_requests_are_client_errors(body: dict[str, Any]) -> None:
    with pytest.raises(ProviderError) as info:
        to_anthropic(body, "m", default_max_tokens=10, stream=False)
    assert info.value.failure is Failure.CLIENT


# ---- answers ---------------------------------------------------------------------------


def message(content: list[dict[str, Any]], stop: str = "end_turn", **usage: int) -> dict[str, Any]:
    msg = {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 5, **usage},
    }
    Message.model_validate(msg)  # the example must be a real Message
    return msg


def test_answer_with_text_and_tool_use() -> None:
    msg = message(
        [
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {"city": "Oslo"}},
        ],
        stop="tool_use",
        cache_read_input_tokens=100,
        cache_creation_input_tokens=20,
    )
    raw, usage = from_anthropic(msg, created=1700000000)
    body = orjson.loads(raw)
    choice = body["choices"][0]
    assert body["object"] == "chat.completion"
    assert body["model"] == "claude-x"
    assert body["created"] == 1700000000
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Checking."
    assert choice["message"]["tool_calls"] == [
        {
            "id": "toolu_9",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
        }
    ]
    assert usage == body["usage"]
    assert usage["prompt_tokens"] == 130
    assert usage["completion_tokens"] == 5
    assert usage["total_tokens"] == 135
    assert usage["prompt_tokens_details"] == {"cached_tokens": 100, "cache_creation_tokens": 20}


@pytest.mark.parametrize(
    ("stop", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
    ],
)
def test_stop_reasons(stop: str, finish: str) -> None:
    raw, _ = from_anthropic(message([{"type": "text", "text": "x"}], stop=stop), created=0)
    assert orjson.loads(raw)["choices"][0]["finish_reason"] == finish


def test_refusal_without_content_can_fall_back() -> None:
    with pytest.raises(ProviderError) as info:
        from_anthropic(message([], stop="refusal"), created=0)
    assert info.value.failure is Failure.CONTENT_FILTER


def test_malformed_answer() -> None:
    with pytest.raises(ProviderError) as info:
        from_anthropic({"type": "error", "error": {}}, created=0)
    assert info.value.failure is Failure.MALFORMED


def test_usage_without_cache_fields() -> None:
    usage = usage_of({"input_tokens": 3, "output_tokens": 4})
    assert usage["prompt_tokens"] == 3 and usage["total_tokens"] == 7


# ---- streams ---------------------------------------------------------------------------

START = {
    "type": "message_start",
    "message": {
        "id": "msg_02",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 25, "output_tokens": 1, "cache_read_input_tokens": 5},
    },
}


def delta(index: int, kind: str, **fields: str) -> dict[str, Any]:
    """A content_block_delta event."""
    return {"type": "content_block_delta", "index": index, "delta": {"type": kind, **fields}}


TOOL_BLOCK = {"type": "tool_use", "id": "toolu_7", "name": "get_weather", "input": {}}
TEXT_AND_TOOL = [
    START,
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "ping"},
    delta(0, "text_delta", text="Let me "),
    delta(0, "text_delta", text="check."),
    {"type": "content_block_stop", "index": 0},
    {"type": "content_block_start", "index": 1, "content_block": TOOL_BLOCK},
    delta(1, "input_json_delta", partial_json=""),
    delta(1, "input_json_delta", partial_json='{"city": "Pa'),
    delta(1, "input_json_delta", partial_json='ris"}'),
    {"type": "content_block_stop", "index": 1},
    {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {"output_tokens": 42},
    },
    {"type": "message_stop"},
]


def run(events: list[dict[str, Any]], include_usage: bool = True) -> list[bytes]:
    tr = AnthropicStream(model="claude-x", created=1, include_usage=include_usage)
    out: list[bytes] = []
    for event in events:
        out += tr.feed(event)
    return out + tr.finish()


def test_stream_text_and_tool_call() -> None:
    out = run(TEXT_AND_TOOL)
    assert out[-1] == b"data: [DONE]\n\n"
    chunks = chunks_of(out)
    assert all(
        c["id"] == "chatcmpl-msg_02" and c["object"] == "chat.completion.chunk" for c in chunks
    )
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert joined_text(chunks) == "Let me check."
    assert joined_tool_calls(chunks) == [
        {"id": "toolu_7", "name": "get_weather", "arguments": '{"city": "Paris"}'}
    ]
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finishes[-1] == "tool_calls"
    usage = chunks[-1]
    assert usage["choices"] == []
    assert usage["usage"]["prompt_tokens"] == 30
    assert usage["usage"]["completion_tokens"] == 42


def test_stream_without_usage_request_has_no_null_usage_but_ends_with_usage() -> None:
    chunks = chunks_of(run(TEXT_AND_TOOL, include_usage=False))
    assert all("usage" not in c for c in chunks[:-1])
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 42


def test_stream_with_usage_request_has_null_usage_on_every_chunk() -> None:
    chunks = chunks_of(run(TEXT_AND_TOOL, include_usage=True))
    assert all(c["usage"] is None for c in chunks[:-1])


def test_error_event_before_content_is_a_server_failure_with_nothing_sent() -> None:
    tr = AnthropicStream(model="m", created=1, include_usage=False)
    assert tr.feed(START) == []
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    with pytest.raises(ProviderError) as info:
        tr.feed(overloaded)
    assert info.value.failure is Failure.SERVER
    assert info.value.status == 529


def test_error_event_after_content_is_a_server_failure() -> None:
    tr = AnthropicStream(model="m", created=1, include_usage=False)
    for event in TEXT_AND_TOOL[:4]:
        tr.feed(event)
    with pytest.raises(ProviderError) as info:
        tr.feed({"type": "error", "error": {"type": "api_error", "message": "boom"}})
    assert info.value.failure is Failure.SERVER


def test_stream_without_message_stop_is_interrupted() -> None:
    with pytest.raises(ProviderError) as info:
        run(TEXT_AND_TOOL[:-1])
    assert info.value.failure is Failure.INTERRUPTED


def test_stream_refusal_before_content_can_fall_back() -> None:
    refusal = {
        "type": "message_delta",
        "delta": {"stop_reason": "refusal"},
        "usage": {"output_tokens": 1},
    }
    with pytest.raises(ProviderError) as info:
        run([START, refusal, {"type": "message_stop"}])
    assert info.value.failure is Failure.CONTENT_FILTER


# ---- error table -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "message", "failure"),
    [
        (400, "messages.0.role: Input should be 'user'", Failure.CLIENT),
        (400, "prompt is too long: 208310 tokens > 200000 maximum", Failure.CONTEXT_LENGTH),
        (
            400,
            "input length and `max_tokens` exceed context limit: 1 + 2 > 3",
            Failure.CONTEXT_LENGTH,
        ),
        (400, "Your credit balance is too low to access the Anthropic API.", Failure.MISCONFIGURED),
        (401, "invalid x-api-key", Failure.MISCONFIGURED),
        (402, "billing", Failure.MISCONFIGURED),
        (403, "permission", Failure.MISCONFIGURED),
        (404, "model: claude-nope", Failure.MISCONFIGURED),
        (413, "Request exceeds the maximum allowed number of bytes.", Failure.CLIENT),
        (429, "Number of request tokens has exceeded your rate limit.", Failure.RATE_LIMIT),
        (500, "Internal server error", Failure.SERVER),
        (504, "timeout", Failure.SERVER),
        (529, "Overloaded", Failure.SERVER),
    ],
)
def test_error_table(status: int, message: str, failure: Failure) -> None:
    assert classify(status, orjson.dumps(error_body(status, message))) is failure
