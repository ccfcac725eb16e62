"""The gemini provider over real HTTP against the strict fake Gemini API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from providers.base import ChatRequest, Failure, ProviderError, Target
from providers.gemini import GeminiOptions, GeminiProvider
from tests.fakes.gemini_upstream import (
    KEY,
    Blocked,
    FakeGemini,
    FunctionCall,
    error_body,
    quota_body,
)
from tests.fakes.upstream import bad_json, cut_stream, status, stream_error

from .helpers import HI, WEATHER, chunks_of, joined_text, joined_tool_calls

TOO_LONG = "The input token count (2000000) exceeds the maximum number of tokens allowed (1048576)."
TARGET = Target(name="flash", upstream_model="gemini-fake")


def provider(base_url: str, key: str = KEY) -> GeminiProvider:
    return GeminiProvider("gem", GeminiOptions(kind="gemini", base_url=base_url, api_key=key))


@pytest.fixture
async def gem(gemini_up: FakeGemini) -> AsyncIterator[GeminiProvider]:
    p = provider(gemini_up.base_url)
    await p.start()
    yield p
    await p.aclose()


async def collect(p: GeminiProvider, body: dict[str, Any]) -> list[bytes]:
    return [e async for e in p.stream(ChatRequest.from_body(body), TARGET, 5.0)]


async def test_chat(gem: GeminiProvider, gemini_up: FakeGemini) -> None:
    gemini_up.usage_extra.update(cachedContentTokenCount=1)
    body = {"messages": HI, "temperature": 0.1, "max_tokens": 30}
    done = await gem.chat(ChatRequest.from_body(body), TARGET, 5)
    data = orjson.loads(done.body)
    assert data["choices"][0]["message"]["content"] == "Hello from Gemini"
    assert data["model"] == "gemini-fake"
    assert done.usage is not None and done.usage["prompt_tokens_details"] == {"cached_tokens": 1}
    sent = gemini_up.requests[-1]
    assert sent.path == "/v1beta/models/gemini-fake:generateContent"
    assert sent.headers["x-goog-api-key"] == KEY
    assert sent.json["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert sent.json["generationConfig"] == {"temperature": 0.1, "maxOutputTokens": 30}


async def test_several_candidates(gem: GeminiProvider) -> None:
    done = await gem.chat(ChatRequest.from_body({"messages": HI, "n": 2}), TARGET, 5)
    assert [c["index"] for c in orjson.loads(done.body)["choices"]] == [0, 1]


async def test_stream_with_usage(gem: GeminiProvider, gemini_up: FakeGemini) -> None:
    body = {"messages": HI, "stream": True, "stream_options": {"include_usage": True}}
    events = await collect(gem, body)
    assert gemini_up.requests[-1].path == "/v1beta/models/gemini-fake:streamGenerateContent"
    assert events[-1] == b"data: [DONE]\n\n"
    chunks = chunks_of(events)
    assert joined_text(chunks) == "Hello from Gemini"
    assert chunks[-1]["usage"]["completion_tokens"] == 3


async def test_stream_function_call_with_signature(
    gem: GeminiProvider, gemini_up: FakeGemini
) -> None:
    gemini_up.script(FunctionCall("get_weather", {"city": "Paris"}, signature="sig"))
    chunks = chunks_of(await collect(gem, {"messages": HI, "tools": [WEATHER], "stream": True}))
    calls = joined_tool_calls(chunks)
    assert [(c["name"], c["arguments"]) for c in calls] == [("get_weather", '{"city":"Paris"}')]
    deltas = [
        tc
        for c in chunks
        if c["choices"]
        for tc in c["choices"][0]["delta"].get("tool_calls") or ()
    ]
    assert deltas[0]["extra_content"]["google"]["thought_signature"] == "c2ln"
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    # Not asked for, the usage chunk still ends the stream: the dispatcher needs it.
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0


@pytest.mark.parametrize(
    ("behaviour", "failure", "code"),
    [
        (status(503), Failure.SERVER, 503),
        (status(500), Failure.SERVER, 500),
        (status(429, quota_body(37)), Failure.RATE_LIMIT, 429),
        (status(403), Failure.MISCONFIGURED, 403),
        (status(404), Failure.MISCONFIGURED, 404),
        (
            status(400, error_body(400, TOO_LONG)),
            Failure.CONTEXT_LENGTH,
            400,
        ),
        (
            status(400, error_body(400, "Request contains an invalid argument.")),
            Failure.CLIENT,
            400,
        ),
        (bad_json(), Failure.MALFORMED, None),
        (Blocked("SAFETY"), Failure.CONTENT_FILTER, None),
        (Blocked("RECITATION"), Failure.CONTENT_FILTER, None),
        (Blocked("PROHIBITED_CONTENT", prompt=True), Failure.CONTENT_FILTER, None),
    ],
)
async def test_chat_errors(
    gem: GeminiProvider, gemini_up: FakeGemini, behaviour: Any, failure: Failure, code: int | None
) -> None:
    gemini_up.script(behaviour)
    with pytest.raises(ProviderError) as info:
        await gem.chat(ChatRequest.from_body({"messages": HI}), TARGET, 5)
    assert info.value.failure is failure
    assert info.value.status == code
    if code == 429:
        assert info.value.retry_after == 37


@pytest.mark.parametrize(
    ("behaviour", "failure", "sent"),
    [
        (stream_error(after=0, message="The model is overloaded."), Failure.SERVER, 0),
        (stream_error(after=2, message="The model is overloaded."), Failure.SERVER, 3),
        (cut_stream(after=1), Failure.INTERRUPTED, 2),
        (Blocked("SAFETY"), Failure.CONTENT_FILTER, 0),
        (status(503), Failure.SERVER, 0),
    ],
)
async def test_stream_errors(
    gem: GeminiProvider, gemini_up: FakeGemini, behaviour: Any, failure: Failure, sent: int
) -> None:
    gemini_up.script(behaviour)
    events: list[bytes] = []
    with pytest.raises(ProviderError) as info:
        async for event in gem.stream(
            ChatRequest.from_body({"messages": HI, "stream": True}), TARGET, 5
        ):
            events.append(event)
    assert info.value.failure is failure
    assert len(events) == sent


async def test_wrong_key_is_auth_not_client(gemini_up: FakeGemini) -> None:
    p = provider(gemini_up.base_url, key="AIza-wrong-secret")
    await p.start()
    try:
        with pytest.raises(ProviderError) as info:
            await p.chat(ChatRequest.from_body({"messages": HI}), TARGET, 5)
    finally:
        await p.aclose()
    assert info.value.status == 400
    assert info.value.failure is Failure.MISCONFIGURED
    assert "AIza-wrong-secret" not in info.value.message


async def test_request_the_api_refuses_is_a_client_error(gem: GeminiProvider) -> None:
    # Gemini takes at most 5 stop sequences; the translation passes them on as given.
    body = {"messages": HI, "stop": ["a", "b", "c", "d", "e", "f"]}
    with pytest.raises(ProviderError) as info:
        await gem.chat(ChatRequest.from_body(body), TARGET, 5)
    assert info.value.failure is Failure.CLIENT
    assert info.value.body is not None
    assert orjson.loads(info.value.body)["error"]["status"] == "INVALID_ARGUMENT"


async def test_probes(gem: GeminiProvider, gemini_up: FakeGemini) -> None:
    await gem.probe(TARGET, 5, "models")
    assert gemini_up.requests[-1].path == "/v1beta/models/gemini-fake"
    await gem.probe(Target("flash", "models/gemini-fake"), 5, "models")
    assert gemini_up.requests[-1].path == "/v1beta/models/gemini-fake"
    await gem.probe(TARGET, 5, "chat")
    assert gemini_up.requests[-1].json["generationConfig"] == {"maxOutputTokens": 1}
    with pytest.raises(ProviderError) as info:
        await gem.probe(Target("x", "gemini-missing"), 5, "models")
    assert info.value.failure is Failure.MISCONFIGURED
