"""Messages API requests to chat bodies and chat answers back (providers/anthropic_in.py,
providers/anthropic_out.py): the cases the SDK tests do not reach."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from providers.anthropic_in import estimate_tokens, to_chat
from providers.anthropic_out import MessagesShape, anthropic_status, to_message
from providers.base import InvalidBody
from providers.sse import DONE, sse_event


def body(*messages: Any, **extra: Any) -> dict[str, Any]:
    return {"model": "m", "max_tokens": 10, "messages": list(messages), **extra}


def test_tool_results_go_first_with_errors_and_images_kept() -> None:
    image = {"type": "image", "source": {"type": "url", "url": "https://x/cat.png"}}
    got = to_chat(
        body(
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "s"},
                    {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "and then?"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "t1",
                        "is_error": True,
                        "content": [{"type": "text", "text": "boom"}, image],
                    },
                ],
            },
        )
    )
    assert got.chat["messages"][1:] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "t1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "t1", "content": "Error: boom"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "and then?"},
                {"type": "image_url", "image_url": {"url": "https://x/cat.png"}},
            ],
        },
    ]
    assert got.ignored == ["thinking"]
    assert got.unfit_reason is None


def test_documents_and_output_format() -> None:
    pdf = {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}
    got = to_chat(
        body(
            {"role": "user", "content": [{"type": "document", "source": pdf, "title": "a.pdf"}]},
            output_config={"format": {"type": "json_schema", "schema": {"type": "object"}}},
            tool_choice=None,
        )
    )
    assert got.chat["messages"][0]["content"] == [
        {
            "type": "file",
            "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBE"},
        }
    ]
    assert got.chat["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": {"type": "object"}},
    }


def test_tool_choice_and_parallel_calls() -> None:
    tool = {"name": "f", "input_schema": {"type": "object"}, "cache_control": {"type": "x"}}
    got = to_chat(
        body(
            {"role": "user", "content": "hi"},
            tools=[tool],
            tool_choice={"type": "any", "disable_parallel_tool_use": True},
        )
    )
    assert got.chat["tool_choice"] == "required"
    assert got.chat["parallel_tool_calls"] is False
    assert got.chat["tools"] == [
        {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    ]
    assert got.ignored == ["cache_control"]


def test_what_needs_anthropic_is_unfit_not_dropped() -> None:
    got = to_chat(
        body(
            {"role": "user", "content": [{"type": "search_result", "source": "s", "title": "t"}]},
            mcp_servers=[{"type": "url", "url": "https://mcp"}],
            brand_new=1,
        )
    )
    assert got.unfit_reason == (
        "only Anthropic serves 'search_result' blocks, field 'brand_new', field 'mcp_servers'"
    )


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"max_tokens": None}, "max_tokens: Field required"),
        ({"max_tokens": "9"}, "max_tokens: Input should be a non-negative integer"),
        ({"messages": []}, "messages: at least one message is required"),
        ({"stream": "yes"}, "stream: Input should be a valid boolean"),
        ({"stop_sequences": "END"}, "stop_sequences: Input should be a list of strings"),
    ],
)
def test_requests_anthropic_refuses(bad: dict[str, Any], message: str) -> None:
    req = body({"role": "user", "content": "hi"}, **bad)
    req = {k: v for k, v in req.items() if v is not None}
    with pytest.raises(InvalidBody, match=message):
        to_chat(req)


def test_answer_back_in_anthropic_shape() -> None:
    completion = {
        "id": "chatcmpl-7",
        "model": "gpt-x",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Let me look.",
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        }
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {
            "prompt_tokens": 30,
            "completion_tokens": 5,
            "prompt_tokens_details": {"cached_tokens": 10},
        },
    }
    msg = orjson.loads(to_message(orjson.dumps(completion), "asked"))
    assert msg == {
        "id": "msg_7",
        "type": "message",
        "role": "assistant",
        "model": "gpt-x",
        "content": [
            {"type": "text", "text": "Let me look."},
            {"type": "tool_use", "id": "c1", "name": "f", "input": {}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 20,
            "output_tokens": 5,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 10,
        },
    }


def test_stream_shape_closes_text_before_a_tool_block() -> None:
    shape = MessagesShape("m")
    head = {"id": "chatcmpl-1", "model": "m", "object": "chat.completion.chunk"}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return sse_event(
            {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        )

    call = {"index": 0, "id": "c1", "function": {"name": "f", "arguments": '{"a"'}}
    out = shape.feed(chunk({"role": "assistant", "content": "ok"}))
    out += shape.feed(chunk({"tool_calls": [call]}))
    out += shape.feed(chunk({"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}))
    out += shape.feed(chunk({}, "tool_calls"))
    out += shape.feed(sse_event({**head, "choices": [], "usage": {"prompt_tokens": 3}}))
    out += shape.feed(DONE)
    names = [e.split(b"\n")[0].removeprefix(b"event: ").decode() for e in out]
    assert names == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert shape.usage == {"prompt_tokens": 3}


def test_statuses_an_anthropic_client_knows() -> None:
    assert [anthropic_status(s) for s in (400, 401, 403, 404, 413, 429, 500, 529)] == [
        400,
        401,
        403,
        404,
        413,
        429,
        500,
        529,
    ]
    assert [anthropic_status(s) for s in (502, 503, 504, 508, 415, 418)] == [
        529,
        529,
        504,
        500,
        400,
        400,
    ]


def test_token_estimate_counts_text_tools_and_images() -> None:
    image = {"type": "image", "source": {"type": "url", "url": "u"}}
    plain = estimate_tokens(body({"role": "user", "content": "x" * 400}))
    with_image = estimate_tokens(body({"role": "user", "content": [image]}))
    assert (plain, with_image) == (100, 1600)


def test_fields_without_a_chat_counterpart_are_named() -> None:
    tool = {"name": "f", "input_schema": {"type": "object"}, "input_examples": [{}]}
    doc = {
        "type": "document",
        "source": {"type": "text", "media_type": "text/plain", "data": "d"},
        "citations": {"enabled": True},
        "context": "notes",
    }
    got = to_chat(body({"role": "user", "content": [doc], "id": "m1"}, tools=[tool]))
    assert got.ignored == ["citations", "context", "tools.input_examples"]
    assert got.unfit_reason == "only Anthropic serves message field 'id'"
