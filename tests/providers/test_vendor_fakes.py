"""The vendor fakes are faithful: strict about requests, documented shapes in answers.

The vendors' own SDKs talk to the fakes, and every raw answer is validated with the
SDK's response types; each kind of invalid request is refused with the vendor's 400
error shape.
"""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2
import orjson
import pytest
from anthropic.types import ErrorResponse, Message, ModelInfo, RawMessageStreamEvent
from google import genai
from google.genai import types as gtypes
from pydantic import TypeAdapter

from tests.fakes.anthropic_upstream import KEY as ANTHROPIC_KEY
from tests.fakes.anthropic_upstream import FakeAnthropic, ToolUse
from tests.fakes.gemini_upstream import KEY as GEMINI_KEY
from tests.fakes.gemini_upstream import Blocked, FakeGemini, FunctionCall
from tests.fakes.upstream import cut_stream, stream_error

STREAM_EVENT: TypeAdapter[Any] = TypeAdapter(RawMessageStreamEvent)
ANTHROPIC_HEADERS = {"x-api-key": ANTHROPIC_KEY, "anthropic-version": "2023-06-01"}
GEMINI_HEADERS = {"x-goog-api-key": GEMINI_KEY}
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def sse_data(raw: bytes) -> list[tuple[str, Any]]:
    """(event name, decoded data) of each SSE event in ``raw``."""
    out = []
    for block in raw.replace(b"\r\n", b"\n").split(b"\n\n"):
        if not block.strip():
            continue
        name, data = "", b""
        for line in block.split(b"\n"):
            if line.startswith(b"event: "):
                name = line[7:].decode()
            elif line.startswith(b"data: "):
                data = line[6:]
        out.append((name, orjson.loads(data)))
    return out


# ---- Anthropic -------------------------------------------------------------------------


def anthropic_post(up: FakeAnthropic, body: dict[str, Any]) -> httpx2.Response:
    return httpx2.post(f"{up.base_url}/v1/messages", json=body, headers=ANTHROPIC_HEADERS)


def test_anthropic_sdk_against_the_fake(anthropic_up: FakeAnthropic) -> None:
    client = anthropic.Anthropic(
        base_url=anthropic_up.base_url, api_key=ANTHROPIC_KEY, max_retries=0
    )
    msg = client.messages.create(
        model="claude-fake",
        max_tokens=100,
        system="Be brief.",
        messages=[{"role": "user", "content": "hi"}],
    )
    assert msg.content[0].type == "text" and msg.content[0].text == "Hello from Claude"
    anthropic_up.script(ToolUse("get_weather", {"city": "Paris"}))
    with client.messages.stream(
        model="claude-fake",
        max_tokens=100,
        messages=[{"role": "user", "content": "weather?"}],
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert final.content[0].type == "tool_use" and final.content[0].input == {"city": "Paris"}
    info = client.models.retrieve("claude-fake")
    assert info.id == "claude-fake"


def test_anthropic_answers_validate_as_sdk_types(anthropic_up: FakeAnthropic) -> None:
    body = {
        "model": "claude-fake",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}],
    }
    Message.model_validate(anthropic_post(anthropic_up, body).json())
    anthropic_up.script(ToolUse("get_weather", {"city": "Paris"}, text="Checking."))
    raw = anthropic_post(anthropic_up, {**body, "stream": True, "tools": [WEATHER_TOOL]})
    assert raw.headers["content-type"].startswith("text/event-stream")
    events = sse_data(raw.content)
    for name, data in events:
        # ping is documented but not part of the SDK's event union.
        assert (
            data == {"type": "ping"}
            if name == "ping"
            else STREAM_EVENT.validate_python(data).type == name
        )
    assert [n for n, _ in events][:2] == ["message_start", "ping"]
    assert events[-1][0] == "message_stop"
    anthropic_up.script(stream_error(after=1, message="Overloaded"))
    events = sse_data(anthropic_post(anthropic_up, {**body, "stream": True}).content)
    assert events[-1][0] == "error"
    ErrorResponse.model_validate({**events[-1][1], "request_id": None})
    model = httpx2.get(f"{anthropic_up.base_url}/v1/models/claude-fake", headers=ANTHROPIC_HEADERS)
    ModelInfo.model_validate(model.json())


def test_anthropic_cut_stream_has_no_message_stop(anthropic_up: FakeAnthropic) -> None:
    anthropic_up.script(cut_stream(after=1))
    body = {
        "model": "claude-fake",
        "max_tokens": 9,
        "stream": True,
        "messages": [{"role": "user", "content": "x"}],
    }
    with pytest.raises(httpx2.RemoteProtocolError):
        anthropic_post(anthropic_up, body)


USER = {"role": "user", "content": "hi"}
TOOL_USE = {
    "role": "assistant",
    "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}],
}
RESULT = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "21C"}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"temperature": 0.5}, "temperature: Extra inputs are not permitted"),
        ({"frequency_penalty": 1}, "frequency_penalty: Extra inputs are not permitted"),
        ({"max_tokens": None}, "max_tokens: Field required"),
        ({"max_tokens": "5"}, "max_tokens: Input should be a valid integer"),
        ({"messages": []}, "at least one message is required"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages.0.role: Input should be"),
        (
            {"messages": [{"role": "user", "content": "x", "name": "bob"}]},
            "messages.0.name: Extra inputs",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
            "Input tag 'image_url' found using 'type' does not match",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": ""}]}]},
            "text content blocks must be non-empty",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "image",
                                "source": {
                                    "type": "base64",
                                    "media_type": "image/tiff",
                                    "data": "AA==",
                                },
                            }
                        ],
                    }
                ]
            },
            "media_type: Input should be one of",
        ),
        ({"messages": [{"role": "user", "content": [RESULT]}]}, "unexpected `tool_use_id` found"),
        ({"messages": [USER, TOOL_USE, USER]}, "`tool_use` ids were found without `tool_result`"),
        (
            {
                "messages": [
                    USER,
                    TOOL_USE,
                    {"role": "user", "content": [{"type": "text", "text": "a"}, RESULT]},
                ]
            },
            "`tool_result` blocks must come first",
        ),
        (
            {"messages": [{"role": "user", "content": TOOL_USE["content"]}]},
            "tool_use blocks are not allowed in user",
        ),
        (
            {"messages": [{"role": "system", "content": [{"type": "image", "source": {}}]}]},
            "image blocks are not allowed in system",
        ),
        ({"tools": [{"name": "get_weather"}]}, "tools.0.input_schema: Field required"),
        (
            {"tools": [{**WEATHER_TOOL, "name": "get weather"}]},
            "tools.0.name: String should match pattern",
        ),
        (
            {"tools": [WEATHER_TOOL], "tool_choice": {"type": "tool", "name": "nope"}},
            "tool_choice.name",
        ),
        ({"tool_choice": {"type": "required"}}, "tool_choice.type"),
        ({"metadata": {"user": "x"}}, "metadata.user: Extra inputs are not permitted"),
    ],
)
def test_anthropic_rejects_invalid_requests(
    anthropic_up: FakeAnthropic, change: dict[str, Any], expected: str
) -> None:
    body: dict[str, Any] = {"model": "claude-fake", "max_tokens": 50, "messages": [USER], **change}
    resp = anthropic_post(anthropic_up, {k: v for k, v in body.items() if v is not None})
    assert resp.status_code == 400
    err = ErrorResponse.model_validate(resp.json())
    assert err.error.type == "invalid_request_error"
    assert expected in err.error.message
    assert anthropic_up.rejected == [err.error.message]


def test_anthropic_headers_are_required(anthropic_up: FakeAnthropic) -> None:
    body = {"model": "claude-fake", "max_tokens": 5, "messages": [USER]}
    url = f"{anthropic_up.base_url}/v1/messages"
    no_version = httpx2.post(url, json=body, headers={"x-api-key": ANTHROPIC_KEY})
    assert no_version.status_code == 400
    wrong_key = httpx2.post(url, json=body, headers={**ANTHROPIC_HEADERS, "x-api-key": "nope"})
    assert wrong_key.status_code == 401
    assert wrong_key.json()["error"]["type"] == "authentication_error"


# ---- Gemini ----------------------------------------------------------------------------


def gemini_post(
    up: FakeGemini, body: dict[str, Any], method: str = "generateContent"
) -> httpx2.Response:
    url = f"{up.base_url}/models/gemini-fake:{method}"
    return httpx2.post(url, json=body, headers=GEMINI_HEADERS)


def test_google_genai_sdk_against_the_fake(gemini_up: FakeGemini) -> None:
    client = genai.Client(
        api_key=GEMINI_KEY,
        http_options=gtypes.HttpOptions(
            base_url=gemini_up.base_url.removesuffix("/v1beta"), api_version="v1beta"
        ),
    )
    config = gtypes.GenerateContentConfig(system_instruction="Be brief.", temperature=0.2)
    resp = client.models.generate_content(model="gemini-fake", contents="hi", config=config)
    assert resp.text == "Hello from Gemini"
    gemini_up.script(FunctionCall("get_weather", {"city": "Paris"}))
    decl = gtypes.FunctionDeclaration(
        name="get_weather", parameters_json_schema={"type": "object", "additionalProperties": False}
    )
    tools = gtypes.GenerateContentConfig(tools=[gtypes.Tool(function_declarations=[decl])])
    chunks = list(
        client.models.generate_content_stream(
            model="gemini-fake", contents="weather?", config=tools
        )
    )
    call = chunks[-1].function_calls
    assert call is not None and call[0].name == "get_weather" and call[0].args == {"city": "Paris"}
    assert client.models.get(model="gemini-fake").name == "models/gemini-fake"


def test_gemini_answers_validate_as_sdk_types(gemini_up: FakeGemini) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    gtypes.GenerateContentResponse.model_validate(gemini_post(gemini_up, body).json())
    gemini_up.script(FunctionCall("f", {"a": 1}, text="Calling.", signature="sig"))
    raw = httpx2.post(
        f"{gemini_up.base_url}/models/gemini-fake:streamGenerateContent?alt=sse",
        json=body,
        headers=GEMINI_HEADERS,
    )
    assert raw.headers["content-type"].startswith("text/event-stream")
    chunks = [gtypes.GenerateContentResponse.model_validate(d) for _, d in sse_data(raw.content)]
    assert chunks[-1].candidates and chunks[-1].candidates[0].finish_reason == "STOP"
    # Without alt=sse the API streams one JSON array.
    array = gemini_post(gemini_up, body, "streamGenerateContent").json()
    assert isinstance(array, list)
    for item in array:
        gtypes.GenerateContentResponse.model_validate(item)
    for blocked in (Blocked("SAFETY"), Blocked("PROHIBITED_CONTENT", prompt=True)):
        gemini_up.script(blocked)
        gtypes.GenerateContentResponse.model_validate(gemini_post(gemini_up, body).json())


def parts(*items: dict[str, Any], role: str = "user") -> dict[str, Any]:
    return {"role": role, "parts": list(items)}


CALL = {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}
RESPONSE = {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}}
DECL = {
    "name": "get_weather",
    "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}},
}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"temperature": 0.5}, 'Unknown name "temperature": Cannot find field.'),
        ({"contents": []}, "contents is not specified"),
        (
            {"contents": [parts({"text": "x"}, role="assistant")]},
            "Please use a valid role: user, model.",
        ),
        (
            {"contents": [parts({"text": "x"}, role="system")]},
            "Please use a valid role: user, model.",
        ),
        ({"contents": [{"role": "user", "parts": []}]}, "contents.parts must not be empty"),
        ({"contents": [parts({})]}, "required oneof field 'data' must have one initialized field"),
        (
            {
                "contents": [
                    parts({"text": "x", "inlineData": {"mimeType": "image/png", "data": "AA=="}})
                ]
            },
            "oneof field 'data' is already set",
        ),
        ({"contents": [parts({"image_url": "x"})]}, 'Unknown name "image_url"'),
        (
            {"contents": [parts({"inlineData": {"mimeType": "image/png", "data": "***"}})]},
            "TYPE_BYTES",
        ),
        (
            {"contents": [parts(CALL, role="model")]},
            "function call turn comes immediately after a user turn",
        ),
        (
            {"contents": [parts({"text": "x"}), parts(RESPONSE)]},
            "function response turn comes immediately after",
        ),
        (
            {"contents": [parts({"text": "x"}), parts(CALL, CALL, role="model"), parts(RESPONSE)]},
            "number of function response parts is equal to the number of function call parts",
        ),
        ({"contents": [parts(CALL)]}, "function call parts are in a model turn"),
        (
            {
                "tools": [
                    {
                        "functionDeclarations": [
                            {
                                **DECL,
                                "parameters": {"type": "OBJECT", "additionalProperties": False},
                            }
                        ]
                    }
                ]
            },
            'Unknown name "additionalProperties"',
        ),
        (
            {"tools": [{"functionDeclarations": [{**DECL, "parametersJsonSchema": {}}]}]},
            "cannot both be set",
        ),
        (
            {"tools": [{"functionDeclarations": [{**DECL, "name": "get weather"}]}]},
            "Invalid function name",
        ),
        ({"tools": [{"functions": [DECL]}]}, 'Unknown name "functions"'),
        (
            {
                "tools": [{"functionDeclarations": [DECL]}],
                "toolConfig": {"functionCallingConfig": {"mode": "REQUIRED"}},
            },
            "function_calling_config.mode",
        ),
        (
            {
                "tools": [{"functionDeclarations": [DECL]}],
                "toolConfig": {
                    "functionCallingConfig": {
                        "mode": "AUTO",
                        "allowedFunctionNames": ["get_weather"],
                    }
                },
            },
            "only allowed when mode is ANY",
        ),
        ({"generationConfig": {"max_tokens": 5}}, 'Unknown name "max_tokens"'),
        ({"generationConfig": {"temperature": 3}}, "generation_config.temperature"),
        ({"generationConfig": {"stopSequences": ["a", "b", "c", "d", "e", "f"]}}, "at most 5"),
        (
            {"generationConfig": {"responseJsonSchema": {"type": "object"}}},
            "response_mime_type must be set",
        ),
        (
            {
                "systemInstruction": {
                    "parts": [{"inlineData": {"mimeType": "image/png", "data": "AA=="}}]
                }
            },
            "system_instruction parts must be text",
        ),
    ],
)
def test_gemini_rejects_invalid_requests(
    gemini_up: FakeGemini, change: dict[str, Any], expected: str
) -> None:
    body = {"contents": [parts({"text": "hi"})], **change}
    resp = gemini_post(gemini_up, body)
    assert resp.status_code == 400
    err = resp.json()["error"]
    assert err["code"] == 400 and err["status"] == "INVALID_ARGUMENT"
    assert expected in err["message"]
    assert gemini_up.rejected == [err["message"]]


def test_gemini_accepts_snake_case_and_valid_function_turns(gemini_up: FakeGemini) -> None:
    body = {
        "contents": [parts({"text": "x"}), parts(CALL, role="model"), parts(RESPONSE)],
        "system_instruction": {"parts": [{"text": "Be brief."}]},
        "tools": [{"function_declarations": [DECL]}],
        "generation_config": {"max_output_tokens": 20, "candidate_count": 2},
    }
    resp = gemini_post(gemini_up, body)
    assert resp.status_code == 200, resp.text
    data = gtypes.GenerateContentResponse.model_validate(resp.json())
    assert data.candidates is not None and len(data.candidates) == 2
    assert data.text is not None and data.text.startswith("tool said:")


def test_gemini_key_errors(gemini_up: FakeGemini) -> None:
    body = {"contents": [parts({"text": "hi"})]}
    url = f"{gemini_up.base_url}/models/gemini-fake:generateContent"
    missing = httpx2.post(url, json=body)
    assert missing.status_code == 403 and missing.json()["error"]["status"] == "PERMISSION_DENIED"
    wrong = httpx2.post(url, json=body, headers={"x-goog-api-key": "nope"})
    assert wrong.status_code == 400
    assert wrong.json()["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    unknown = httpx2.post(
        f"{gemini_up.base_url}/models/nope:generateContent", json=body, headers=GEMINI_HEADERS
    )
    assert unknown.status_code == 404 and unknown.json()["error"]["status"] == "NOT_FOUND"
