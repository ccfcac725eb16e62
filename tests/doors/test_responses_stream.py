"""Responses door streams: the typed events in OpenAI's documented order, and failures.

The golden orders are those of OpenAI's streaming guide for the Responses API
(https://platform.openai.com/docs/guides/streaming-responses): ``response.created``,
``response.in_progress``, then per output item ``response.output_item.added``, its
content (``response.content_part.added``, ``response.output_text.delta``...,
``response.output_text.done``, ``response.content_part.done``; or
``response.function_call_arguments.delta``..., ``response.function_call_arguments.done``)
and ``response.output_item.done``, then ``response.completed``. Every event carries a
``sequence_number`` counting from 0, and a ``type`` equal to its ``event`` name.
"""

from __future__ import annotations

from typing import Any

import httpx2
import openai
import orjson
import pytest

from tests.fakes.upstream import FakeUpstream, cut_stream, stream_error
from tests.router import RunningRouter

from .conftest import KEY, SERVED
from .test_messages_sdk import _script_tool_call, upstream_of
from .test_responses import WEATHER, client

TEXT_ORDER = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]
CALL_ORDER = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.function_call_arguments.delta",
    "response.function_call_arguments.done",
    "response.output_item.done",
    "response.completed",
]
DELTAS = {"response.output_text.delta", "response.function_call_arguments.delta"}


def events(r: RunningRouter, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """``(event name, decoded data)`` of every event of a streamed Responses call."""
    with httpx2.stream(
        "POST",
        r.base_url + "/responses",
        json={"stream": True, **body},
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=20,
    ) as resp:
        assert resp.status_code == 200
        raw = resp.read()
    out = []
    for block in raw.decode().split("\n\n"):
        if not block.strip():
            continue
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        data = orjson.loads(lines["data"])
        assert data["type"] == lines["event"]
        out.append((lines["event"], data))
    assert [d["sequence_number"] for _, d in out] == list(range(len(out)))
    return out


def collapsed(names: list[str]) -> list[str]:
    """Event names with runs of deltas shown once."""
    out: list[str] = []
    for name in names:
        if not (out and out[-1] == name and name in DELTAS):
            out.append(name)
    return out


@pytest.mark.parametrize("served", SERVED)
def test_text_stream_follows_the_documented_order(router: RunningRouter, served: str) -> None:
    got = events(router, {"model": served, "input": "Hi"})
    assert collapsed([name for name, _ in got]) == TEXT_ORDER
    created = got[0][1]["response"]
    assert (created["status"], created["output"]) == ("in_progress", [])
    item_id = got[2][1]["item"]["id"]
    assert all(d["item_id"] == item_id for n, d in got if n == "response.output_text.delta")
    text = "".join(d["delta"] for n, d in got if n == "response.output_text.delta")
    [done] = [d for n, d in got if n == "response.output_text.done"]
    assert done["text"] == text
    final = got[-1][1]["response"]
    assert final["status"] == "completed" and final["id"] == created["id"]
    assert final["output"][0]["content"][0]["text"] == text
    assert final["usage"]["output_tokens"] > 0


@pytest.mark.parametrize("served", SERVED)
def test_function_call_stream_follows_the_documented_order(
    router: RunningRouter, served: str, vendors: dict[str, FakeUpstream]
) -> None:
    _script_tool_call(served, vendors)
    got = events(router, {"model": served, "input": "Weather?", "tools": [WEATHER]})
    assert collapsed([name for name, _ in got]) == CALL_ORDER
    added = got[2][1]["item"]
    assert (added["type"], added["name"], added["arguments"]) == (
        "function_call",
        "get_weather",
        "",
    )
    done = got[-2][1]["item"]
    assert done["arguments"] == '{"city":"Paris"}' and done["status"] == "completed"
    assert got[-1][1]["response"]["output"] == [done]


@pytest.mark.parametrize("served", SERVED)
def test_failure_after_the_first_event_ends_with_response_failed(
    router: RunningRouter, served: str, vendors: dict[str, FakeUpstream]
) -> None:
    upstream_of(served, vendors).script(
        stream_error(after=1) if served == "gpt" else cut_stream(after=1)
    )
    got = events(router, {"model": served, "input": "Hi"})
    names = [name for name, _ in got]
    assert names[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert names[-1] == "response.failed"
    assert "response.completed" not in names
    failed = got[-1][1]["response"]
    assert failed["status"] == "failed" and failed["error"]["code"] == "server_error"
    assert f"upstream stream from {served!r} failed" in failed["error"]["message"]


def test_sdk_sees_the_failure(router: RunningRouter, vendors: dict[str, FakeUpstream]) -> None:
    upstream_of("gpt", vendors).script(cut_stream(after=1))
    stream = client(router).responses.create(model="gpt", input="Hi", stream=True)
    kinds = [event.type for event in stream]
    assert kinds[-1] == "response.failed"
    upstream_of("gpt", vendors).script(cut_stream(after=1))
    with (
        pytest.raises(RuntimeError, match=r"response\.completed"),
        client(router).responses.stream(model="gpt", input="Hi") as helper,
    ):
        helper.get_final_response()
    assert isinstance(stream, openai.Stream)
