"""Messages door streams: Anthropic's documented event order, whoever serves, and failures.

The golden order is the one Anthropic documents for a streamed Message
(https://docs.anthropic.com/en/api/messages-streaming): ``message_start``, then
``ping``, then for each content block ``content_block_start``, one or more
``content_block_delta`` and ``content_block_stop``, then ``message_delta`` and
``message_stop``. Each event's ``data`` has a ``type`` equal to its ``event`` name.
"""

from __future__ import annotations

import time
from typing import Any

import anthropic
import httpx2
import orjson
import pytest

from modelrouter.store.record import CallRecord
from tests.fakes.upstream import FakeUpstream, cut_stream, stream_error
from tests.router import RunningRouter

from .conftest import KEY, SERVED
from .test_messages_sdk import WEATHER, _script_tool_call, client, upstream_of

TEXT_ORDER = [
    "message_start",
    "ping",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
]
"""A one-block answer, consecutive deltas shown once."""


def events(r: RunningRouter, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """``(event name, decoded data)`` of every event of a streamed Messages call."""
    with httpx2.stream(
        "POST",
        r.url + "/v1/messages",
        json={"max_tokens": 100, "stream": True, **body},
        headers={"x-api-key": KEY},
        timeout=20,
    ) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        raw = resp.read()
    out = []
    for block in raw.decode().split("\n\n"):
        if not block.strip():
            continue
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        data = orjson.loads(lines["data"])
        assert data["type"] == lines["event"]
        out.append((lines["event"], data))
    return out


def collapsed(names: list[str]) -> list[str]:
    """Event names with runs of deltas shown once."""
    out: list[str] = []
    for name in names:
        if not (out and out[-1] == name == "content_block_delta"):
            out.append(name)
    return out


@pytest.mark.parametrize("served", SERVED)
def test_text_stream_follows_the_documented_order(router: RunningRouter, served: str) -> None:
    got = events(router, {"model": served, "messages": [{"role": "user", "content": "Hi"}]})
    assert collapsed([name for name, _ in got]) == TEXT_ORDER
    start = got[0][1]["message"]
    assert start["content"] == [] and start["stop_reason"] is None
    assert got[2][1] == {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    deltas = [d["delta"] for n, d in got if n == "content_block_delta"]
    assert all(d["type"] == "text_delta" for d in deltas)
    delta = got[-2][1]
    assert delta["delta"]["stop_reason"] == "end_turn"
    assert delta["usage"]["output_tokens"] > 0


@pytest.mark.parametrize("served", SERVED)
def test_tool_stream_follows_the_documented_order(
    router: RunningRouter, served: str, vendors: dict[str, FakeUpstream]
) -> None:
    _script_tool_call(served, vendors)
    got = events(
        router,
        {
            "model": served,
            "tools": [WEATHER],
            "messages": [{"role": "user", "content": "Weather in Paris?"}],
        },
    )
    assert collapsed([name for name, _ in got]) == TEXT_ORDER
    block = got[2][1]["content_block"]
    assert (block["type"], block["name"], block["input"]) == ("tool_use", "get_weather", {})
    partial = "".join(d["delta"]["partial_json"] for n, d in got if n == "content_block_delta")
    assert orjson.loads(partial) == {"city": "Paris"}
    assert got[-2][1]["delta"]["stop_reason"] == "tool_use"


@pytest.mark.parametrize("served", SERVED)
def test_failure_after_the_first_event_ends_with_an_error_event(
    router: RunningRouter, served: str, vendors: dict[str, FakeUpstream]
) -> None:
    up = upstream_of(served, vendors)
    up.script(stream_error(after=1) if served == "gpt" else cut_stream(after=1))
    got = events(router, {"model": served, "messages": [{"role": "user", "content": "Hi"}]})
    names = [name for name, _ in got]
    assert names[:3] == ["message_start", "ping", "content_block_start"]
    assert names[-1] == "error" and "message_stop" not in names
    error = got[-1][1]["error"]
    assert error["type"] == "api_error"
    assert f"upstream stream from {served!r} failed" in error["message"]


def test_sdk_raises_on_a_stream_that_failed(
    router: RunningRouter, vendors: dict[str, FakeUpstream]
) -> None:
    upstream_of("gpt", vendors).script(cut_stream(after=1))
    with (
        pytest.raises(anthropic.APIStatusError) as info,
        client(router).messages.stream(
            model="gpt", max_tokens=50, messages=[{"role": "user", "content": "Hi"}]
        ) as stream,
    ):
        stream.get_final_message()
    body = info.value.body
    assert isinstance(body, dict) and body["error"]["type"] == "api_error"


@pytest.mark.parametrize("served", SERVED)
def test_call_log_has_the_door_and_the_usage(router: RunningRouter, served: str) -> None:
    records: list[CallRecord] = []
    emit = router.runtime.log.emit
    router.runtime.log.emit = records.append  # type: ignore[method-assign]
    try:
        c = client(router)
        c.messages.create(model=served, max_tokens=50, messages=[{"role": "user", "content": "Hi"}])
        with c.messages.stream(
            model=served, max_tokens=50, messages=[{"role": "user", "content": "Hi"}]
        ) as stream:
            final = stream.get_final_message()
        # A stream's record is written once the server's side of it has ended.
        deadline = time.monotonic() + 5
        while len(records) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        router.runtime.log.emit = emit  # type: ignore[method-assign]
    whole, streamed = records
    for rec in records:
        assert (rec.endpoint, rec.model, rec.status) == ("/v1/messages", served, 200)
    assert streamed.stream is True
    assert (streamed.input_tokens, streamed.output_tokens) == (
        final.usage.input_tokens,
        final.usage.output_tokens,
    )
    assert streamed.usage_estimated is False
    assert whole.output_tokens > 0
