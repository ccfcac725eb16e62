"""Responses API requests to chat bodies and answers back (providers/responses_in.py,
providers/responses_out.py): the cases the SDK tests do not reach."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from providers.base import InvalidBody
from providers.responses_in import to_chat
from providers.responses_out import ResponsesShape, to_response
from providers.sse import DONE, sse_event


def test_items_become_chat_turns() -> None:
    got = to_chat(
        {
            "model": "m",
            "input": [
                {"type": "message", "role": "developer", "content": "Rules."},
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "What is in "},
                        {"type": "input_image", "image_url": "https://x/cat.png", "detail": "low"},
                    ],
                },
                {"type": "reasoning", "id": "rs_1", "summary": []},
                {"role": "assistant", "content": [{"type": "output_text", "text": "Let me"}]},
                {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
                {"type": "function_call", "call_id": "c2", "name": "g", "arguments": '{"a":1}'},
                {"type": "function_call_output", "call_id": "c1", "output": "one"},
                {
                    "type": "function_call_output",
                    "call_id": "c2",
                    "output": [{"type": "input_text", "text": "two"}],
                },
            ],
            "text": {"format": {"type": "json_schema", "name": "out", "schema": {}}},
            "reasoning": {"effort": "low"},
            "safety_identifier": "u-9",
        }
    )
    assert got.chat["messages"] == [
        {"role": "developer", "content": "Rules."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in "},
                {"type": "image_url", "image_url": {"url": "https://x/cat.png", "detail": "low"}},
            ],
        },
        {
            "role": "assistant",
            "content": "Let me",
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                {"id": "c2", "type": "function", "function": {"name": "g", "arguments": '{"a":1}'}},
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "one"},
        {"role": "tool", "tool_call_id": "c2", "content": "two"},
    ]
    assert got.chat["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "out", "schema": {}},
    }
    assert (got.chat["reasoning_effort"], got.chat["user"]) == ("low", "u-9")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"conversation": "conv_1"}, "a conversation is not supported"),
        ({"background": True}, "background responses is not supported"),
        ({"truncation": "auto"}, "never drops input"),
        ({"input": [{"type": "item_reference", "id": "x"}]}, "item_reference is not supported"),
        ({"input": [{"type": "web_search_call", "id": "x"}]}, "'web_search_call' items"),
        ({"input": None}, "Missing required parameter: 'input'"),
        ({"max_output_tokens": 0}, "'max_output_tokens' must be a positive integer"),
        ({"tool_choice": {"type": "allowed_tools"}, "tools": [{"type": "function", "name": "f"}]},
         "tool_choice must be"),
    ],
)  # fmt: skip
def test_refused(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidBody, match=message):
        to_chat({"model": "m", "input": "hi", **extra})


def test_refusal_and_length_in_a_whole_answer() -> None:
    completion = {
        "id": "chatcmpl-1",
        "created": 5,
        "model": "gpt-x",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": None, "refusal": "No."},
                "finish_reason": "length",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }
    resp = orjson.loads(to_response(orjson.dumps(completion), {"tools": []}, "asked"))
    assert resp["status"] == "incomplete"
    assert resp["incomplete_details"] == {"reason": "max_output_tokens"}
    assert resp["output"][0]["content"] == [{"type": "refusal", "refusal": "No."}]
    assert resp["usage"]["input_tokens"] == 3 and resp["model"] == "gpt-x"


def test_stream_shape_switches_from_text_to_calls_and_refusals() -> None:
    shape = ResponsesShape({}, "m")
    head = {"id": "chatcmpl-1", "model": "m", "object": "chat.completion.chunk"}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return sse_event({**head, "choices": [choice]})

    out = shape.feed(chunk({"role": "assistant", "content": "a"}))
    out += shape.feed(chunk({"refusal": "no"}))
    out += shape.feed(chunk({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "f"}}]}))
    out += shape.feed(chunk({}, "content_filter"))
    out += shape.feed(DONE)
    names = [e.split(b"\n")[0].removeprefix(b"event: ").decode() for e in out]
    assert names == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.content_part.added",
        "response.refusal.delta",
        "response.refusal.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.incomplete",
    ]
    final = orjson.loads(out[-1].split(b"data: ", 1)[1])["response"]
    assert final["incomplete_details"] == {"reason": "content_filter"}
    assert [item["type"] for item in final["output"]] == ["message", "function_call"]


def test_settings_without_a_chat_counterpart_are_named() -> None:
    got = to_chat(
        {
            "model": "m",
            "input": "hi",
            "text": {"verbosity": "low"},
            "reasoning": {"effort": "high", "summary": "auto"},
            "tools": [{"type": "function", "name": "f", "defer_loading": True}],
            "include": ["reasoning.encrypted_content"],
        }
    )
    assert got.ignored == ["include", "reasoning.summary", "text.verbosity", "tools.defer_loading"]
    assert got.chat["tools"] == [{"type": "function", "function": {"name": "f"}}]
