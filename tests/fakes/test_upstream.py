"""Proves each FakeUpstream behaviour does what it claims, seen by real clients."""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import orjson
import pytest

from .upstream import (
    FakeUpstream,
    bad_json,
    context_length_exceeded,
    cut_stream,
    drop,
    first_chunk_delay,
    hang,
    no_choices,
    ok,
    rate_limited,
    refused_base_url,
    refused_port,
    slow_stream,
    status,
    stream_error,
)

MSGS: Any = [{"role": "user", "content": "say hi please"}]


@pytest.fixture
async def up() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream("alpha") as server:
        yield server


_clients: list[openai.AsyncOpenAI] = []


@pytest.fixture(autouse=True)
async def _close_clients() -> AsyncIterator[None]:
    yield
    while _clients:
        await _clients.pop().close()


def client(base_url: str, timeout: float = 5.0, key: str = "x") -> openai.AsyncOpenAI:
    """An SDK client without retries, closed after the test."""
    c = openai.AsyncOpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=timeout)
    _clients.append(c)
    return c


async def raw_chat(up: FakeUpstream, **body: Any) -> tuple[int, dict[str, str], bytes]:
    """POST with aiohttp and return status, headers and the raw body."""
    async with (
        aiohttp.ClientSession() as s,
        s.post(f"{up.base_url}/chat/completions", json={"model": "m", **body}) as r,
    ):
        return r.status, dict(r.headers), await r.read()


async def sse_events(up: FakeUpstream, **body: Any) -> list[tuple[float, bytes]]:
    """Stream with aiohttp; return (seconds since request, event line) per ``data:`` line."""
    events: list[tuple[float, bytes]] = []
    t0 = time.monotonic()
    payload = {"model": "m", "messages": MSGS, "stream": True, **body}
    async with (
        aiohttp.ClientSession() as s,
        s.post(f"{up.base_url}/chat/completions", json=payload) as r,
    ):
        async for line in r.content:
            if line.startswith(b"data: "):
                events.append((time.monotonic() - t0, line.rstrip(b"\n")))
    return events


async def test_ok_non_stream_is_openai_shaped(up: FakeUpstream) -> None:
    r = await client(up.base_url).chat.completions.create(model="gpt-x", messages=MSGS)
    assert r.object == "chat.completion" and r.model == "gpt-x" and r.id.startswith("chatcmpl-")
    assert r.choices[0].message.content == "hello from alpha"
    assert r.choices[0].finish_reason == "stop"
    assert r.usage is not None
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (3, 3, 6)
    assert up.calls == 1


async def test_ok_content_and_delay(up: FakeUpstream) -> None:
    up.script(ok("custom", delay=0.2))
    t0 = time.monotonic()
    r = await client(up.base_url).chat.completions.create(model="m", messages=MSGS)
    assert r.choices[0].message.content == "custom"
    assert time.monotonic() - t0 >= 0.2
    r = await client(up.base_url).chat.completions.create(model="m", messages=MSGS)
    assert r.choices[0].message.content == "hello from alpha"  # queue drained: default


async def test_stream_with_include_usage(up: FakeUpstream) -> None:
    stream = await client(up.base_url).chat.completions.create(
        model="gpt-s", messages=MSGS, stream=True, stream_options={"include_usage": True}
    )
    chunks = [c async for c in stream]
    assert all(c.object == "chat.completion.chunk" and c.model == "gpt-s" for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "hello from alpha"
    assert chunks[-2].choices[0].finish_reason == "stop"
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None and last.usage.total_tokens == 6
    assert all(c.usage is None for c in chunks[:-1])


async def test_usage_modes_and_cached_tokens(up: FakeUpstream) -> None:
    up.cached_tokens = 1
    done = await client(up.base_url).chat.completions.create(model="m", messages=MSGS)
    assert done.usage is not None and done.usage.prompt_tokens_details is not None
    assert done.usage.prompt_tokens_details.cached_tokens == 1
    up.usage = "none"  # an old server: never any usage, asked or not
    done = await client(up.base_url).chat.completions.create(model="m", messages=MSGS)
    assert done.usage is None
    asked = {"stream": True, "stream_options": {"include_usage": True}}
    status_code, _, body = await raw_chat(up, messages=MSGS, **asked)
    assert status_code == 200 and b'"usage"' not in body
    assert b"".join(up.sent) == body  # what the fake wrote is what arrived
    up.usage = "on_finish"  # Mistral: usage on the finish chunk; stream_options refused
    status_code, _, body = await raw_chat(up, messages=MSGS, **asked)
    assert status_code == 422 and b"extra_forbidden" in body
    status_code, _, body = await raw_chat(up, messages=MSGS, stream=True)
    finish = orjson.loads(body.split(b"\n\n")[-3].removeprefix(b"data: "))
    assert finish["choices"][0]["finish_reason"] == "stop" and finish["usage"]["total_tokens"] > 0


async def test_stream_wire_format_without_usage(up: FakeUpstream) -> None:
    status_code, headers, body = await raw_chat(up, messages=MSGS, stream=True)
    assert status_code == 200 and headers["Content-Type"].startswith("text/event-stream")
    events = body.split(b"\n\n")
    assert events[-2:] == [b"data: [DONE]", b""]
    datas = [orjson.loads(e.removeprefix(b"data: ")) for e in events[:-2]]
    assert all(e.startswith(b"data: ") for e in events[:-1])
    assert datas[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all("usage" not in d for d in datas)


async def test_status_500_and_string_body(up: FakeUpstream) -> None:
    up.script(status(500), status(502, "bad gateway"))
    with pytest.raises(openai.InternalServerError) as e:
        await client(up.base_url).chat.completions.create(model="m", messages=MSGS)
    assert e.value.status_code == 500
    assert isinstance(e.value.body, dict) and e.value.body["type"] == "server_error"
    code, headers, body = await raw_chat(up, messages=MSGS)
    assert (code, body, headers["x-fake-upstream"]) == (502, b"bad gateway", "alpha")


async def test_429_retry_after_visible(up: FakeUpstream) -> None:
    up.script(rate_limited(30))
    with pytest.raises(openai.RateLimitError) as e:
        await client(up.base_url).chat.completions.create(model="m", messages=MSGS)
    assert e.value.response.headers["retry-after"] == "30"


async def test_context_length_exceeded(up: FakeUpstream) -> None:
    up.script(context_length_exceeded())
    with pytest.raises(openai.BadRequestError) as e:
        await client(up.base_url).chat.completions.create(model="m", messages=MSGS)
    assert e.value.code == "context_length_exceeded"


async def test_fail_n_then_default(up: FakeUpstream) -> None:
    up.fail_n(2)
    up.default = status(503)
    assert up.pending == 2
    codes = [(await raw_chat(up, messages=MSGS))[0] for _ in range(4)]
    assert codes == [500, 500, 503, 503] and up.pending == 0 and up.calls == 4


@pytest.mark.parametrize("stream", [False, True])
async def test_drop_is_connection_error(up: FakeUpstream, stream: bool) -> None:
    up.script(drop())
    with pytest.raises(openai.APIConnectionError):
        await client(up.base_url).chat.completions.create(model="m", messages=MSGS, stream=stream)


async def test_drop_sends_no_bytes(up: FakeUpstream) -> None:
    up.script(drop())
    body = b'{"model":"m","messages":[]}'
    head = f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
    reader, writer = await asyncio.open_connection("127.0.0.1", up.port)
    writer.write(head.encode() + b"Content-Type: application/json\r\n\r\n" + body)
    assert await asyncio.wait_for(reader.read(), 2) == b""  # EOF, no status line
    writer.close()
    await writer.wait_closed()


async def test_cut_stream_sdk_raises_connection_error(up: FakeUpstream) -> None:
    up.script(cut_stream(after=2))
    stream = await client(up.base_url).chat.completions.create(
        model="m", messages=MSGS, stream=True
    )
    got: list[str] = []
    with pytest.raises(openai.APIConnectionError) as e:
        async for c in stream:
            got.append(c.choices[0].delta.content or "")
    assert "incomplete chunked read" in str(e.value.__cause__)
    assert len(got) == 3 and "hello from alpha".startswith("".join(got))  # role + 2 chunks


async def test_cut_stream_raw_has_no_done(up: FakeUpstream) -> None:
    up.script(cut_stream(after=3))
    with pytest.raises(aiohttp.ClientPayloadError):
        await sse_events(up)
    up.script(cut_stream(after=1))  # non-stream: truncated content-length body
    with pytest.raises(openai.APIConnectionError):
        await client(up.base_url).chat.completions.create(model="m", messages=MSGS)


async def test_stream_error_event(up: FakeUpstream) -> None:
    up.script(stream_error(after=1, message="boom"))
    events = [e for _, e in await sse_events(up)]
    assert orjson.loads(events[-1].removeprefix(b"data: ")) == {
        "error": {"message": "boom", "type": "server_error", "param": None, "code": None}
    }
    assert len(events) == 3 and b"data: [DONE]" not in events  # role, 1 chunk, error
    up.script(stream_error(message="boom"))
    stream = await client(up.base_url).chat.completions.create(
        model="m", messages=MSGS, stream=True
    )
    with pytest.raises(openai.APIError, match=r"^boom$") as e:
        async for _ in stream:
            pass
    assert not isinstance(e.value, openai.APIStatusError)  # plain APIError, status was 200
    assert e.value.body == {"message": "boom", "type": "server_error", "param": None, "code": None}


async def test_slow_stream_spaces_events(up: FakeUpstream) -> None:
    up.script(slow_stream(chunks=3, interval=0.15))
    events = await sse_events(up)
    content = [t for t, e in events if b'"content"' in e][1:]  # skip role chunk
    assert len(content) == 3
    assert all(b - a >= 0.12 for a, b in itertools.pairwise(content))
    assert events[-1][1] == b"data: [DONE]"


async def test_first_chunk_delay_sends_headers_first(up: FakeUpstream) -> None:
    up.script(first_chunk_delay(0.4))
    payload = {"model": "m", "messages": MSGS, "stream": True}
    t0 = time.monotonic()
    async with (
        aiohttp.ClientSession() as s,
        s.post(f"{up.base_url}/chat/completions", json=payload) as r,
    ):
        assert r.status == 200 and time.monotonic() - t0 < 0.3
        await r.content.readline()
        assert time.monotonic() - t0 >= 0.4


async def test_hang_times_out_and_does_not_block_stop() -> None:
    up = await FakeUpstream("h").start()
    up.script(hang(), hang())
    with pytest.raises(openai.APITimeoutError):
        await client(up.base_url, timeout=0.2).chat.completions.create(model="m", messages=MSGS)
    pending = asyncio.create_task(
        client(up.base_url).chat.completions.create(model="m", messages=MSGS)
    )
    await asyncio.sleep(0.1)
    t0 = time.monotonic()
    await up.stop()
    assert time.monotonic() - t0 < 0.5
    with pytest.raises(openai.APIConnectionError):
        await pending


async def test_bad_json_and_no_choices(up: FakeUpstream) -> None:
    up.script(bad_json(), no_choices())
    code, _, body = await raw_chat(up, messages=MSGS)
    assert code == 200
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(body)
    code, _, body = await raw_chat(up, messages=MSGS)
    data = orjson.loads(body)
    assert code == 200 and "choices" not in data and data["object"] == "chat.completion"
    up.script(bad_json())  # surprising: the SDK leaks json's error, not an openai one
    with pytest.raises(json.JSONDecodeError):
        await client(up.base_url).chat.completions.create(model="m", messages=MSGS)


async def test_refused_port() -> None:
    with (
        pytest.raises(ConnectionRefusedError),
        socket.create_connection(("127.0.0.1", refused_port()), timeout=1),
    ):
        pass
    with pytest.raises(openai.APIConnectionError):
        await client(refused_base_url()).chat.completions.create(model="m", messages=MSGS)


async def test_stop_refuses_then_restart_same_port(up: FakeUpstream) -> None:
    port = up.port
    await up.stop()
    with pytest.raises(openai.APIConnectionError):
        await client(up.base_url).chat.completions.create(model="m", messages=MSGS)
    await up.start()
    assert up.port == port
    r = await client(up.base_url).chat.completions.create(model="m", messages=MSGS)
    assert r.choices[0].message.content == "hello from alpha"


async def test_records_requests_unchanged(up: FakeUpstream) -> None:
    tools: Any = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    await client(up.base_url).chat.completions.create(
        model="gpt-rec",
        messages=MSGS,
        tools=tools,
        response_format={"type": "json_object"},
        seed=7,
        logprobs=True,
        top_logprobs=2,
        extra_body={"vendor_x": {"a": [1, 2]}},
    )
    rec = up.requests[-1]
    assert (rec.method, rec.path) == ("POST", "/v1/chat/completions")
    assert rec.headers["authorization"] == "Bearer x"
    assert rec.headers["content-type"] == "application/json"
    assert rec.json == {
        "model": "gpt-rec",
        "messages": MSGS,
        "tools": tools,
        "response_format": {"type": "json_object"},
        "seed": 7,
        "logprobs": True,
        "top_logprobs": 2,
        "vendor_x": {"a": [1, 2]},
    }


async def test_models_and_require_key() -> None:
    async with FakeUpstream("k", models=("m1", "m2"), require_key="sk-good") as up:
        with pytest.raises(openai.AuthenticationError) as e:
            await client(up.base_url).models.list()
        assert e.value.code == "invalid_api_key"
        good = client(up.base_url, key="sk-good")
        assert [m.id async for m in good.models.list()] == ["m1", "m2"]
        r = await good.chat.completions.create(model="m1", messages=MSGS)
        assert r.choices[0].message.content == "hello from k"
        assert len(up.requests) == 3 and up.calls == 1


def test_in_thread_with_sync_client(request: pytest.FixtureRequest) -> None:
    with FakeUpstream.in_thread("sync", content="threaded") as up:
        c = openai.OpenAI(base_url=up.base_url, api_key="x", max_retries=0, timeout=5)
        request.addfinalizer(c.close)
        up.script(status(500))
        with pytest.raises(openai.InternalServerError):
            c.chat.completions.create(model="m", messages=MSGS)
        assert c.chat.completions.create(model="m", messages=MSGS).choices[0].message.content == (
            "threaded"
        )
        up.stop_sync()
        with pytest.raises(openai.APIConnectionError):
            c.chat.completions.create(model="m", messages=MSGS)
        up.start_sync()
        assert c.chat.completions.create(model="m", messages=MSGS).id.startswith("chatcmpl-sync")
