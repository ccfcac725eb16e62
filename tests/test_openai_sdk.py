"""The official ``openai`` SDK against the real router and real upstream fakes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import pytest

from tests.fakes.upstream import (
    FakeUpstream,
    context_length_exceeded,
    cut_stream,
    hang,
    rate_limited,
    refused_base_url,
    status,
)
from tests.router import RunningRouter, router_config, run_router

KEY = "sk-router-test"
UPSTREAM_KEY = "sk-upstream-secret-123"
MESSAGES: list[Any] = [{"role": "user", "content": "Say hi"}]


@pytest.fixture
def primary() -> Iterator[FakeUpstream]:
    with FakeUpstream.in_thread("primary", require_key=UPSTREAM_KEY) as up:
        yield up


def two_model_config(first_url: str, second_url: str, **sections: Any) -> Any:
    return router_config(
        providers={
            "p1": {"kind": "openai", "base_url": first_url, "api_key": UPSTREAM_KEY},
            "p2": {"kind": "openai", "base_url": second_url, "api_key": "sk-other"},
        },
        models={
            "first": {"provider": "p1", "model": "up-first"},
            "second": {"provider": "p2", "model": "up-second"},
        },
        routes={"default": {"models": ["first", "second"]}},
        server={"api_keys": [KEY]},
        **sections,
    )


@pytest.fixture
def router(primary: FakeUpstream, backup: FakeUpstream) -> Iterator[RunningRouter]:
    with run_router(two_model_config(primary.base_url, backup.base_url)) as r:
        yield r


def client(r: RunningRouter, key: str = KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=r.base_url, api_key=key, max_retries=0, timeout=20)


def test_refused_first_model_answers_from_second_sync(backup: FakeUpstream) -> None:
    with run_router(two_model_config(refused_base_url(), backup.base_url)) as r:
        raw = client(r).chat.completions.with_raw_response.create(
            model="default", messages=MESSAGES
        )
    completion = raw.parse()
    assert completion.choices[0].message.content == "hello from backup"
    assert raw.headers["x-modelrouter-model"] == "second"
    assert raw.headers["x-modelrouter-provider"] == "p2"
    assert raw.headers["x-modelrouter-attempts"] == "2"
    assert raw.headers["x-request-id"]
    assert backup.requests[-1].json["model"] == "up-second"


async def test_refused_first_model_answers_from_second_async_stream(backup: FakeUpstream) -> None:
    with run_router(two_model_config(refused_base_url(), backup.base_url)) as r:
        aclient = openai.AsyncOpenAI(base_url=r.base_url, api_key=KEY, max_retries=0)
        raw = await aclient.chat.completions.with_raw_response.create(
            model="default",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
        stream = raw.parse()
        text, usage = "", None
        async for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
            if chunk.usage:
                usage = chunk.usage
        await aclient.close()
    assert text == "hello from backup"
    assert usage is not None and usage.total_tokens > 0
    assert raw.headers["x-modelrouter-attempts"] == "2"
    assert raw.headers["x-modelrouter-model"] == "second"


async def test_async_non_stream(router: RunningRouter) -> None:
    aclient = openai.AsyncOpenAI(base_url=router.base_url, api_key=KEY, max_retries=0)
    completion = await aclient.chat.completions.create(model="first", messages=MESSAGES)
    await aclient.close()
    assert completion.choices[0].message.content == "hello from primary"


def test_sync_stream_passes_every_chunk(router: RunningRouter, primary: FakeUpstream) -> None:
    chunks = list(
        client(router).chat.completions.create(model="default", messages=MESSAGES, stream=True)
    )
    # The fake sends a role chunk, content pieces, and a finish chunk: all must arrive.
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "hello from primary"
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_unknown_fields_reach_upstream_unchanged(
    router: RunningRouter, primary: FakeUpstream
) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "x", "schema": {"type": "object"}},
    }
    client(router).chat.completions.create(
        model="default",
        messages=MESSAGES,
        tools=tools,
        response_format=response_format,
        seed=7,
        logprobs=True,
        top_logprobs=2,
        extra_body={"vendor_knob": {"a": [1, 2]}},
    )
    sent = primary.requests[-1].json
    assert sent["tools"] == tools
    assert sent["response_format"] == response_format
    assert sent["seed"] == 7 and sent["logprobs"] is True and sent["top_logprobs"] == 2
    assert sent["vendor_knob"] == {"a": [1, 2]}
    assert sent["model"] == "up-first"
    assert primary.requests[-1].headers["authorization"] == f"Bearer {UPSTREAM_KEY}"


def test_all_failed_raises_502_with_trail(
    router: RunningRouter, primary: FakeUpstream, backup: FakeUpstream
) -> None:
    primary.default = status(500)
    backup.default = status(503)
    with pytest.raises(openai.APIStatusError) as info:
        client(router).chat.completions.create(model="default", messages=MESSAGES)
    err = info.value
    assert err.status_code == 502
    body: Any = err.body
    assert body["code"] == "all_models_failed"
    models = [a["model"] for a in body["attempts"]]
    # Each model once in rank order, then each retried once (retries_per_model = 1)
    # in the order their backoffs expire.
    assert models[:2] == ["first", "second"]
    assert sorted(models[2:]) == ["first", "second"]
    assert {a["status"] for a in body["attempts"]} == {500, 503}
    assert UPSTREAM_KEY not in err.response.text


def test_bad_key_raises_authentication_error(router: RunningRouter) -> None:
    with pytest.raises(openai.AuthenticationError):
        client(router, key="wrong").chat.completions.create(model="default", messages=MESSAGES)
    with pytest.raises(openai.AuthenticationError):
        client(router, key="wrong").models.list()
    # No Authorization header at all (the SDK always sends one).
    resp = httpx2.post(router.base_url + "/chat/completions", json={"messages": MESSAGES})
    assert resp.status_code == 401
    assert resp.json()["error"]["type"] == "authentication_error"


def test_mid_stream_cut_raises_in_sdk(router: RunningRouter, primary: FakeUpstream) -> None:
    primary.script(cut_stream(after=2))
    stream = client(router).chat.completions.create(model="default", messages=MESSAGES, stream=True)
    got = ""
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            got += chunk.choices[0].delta.content or ""
    assert "stream_interrupted" in str(info.value.body) or "failed" in info.value.message
    assert got  # some content arrived before the cut: no fallback after the first byte
    assert "backup" not in got


def test_stream_cut_before_first_byte_falls_back(
    router: RunningRouter, primary: FakeUpstream
) -> None:
    primary.default = status(502)
    text = "".join(
        c.choices[0].delta.content or ""
        for c in client(router).chat.completions.create(
            model="default", messages=MESSAGES, stream=True
        )
    )
    assert text == "hello from backup"


def test_client_error_returned_as_given(router: RunningRouter, primary: FakeUpstream) -> None:
    primary.script(
        status(
            400,
            {
                "error": {
                    "message": "temperature too hot",
                    "type": "invalid_request_error",
                    "param": "temperature",
                    "code": "bad_temp",
                }
            },
        )
    )
    with pytest.raises(openai.BadRequestError) as info:
        client(router).chat.completions.create(model="default", messages=MESSAGES)
    assert info.value.code == "bad_temp"
    assert info.value.param == "temperature"


def test_context_length_error_falls_back(
    router: RunningRouter, primary: FakeUpstream, backup: FakeUpstream
) -> None:
    primary.script(context_length_exceeded())
    out = client(router).chat.completions.create(model="default", messages=MESSAGES)
    assert out.choices[0].message.content == "hello from backup"


def test_429_with_long_retry_after_goes_to_next_without_waiting(
    router: RunningRouter, primary: FakeUpstream
) -> None:
    primary.script(rate_limited(retry_after=30))
    raw = client(router).chat.completions.with_raw_response.create(
        model="default", messages=MESSAGES
    )
    assert raw.headers["x-modelrouter-model"] == "second"
    assert raw.elapsed.total_seconds() < 2


def test_all_rate_limited_gives_429_with_retry_after(
    router: RunningRouter, primary: FakeUpstream, backup: FakeUpstream
) -> None:
    primary.default = rate_limited(retry_after=30)
    backup.default = rate_limited(retry_after=20)
    with pytest.raises(openai.RateLimitError) as info:
        client(router).chat.completions.create(model="default", messages=MESSAGES)
    assert info.value.response.headers["retry-after"] == "20"


def test_first_token_timeout_falls_back(primary: FakeUpstream, backup: FakeUpstream) -> None:
    primary.script(hang())
    cfg = two_model_config(primary.base_url, backup.base_url, router={"first_token_timeout_s": 0.3})
    with run_router(cfg) as r:
        raw = client(r).chat.completions.with_raw_response.create(
            model="default", messages=MESSAGES
        )
    assert raw.headers["x-modelrouter-model"] == "second"
    assert raw.elapsed.total_seconds() < 2


def test_adhoc_models_header_and_body(router: RunningRouter, backup: FakeUpstream) -> None:
    c = client(router)
    raw = c.chat.completions.with_raw_response.create(
        model="second", messages=MESSAGES, extra_body={"models": ["first"]}
    )
    assert raw.headers["x-modelrouter-model"] == "second"
    raw = c.chat.completions.with_raw_response.create(
        model="second", messages=MESSAGES, extra_headers={"x-modelrouter-models": "first"}
    )
    assert raw.headers["x-modelrouter-model"] == "second"
    # ``models`` never reaches the upstream: it is the router's own field.
    assert "models" not in backup.requests[-1].json


def test_unknown_model_is_404_model_not_found(router: RunningRouter) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client(router).chat.completions.create(model="nope", messages=MESSAGES)
    assert info.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        client(router).chat.completions.create(
            model="first", messages=MESSAGES, extra_body={"models": ["nope"]}
        )


def test_models_endpoint_lists_routes_and_models(router: RunningRouter) -> None:
    c = client(router)
    ids = [m.id for m in c.models.list()]
    assert ids == ["default", "first", "second"]
    one: Any = c.models.retrieve("second")
    assert one.modelrouter["provider"] == "p2"
    with pytest.raises(openai.NotFoundError):
        c.models.retrieve("nope")
