"""Gemini ``generateContent`` requests from OpenAI Chat Completions: pure, no I/O.

Messages become ``contents`` with roles ``user`` and ``model``; system and developer
messages become ``systemInstruction``; images, audio and files become ``inlineData``
(or ``fileData`` for remote URLs); assistant ``tool_calls`` and ``tool`` messages
become ``functionCall`` and ``functionResponse`` parts (the function name is looked
up from the call, since an OpenAI tool message carries only its id, and a call's
``extra_content.google.thought_signature`` goes back as its ``thoughtSignature``);
``tools`` become ``functionDeclarations`` with their JSON schema as given; sampling,
stop, ``n`` and ``response_format`` go to ``generationConfig``. Error answers are
classified here too. Answers are translated in :mod:`providers.gemini_reply`.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from providers.base import Failure
from providers.failures import classify_status
from providers.openai_shapes import (
    client_error,
    content_parts,
    function_call,
    function_tools,
    image_of,
    json_schema_format,
    max_tokens_of,
    stop_list,
    text_of,
)

_CONTEXT_MARKERS = (b"exceeds the maximum number of tokens", b"context window")
_KEY_MARKERS = (b"api_key_invalid", b"api key not valid", b"api key expired")


def classify(status: int, body: bytes) -> Failure:
    """Failure class of a Gemini error (a bad key is a 400 there, not a 401)."""
    if status == 400:
        lowered = body[:4096].lower()
        if any(m in lowered for m in _KEY_MARKERS) or b"failed_precondition" in lowered:
            # FAILED_PRECONDITION: billing or region problems, not the request's fault.
            return Failure.MISCONFIGURED
        if any(m in lowered for m in _CONTEXT_MARKERS):
            return Failure.CONTEXT_LENGTH
    return classify_status(status, body)


_DELAY = re.compile(r"^(\d+(?:\.\d+)?)s$")


def retry_delay(body: bytes | None) -> float | None:
    """Seconds from a ``google.rpc.RetryInfo`` detail of an error body, if any."""
    try:
        details = orjson.loads(body or b"{}").get("error", {}).get("details") or []
    except (orjson.JSONDecodeError, AttributeError):
        return None
    for d in details if isinstance(details, list) else ():
        if isinstance(d, dict) and str(d.get("@type", "")).endswith("google.rpc.RetryInfo"):
            m = _DELAY.match(str(d.get("retryDelay", "")))
            if m:
                return float(m.group(1))
    return None


# ---- request ---------------------------------------------------------------------------


def _media(mime: str | None, data: str | None, url: str | None) -> dict[str, Any]:
    if url is not None:
        ref: dict[str, Any] = {"fileUri": url}
        if mime:
            ref["mimeType"] = mime
        return {"fileData": ref}
    return {"inlineData": {"mimeType": mime or "application/octet-stream", "data": data}}


def _part(part: Any) -> dict[str, Any] | None:
    if not isinstance(part, dict):
        raise client_error("content parts must be objects.")
    kind = part.get("type")
    if kind in ("text", "input_text", "refusal"):
        text = part.get("text", part.get("refusal"))
        return {"text": text} if isinstance(text, str) and text else None
    if kind == "image_url":
        img = image_of(part)
        return _media(img.media_type, img.data, img.url)
    if kind == "input_audio":
        audio = part.get("input_audio") or {}
        return _media(f"audio/{audio.get('format', 'wav')}", audio.get("data"), None)
    if kind == "file":
        data = (part.get("file") or {}).get("file_data")
        if isinstance(data, str) and data.startswith("data:") and ";base64," in data:
            head, _, payload = data[5:].partition(";base64,")
            return _media(head, payload, None)
    raise client_error(f"content part type {kind!r} is not supported by Gemini.")


def _parts(content: Any) -> list[dict[str, Any]]:
    return content_parts(content, _part, lambda text: {"text": text})


def _call_part(call: Any) -> dict[str, Any]:
    name, args = function_call(call)
    part: dict[str, Any] = {"functionCall": {"name": name, "args": args}}
    google = (call.get("extra_content") or {}).get("google") or {}
    if isinstance(google, dict) and google.get("thought_signature"):
        part["thoughtSignature"] = google["thought_signature"]
    return part


def _response_part(msg: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    call_id = msg.get("tool_call_id")
    name = names.get(call_id) if isinstance(call_id, str) else None
    if name is None:
        raise client_error(f"tool message refers to an unknown tool_call_id {call_id!r}.")
    text = text_of(msg.get("content"))
    try:
        value: Any = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = text
    # functionResponse.response must be an object; "output" is Gemini's documented key.
    response = value if isinstance(value, dict) else {"output": value}
    return {"functionResponse": {"name": name, "response": response}}


def _contents(messages: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """OpenAI messages → (system parts, contents); function responses get their own turn."""
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    for msg in messages:
        if not isinstance(msg, dict):
            raise client_error("messages must be objects.")
        role = msg.get("role")
        if role in ("system", "developer"):
            system.extend(p for p in _parts(msg.get("content")) if "text" in p)
            continue
        if role == "user":
            role, parts = "user", _parts(msg.get("content"))
        elif role == "assistant":
            calls = msg.get("tool_calls") or []
            for c in calls:
                if isinstance(c, dict) and isinstance(c.get("function"), dict):
                    names[str(c.get("id"))] = str(c["function"].get("name"))
            role, parts = "model", _parts(msg.get("content")) + [_call_part(c) for c in calls]
        elif role == "tool":
            role, parts = "user", [_response_part(msg, names)]
        else:
            raise client_error(f"message role {role!r} is not supported by Gemini.")
        if not parts:
            continue
        prev = contents[-1] if contents else None
        is_response = "functionResponse" in parts[0]
        if (
            prev is not None
            and prev["role"] == role
            and ("functionResponse" in prev["parts"][0]) == is_response
        ):
            prev["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    return system, contents


def _tools(body: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    decls: list[dict[str, Any]] = []
    for fn in function_tools(body, "Gemini"):
        decl: dict[str, Any] = {"name": fn.get("name")}
        if fn.get("description"):
            decl["description"] = fn["description"]
        if fn.get("parameters"):
            # JSON Schema as given: ``parameters`` would take only an OpenAPI subset.
            decl["parametersJsonSchema"] = fn["parameters"]
        decls.append(decl)
    if not decls:
        return [], None
    choice = body.get("tool_choice")
    if choice in (None, "auto"):
        return [{"functionDeclarations": decls}], None
    config: dict[str, Any]
    if choice == "none":
        config = {"mode": "NONE"}
    elif choice == "required":
        config = {"mode": "ANY"}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        config = {"mode": "ANY", "allowedFunctionNames": [choice["function"].get("name")]}
    else:
        raise client_error("tool_choice must be 'auto', 'none', 'required' or a function.")
    return [{"functionDeclarations": decls}], {"functionCallingConfig": config}


_SAMPLING = {
    "temperature": "temperature",
    "top_p": "topP",
    "top_k": "topK",
    "presence_penalty": "presencePenalty",
    "frequency_penalty": "frequencyPenalty",
    "seed": "seed",
    "n": "candidateCount",
}


def _generation_config(body: dict[str, Any]) -> dict[str, Any]:
    config = {g: body[o] for o, g in _SAMPLING.items() if body.get(o) is not None}
    if (limit := max_tokens_of(body)) is not None:
        config["maxOutputTokens"] = limit
    if stop := stop_list(body):
        config["stopSequences"] = stop
    fmt = json_schema_format(body)
    if fmt is not None:
        config["responseMimeType"] = "application/json"
        if fmt[1] is not None:
            config["responseJsonSchema"] = fmt[1]
    return config


def to_gemini(
    body: dict[str, Any], *, safety_settings: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The ``generateContent`` body for an OpenAI chat request (``body`` is not modified)."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise client_error("'messages' must be an array.")
    system, contents = _contents(messages)
    out: dict[str, Any] = {"contents": contents}
    if system:
        out["systemInstruction"] = {"parts": system}
    tools, tool_config = _tools(body)
    if tools:
        out["tools"] = tools
    if tool_config:
        out["toolConfig"] = tool_config
    if config := _generation_config(body):
        out["generationConfig"] = config
    if safety_settings:
        out["safetySettings"] = safety_settings
    return out


def to_gemini_embed(texts: list[str], model: str, dimensions: int | None) -> dict[str, Any]:
    """The ``batchEmbedContents`` body: one request per text (``model``: ``models/...``)."""
    requests = []
    for text in texts:
        one: dict[str, Any] = {"model": model, "content": {"parts": [{"text": text}]}}
        if dimensions is not None:
            one["outputDimensionality"] = dimensions
        requests.append(one)
    return {"requests": requests}
