"""Gemini translation without HTTP: requests, answers, streams and the error table.

Every translated request is also run through the fake's strict schema check, and
every answer example through the google-genai response type.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from google.genai.types import GenerateContentResponse

from providers.base import Failure, ProviderError
from providers.gemini_reply import GeminiStream, from_gemini
from providers.gemini_wire import classify, retry_delay, to_gemini
from tests.fakes.gemini_schema import validate
from tests.fakes.gemini_upstream import bad_key_body, error_body, quota_body

from .helpers import chunks_of, joined_text, joined_tool_calls

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}


def translate(body: dict[str, Any]) -> dict[str, Any]:
    out = to_gemini(body)
    validate(out)
    return out


def call(id: str, city: str, signature: str | None = None) -> dict[str, Any]:
    tc: dict[str, Any] = {
        "id": id,
        "type": "function",
        "function": {"name": "get_weather", "arguments": orjson.dumps({"city": city}).decode()},
    }
    if signature:
        tc["extra_content"] = {"google": {"thought_signature": signature}}
    return tc


def test_roles_system_and_generation_config() -> None:
    out = translate(
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "hi"},
                {"role": "user", "content": [{"type": "text", "text": "there"}]},
                {"role": "assistant", "content": "hello"},
                {"role": "user", "content": "bye"},
            ],
            "temperature": 0.3,
            "top_p": 0.9,
            "max_tokens": 50,
            "stop": ["END"],
            "n": 2,
            "seed": 7,
            "presence_penalty": 0.5,
            "response_format": {"type": "json_object"},
        }
    )
    assert out["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert [c["role"] for c in out["contents"]] == ["user", "model", "user"]
    assert out["contents"][0]["parts"] == [{"text": "hi"}, {"text": "there"}]
    assert out["generationConfig"] == {
        "temperature": 0.3,
        "topP": 0.9,
        "presencePenalty": 0.5,
        "seed": 7,
        "candidateCount": 2,
        "maxOutputTokens": 50,
        "stopSequences": ["END"],
        "responseMimeType": "application/json",
    }


def test_tools_calls_and_responses() -> None:
    body = {
        "messages": [
            {"role": "user", "content": "weather in Paris and Rome?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [call("c1", "Paris", signature="c2lnbmF0dXJl"), call("c2", "Rome")],
            },
            {"role": "tool", "tool_call_id": "c1", "content": '{"temp_c": 21}'},
            {"role": "tool", "tool_call_id": "c2", "content": "25C"},
            {"role": "user", "content": "which is warmer?"},
        ],
        "tools": [WEATHER],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
    }
    before = copy.deepcopy(body)
    out = translate(body)
    assert body == before, "the client's body must not be modified"
    model, responses, question = out["contents"][1:]
    assert model == {
        "role": "model",
        "parts": [
            {
                "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                "thoughtSignature": "c2lnbmF0dXJl",
            },
            {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}},
        ],
    }
    assert responses == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"temp_c": 21}}},
            {"functionResponse": {"name": "get_weather", "response": {"output": "25C"}}},
        ],
    }
    assert question == {"role": "user", "parts": [{"text": "which is warmer?"}]}
    decl = out["tools"][0]["functionDeclarations"][0]
    # Full JSON schema (additionalProperties included) goes to parametersJsonSchema.
    assert decl["parametersJsonSchema"] == WEATHER["function"]["parameters"]  # type: ignore[index]
    assert "parameters" not in decl
    assert out["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}
    }


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        ("auto", None),
        ("none", {"functionCallingConfig": {"mode": "NONE"}}),
        ("required", {"functionCallingConfig": {"mode": "ANY"}}),
    ],
)
def test_tool_choice(choice: str, config: dict[str, Any] | None) -> None:
    out = translate(
        {"messages": [{"role": "user", "content": "x"}], "tools": [WEATHER], "tool_choice": choice}
    )
    assert out.get("toolConfig") == config


def test_media_parts() -> None:
    out = translate(
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "image_url",
                            "image_url": {"url": "data:image/png;base64,iVBORw0K"},
                        },
                        {"type": "image_url", "image_url": "https://example.com/cat.jpg"},
                        {
                            "type": "input_audio",
                            "input_audio": {"data": "UklGRg==", "format": "wav"},
                        },
                        {
                            "type": "file",
                            "file": {"file_data": "data:application/pdf;base64,JVBERi0xLjQK"},
                        },
                    ],
                }
            ]
        }
    )
    assert out["contents"][0]["parts"] == [
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0K"}},
        {"fileData": {"fileUri": "https://example.com/cat.jpg"}},
        {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0xLjQK"}},
    ]


def test_json_schema_response_format() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    out = translate(
        {
            "messages": [{"role": "user", "content": "x"}],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "r", "schema": schema},
            },
        }
    )
    assert out["generationConfig"] == {
        "responseMimeType": "application/json",
        "responseJsonSchema": schema,
    }


@pytest.mark.parametrize(
    "body",
    [
        {"messages": [{"role": "tool", "tool_call_id": "nope", "content": "x"}]},
        {"messages": [{"role": "function", "content": "x"}]},
        {"messages": [{"role": "user", "content": [{"type": "video", "video": {}}]}]},
        {"messages": [{"role": "user", "content": "x"}], "stop": [1]},
    ],
)
def test_untranslatable_requests_are_client_errors(body: dict[str, Any]) -> None:
    with pytest.raises(ProviderError) as info:
        to_gemini(body)
    assert info.value.failure is Failure.CLIENT


# ---- answers ---------------------------------------------------------------------------


def response(candidates: list[dict[str, Any]] | None, **extra: Any) -> dict[str, Any]:
    resp: dict[str, Any] = {
        "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 4, "totalTokenCount": 14},
        "modelVersion": "gemini-x-001",
        "responseId": "rid1",
        **extra,
    }
    if candidates is not None:
        resp["candidates"] = candidates
    GenerateContentResponse.model_validate(resp)  # the example must be a real response
    return resp


def candidate(parts: list[dict[str, Any]], reason: str = "STOP", index: int = 0) -> dict[str, Any]:
    return {"content": {"parts": parts, "role": "model"}, "finishReason": reason, "index": index}


def translate_answer(resp: dict[str, Any]) -> dict[str, Any]:
    raw, usage = from_gemini(resp, created=5, model="gemini-x", response_id="fallback")
    body: dict[str, Any] = orjson.loads(raw)
    assert body["usage"] == usage
    return body


def test_answer_text_and_function_call() -> None:
    fc = {
        "functionCall": {"name": "get_weather", "args": {"city": "Oslo"}},
        "thoughtSignature": "c2ln",
    }
    body = translate_answer(response([candidate([{"text": "Checking. "}, fc])]))
    assert body["id"] == "chatcmpl-rid1"
    assert body["model"] == "gemini-x-001"
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Checking. "
    assert choice["message"]["tool_calls"] == [
        {
            "id": "call_rid1_0",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
            "extra_content": {"google": {"thought_signature": "c2ln"}},
        }
    ]


def test_thought_parts_are_not_content() -> None:
    parts = [{"text": "thinking...", "thought": True}, {"text": "Answer."}]
    assert translate_answer(response([candidate(parts)]))["choices"][0]["message"]["content"] == (
        "Answer."
    )


def test_several_candidates_become_choices() -> None:
    body = translate_answer(
        response([candidate([{"text": "one"}]), candidate([{"text": "two"}], "MAX_TOKENS", 1)])
    )
    assert [(c["index"], c["message"]["content"], c["finish_reason"]) for c in body["choices"]] == [
        (0, "one", "stop"),
        (1, "two", "length"),
    ]


def test_usage_with_cache_and_thoughts() -> None:
    meta = {
        "promptTokenCount": 100,
        "cachedContentTokenCount": 60,
        "candidatesTokenCount": 10,
        "thoughtsTokenCount": 30,
        "totalTokenCount": 140,
    }
    usage = translate_answer(response([candidate([{"text": "x"}])], usageMetadata=meta))["usage"]
    assert usage == {
        "prompt_tokens": 100,
        "completion_tokens": 40,
        "total_tokens": 140,
        "prompt_tokens_details": {"cached_tokens": 60},
        "completion_tokens_details": {"reasoning_tokens": 30},
    }


@pytest.mark.parametrize("reason", ["SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT"])
def test_filtered_with_nothing_produced_can_fall_back(reason: str) -> None:
    with pytest.raises(ProviderError) as info:
        from_gemini(
            response([{"finishReason": reason, "index": 0}]), created=0, model="m", response_id="r"
        )
    assert info.value.failure is Failure.CONTENT_FILTER


def test_blocked_prompt_can_fall_back() -> None:
    resp = response(None, promptFeedback={"blockReason": "SAFETY"})
    with pytest.raises(ProviderError) as info:
        from_gemini(resp, created=0, model="m", response_id="r")
    assert info.value.failure is Failure.CONTENT_FILTER


def test_filtered_after_some_text_is_an_answer() -> None:
    body = translate_answer(response([candidate([{"text": "Once upon"}], "SAFETY")]))
    assert body["choices"][0]["finish_reason"] == "content_filter"


def test_broken_function_call_with_nothing_produced_is_malformed() -> None:
    resp = response([{"finishReason": "MALFORMED_FUNCTION_CALL", "index": 0}])
    with pytest.raises(ProviderError) as info:
        from_gemini(resp, created=0, model="m", response_id="r")
    assert info.value.failure is Failure.MALFORMED


# ---- streams ---------------------------------------------------------------------------


def chunk(parts: list[dict[str, Any]], reason: str | None = None) -> dict[str, Any]:
    cand: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if reason:
        cand["finishReason"] = reason
    return response([cand])


def run(chunks: list[dict[str, Any]], include_usage: bool = True) -> list[bytes]:
    tr = GeminiStream(model="gemini-x", created=1, include_usage=include_usage, response_id="fb")
    out: list[bytes] = []
    for c in chunks:
        out += tr.feed(c)
    return out + tr.finish()


def test_stream_text_then_function_call() -> None:
    fc = {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}
    out = run([chunk([{"text": "Let me "}]), chunk([{"text": "check."}]), chunk([fc], "STOP")])
    assert out[-1] == b"data: [DONE]\n\n"
    chunks = chunks_of(out)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert joined_text(chunks) == "Let me check."
    assert joined_tool_calls(chunks) == [
        {"id": "call_rid1_0", "name": "get_weather", "arguments": '{"city":"Paris"}'}
    ]
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finishes[-1] == "tool_calls"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 14


def test_stream_ends_with_usage_asked_for_or_not() -> None:
    done = [chunk([{"text": "Hi"}], "STOP")]
    unasked = chunks_of(run(done, include_usage=False))
    assert all("usage" not in c for c in unasked[:-1])
    assert unasked[-1]["choices"] == [] and unasked[-1]["usage"]["total_tokens"] == 14
    asked = chunks_of(run(done, include_usage=True))
    assert all(c["usage"] is None for c in asked[:-1]) and asked[-1] == unasked[-1]


def test_stream_without_finish_reason_is_interrupted() -> None:
    with pytest.raises(ProviderError) as info:
        run([chunk([{"text": "Let me "}])])
    assert info.value.failure is Failure.INTERRUPTED


def test_stream_error_chunk() -> None:
    tr = GeminiStream(model="m", created=1, include_usage=False, response_id="r")
    with pytest.raises(ProviderError) as info:
        tr.feed(error_body(503, "The model is overloaded."))
    assert info.value.failure is Failure.SERVER


def test_stream_blocked_before_content_can_fall_back() -> None:
    tr = GeminiStream(model="m", created=1, include_usage=False, response_id="r")
    with pytest.raises(ProviderError) as info:
        tr.feed(response([{"finishReason": "SAFETY", "index": 0}]))
    assert info.value.failure is Failure.CONTENT_FILTER


# ---- error table -----------------------------------------------------------------------


def err(code: int, message: str) -> bytes:
    return orjson.dumps(error_body(code, message))


TOO_MANY = "exceeds the maximum number of tokens"
FAILED_PRECONDITION = orjson.dumps(
    {
        "error": {
            "code": 400,
            "message": "User location is not supported for the API use.",
            "status": "FAILED_PRECONDITION",
        }
    }
)


@pytest.mark.parametrize(
    ("status", "raw", "failure"),
    [
        (400, err(400, "Please use a valid role: user, model."), Failure.CLIENT),
        (400, orjson.dumps(bad_key_body()), Failure.MISCONFIGURED),
        (400, FAILED_PRECONDITION, Failure.MISCONFIGURED),
        (
            400,
            err(400, f"The input token count (1200000) {TOO_MANY} allowed (1048576)."),
            Failure.CONTEXT_LENGTH,
        ),
        (403, err(403, "Method doesn't allow unregistered callers"), Failure.MISCONFIGURED),
        (404, err(404, "models/x is not found for API version v1beta"), Failure.MISCONFIGURED),
        (429, orjson.dumps(quota_body()), Failure.RATE_LIMIT),
        (500, err(500, "An internal error has occurred."), Failure.SERVER),
        (503, err(503, "The model is overloaded. Please try again later."), Failure.SERVER),
        (504, err(504, "Deadline exceeded"), Failure.SERVER),
    ],
)
def test_error_table(status: int, raw: bytes, failure: Failure) -> None:
    assert classify(status, raw) is failure


def test_retry_delay_from_retry_info() -> None:
    assert retry_delay(orjson.dumps(quota_body(37))) == 37.0
    assert retry_delay(err(429, "quota")) is None
    assert retry_delay(b"not json") is None
