"""Usage of a request: asking upstream for it, picking it out of streams, estimating it."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from modelrouter.usage import UsageTap, answer_chars, completion_usage, estimate
from providers.base import ChatRequest

MSGS = [{"role": "user", "content": "x" * 40}]
USAGE = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}


def sse(obj: dict[str, Any], *, spaced: bool = False) -> bytes:
    text = orjson.dumps(obj)
    if spaced:
        text = text.replace(b'":', b'": ')
    return b"data: " + text + b"\n\n"


def chunk(content: str | None = None, **extra: Any) -> dict[str, Any]:
    delta = {} if content is None else {"content": content}
    return {"id": "c", "choices": [{"index": 0, "delta": delta}], **extra}


DONE = b"data: [DONE]\n\n"
USAGE_ONLY = sse({"id": "c", "choices": [], "usage": USAGE})


def joined(parts: list[bytes | memoryview]) -> bytes:
    return b"".join(bytes(p) for p in parts)


# ---- asking the upstream --------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "sent_options"),
    [
        ({"stream": True}, {"include_usage": True}),
        ({"stream": True, "stream_options": None}, {"include_usage": True}),
        (
            {"stream": True, "stream_options": {"continuous_usage_stats": True}},
            {"continuous_usage_stats": True, "include_usage": True},
        ),
        (
            {"stream": True, "stream_options": {"include_usage": False}},
            {"include_usage": True},
        ),
        # Asked by the client already: sent as the client wrote it.
        ({"stream": True, "stream_options": {"include_usage": True}}, {"include_usage": True}),
        # Not a stream: nothing added (OpenAI refuses stream_options without stream).
        ({"stream": False}, None),
        ({}, None),
    ],
)
def test_ask_usage_merges_into_the_clients_stream_options(
    body: dict[str, Any], sent_options: dict[str, Any] | None
) -> None:
    full = {"messages": MSGS, **body, "model": "route"}
    for request in (ChatRequest.from_body(full), ChatRequest.from_json(orjson.dumps(full))):
        sent = orjson.loads(joined(request.json_with_model("up", ask_usage=True)))
        assert sent.get("stream_options") == sent_options
        assert sent["model"] == "up" and list(sent)[-1] == "model"
        plain = orjson.loads(joined(request.json_with_model("up")))
        assert plain.get("stream_options") == body.get("stream_options")


def test_ask_usage_keeps_every_other_member_byte_for_byte() -> None:
    raw = (
        b'{"messages": [{"role":"user","content":"caf\\u00e9"}],'
        b' "temperature": 1.50, "stream": true}'
    )
    sent = joined(ChatRequest.from_json(raw).json_with_model("up", ask_usage=True))
    assert sent == (
        b'{"messages":[{"role":"user","content":"caf\\u00e9"}],"temperature":1.50,'
        b'"stream":true,"stream_options":{"include_usage":true},"model":"up"}'
    )


def test_size_and_mentions() -> None:
    raw = orjson.dumps({"messages": MSGS})
    request = ChatRequest.from_json(raw)
    assert request.size == len(raw)
    assert request.mentions(b"xxxx") and not request.mentions(b"image_url")
    decoded = ChatRequest.from_body({"messages": MSGS})
    assert decoded.size is None and decoded.mentions(b"image_url")  # no bytes: look closer


# ---- the tap on a relayed stream ------------------------------------------------------


def run(tap: UsageTap, events: list[bytes]) -> list[bytes]:
    return [e for e in events if tap.passes(e)]


def test_the_usage_only_chunk_is_hidden_from_a_client_that_did_not_ask() -> None:
    events = [sse(chunk("hi")), sse(chunk(None)), USAGE_ONLY, DONE]
    tap = UsageTap(client_asked=False, expected=True)
    assert run(tap, events) == [events[0], events[1], DONE]
    assert tap.result(ChatRequest.from_body({"messages": MSGS})) == (USAGE, False)


def test_the_usage_only_chunk_reaches_a_client_that_asked() -> None:
    events = [sse(chunk("hi", usage=None)), USAGE_ONLY, DONE]
    tap = UsageTap(client_asked=True, expected=True)
    assert run(tap, events) == events
    assert tap.usage == USAGE


@pytest.mark.parametrize("client_asked", [False, True])
def test_usage_on_a_content_chunk_is_kept_for_everyone(client_asked: bool) -> None:
    # Mistral's way: usage rides on the last content chunk, unasked.
    events = [sse(chunk("hi")), sse(chunk(None, usage=USAGE), spaced=True), DONE]
    tap = UsageTap(client_asked=client_asked, expected=False)
    assert run(tap, events) == events
    assert tap.result(ChatRequest.from_body({"messages": MSGS})) == (USAGE, False)


def test_null_usage_and_usage_in_text_are_not_usage() -> None:
    quoted = sse(chunk('he said "usage":{"prompt_tokens":1}'))
    events = [sse(chunk("a", usage=None)), quoted, DONE]
    tap = UsageTap(client_asked=False, expected=True)
    assert run(tap, events) == events
    assert tap.usage is None


def test_without_usage_an_unexpected_stream_is_estimated_from_its_text() -> None:
    events = [sse(chunk("")), sse(chunk("x" * 10)), sse(chunk("y" * 7)), sse(chunk(None)), DONE]
    tap = UsageTap(client_asked=False, expected=False)
    assert run(tap, events) == events
    usage, estimated = tap.result(ChatRequest.from_body({"messages": MSGS}))
    assert estimated
    assert usage == {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}


def test_without_usage_an_expected_stream_counts_a_token_per_event() -> None:
    events = [sse(chunk("")), *(sse(chunk(w)) for w in ("a", "b", "c", "d")), sse(chunk(None))]
    tap = UsageTap(client_asked=False, expected=True)
    run(tap, [*events, DONE])
    usage, estimated = tap.result(ChatRequest.from_body({"messages": MSGS}))
    assert estimated and usage["completion_tokens"] == 4


# ---- estimates ------------------------------------------------------------------------


def test_answer_chars_counts_content_and_tool_calls() -> None:
    call = {"function": {"name": "get", "arguments": '{"a":1}'}}
    message = {"choices": [{"message": {"content": "four", "tool_calls": [call]}}]}
    assert answer_chars(message) == 4 + 3 + 7
    delta = {"choices": [{"delta": {"tool_calls": [call]}}, {"delta": {"content": "ab"}}]}
    assert answer_chars(delta) == 10 + 2
    assert answer_chars({"choices": None}) == answer_chars([]) == 0


def test_estimate_counts_the_prompt_text() -> None:
    parts = [{"type": "text", "text": "y" * 8}, {"type": "image_url", "image_url": {}}]
    body = {"messages": [*MSGS, {"role": "user", "content": parts}]}
    assert estimate(ChatRequest.from_body(body), 3) == {
        "prompt_tokens": 12,
        "completion_tokens": 3,
        "total_tokens": 15,
    }
    # Bytes this router cannot decode went upstream as they were: no prompt count.
    bad = ChatRequest.from_json(b'{"messages":[{"role":"user","content":"\xff"}]}')
    assert estimate(bad, 1)["prompt_tokens"] == 0


def test_completion_usage_prefers_the_upstreams() -> None:
    request = ChatRequest.from_body({"messages": MSGS})
    body = orjson.dumps({"choices": [{"message": {"content": "z" * 9}}]})
    assert completion_usage(request, body, USAGE) == (USAGE, False)
    usage, estimated = completion_usage(request, body, None)
    assert estimated and (usage["prompt_tokens"], usage["completion_tokens"]) == (10, 3)
