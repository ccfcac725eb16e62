"""Anthropic Messages API requests from OpenAI Chat Completions: pure, no I/O.

System and developer messages become ``system``; ``tool`` messages become
``tool_result`` blocks in the next user turn; images and PDF files become ``image``
and ``document`` blocks, and ``cache_control`` on a text part is kept so prompt
caching works; ``tools``/``tool_choice``/``parallel_tool_calls``, ``stop`` and ``user``
are mapped, and a JSON-schema ``response_format`` becomes ``output_config.format``
(``json_object`` has no equivalent and is dropped); ``max_tokens`` gets a default
because Anthropic requires one. The current request schema (anthropic SDK 2.x) has no
sampling parameters (``temperature``, ``top_p``, ``seed``, penalties) nor logprobs:
those are dropped, and ``n > 1`` is refused because one answer is all the API gives.
Error answers are classified here too; answers are translated in
:mod:`providers.anthropic_reply`.
"""

from __future__ import annotations

from typing import Any

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
)

ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
"""The HTTP status Anthropic documents for each error ``type``."""

_CONTEXT_MARKERS = (b"prompt is too long", b"exceed context limit", b"context window")
# A 400 that blames the account, not the request: another vendor can still answer.
_ACCOUNT_MARKERS = (b"credit balance is too low",)


def classify(status: int, body: bytes) -> Failure:
    """Failure class of an Anthropic error answer (529 overloaded is a server error)."""
    if status == 400:
        lowered = body[:4096].lower()
        if any(m in lowered for m in _ACCOUNT_MARKERS):
            return Failure.MISCONFIGURED
        if any(m in lowered for m in _CONTEXT_MARKERS):
            return Failure.CONTEXT_LENGTH
    return classify_status(status, body)


# ---- request ---------------------------------------------------------------------------


def _text_block(part: dict[str, Any], text: str) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": text}
    if isinstance(part.get("cache_control"), dict):
        block["cache_control"] = part["cache_control"]
    return block


def _part(part: Any) -> dict[str, Any] | None:
    """One OpenAI content part as an Anthropic block (None: nothing to send)."""
    if not isinstance(part, dict):
        raise client_error("content parts must be objects.")
    kind = part.get("type")
    if kind in ("text", "input_text", "refusal"):
        text = part.get("text", part.get("refusal"))
        return _text_block(part, text) if isinstance(text, str) and text else None
    if kind == "image_url":
        img = image_of(part)
        if img.url is not None:
            return {"type": "image", "source": {"type": "url", "url": img.url}}
        source = {"type": "base64", "media_type": img.media_type, "data": img.data}
        return {"type": "image", "source": source}
    if kind == "file":
        data = (part.get("file") or {}).get("file_data")
        if isinstance(data, str) and data.startswith("data:application/pdf;base64,"):
            source = {"type": "base64", "media_type": "application/pdf", "data": data[28:]}
            return {"type": "document", "source": source}
    raise client_error(f"content part type {kind!r} is not supported by Anthropic.")


def _blocks(content: Any) -> list[dict[str, Any]]:
    return content_parts(content, _part, lambda text: {"type": "text", "text": text})


def _tool_use(call: Any) -> dict[str, Any]:
    name, args = function_call(call)
    return {"type": "tool_use", "id": call.get("id"), "name": name, "input": args}


def _tool_result(msg: dict[str, Any]) -> dict[str, Any]:
    content = msg.get("content")
    result: dict[str, Any] = {"type": "tool_result", "tool_use_id": msg.get("tool_call_id")}
    if isinstance(content, str):
        if content:
            result["content"] = content
    else:
        blocks = _blocks(content)
        if blocks:
            result["content"] = blocks
    return result


def _messages(messages: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """OpenAI messages → (system blocks, Anthropic turns, same-role turns merged)."""
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for msg in messages:
        if not isinstance(msg, dict):
            raise client_error("messages must be objects.")
        role = msg.get("role")
        if role in ("system", "developer"):
            system.extend(b for b in _blocks(msg.get("content")) if b["type"] == "text")
            continue
        if role == "user":
            role, blocks = "user", _blocks(msg.get("content"))
        elif role == "assistant":
            blocks = _blocks(msg.get("content"))
            blocks += [_tool_use(c) for c in msg.get("tool_calls") or ()]
        elif role == "tool":
            role, blocks = "user", [_tool_result(msg)]
        else:
            raise client_error(f"message role {role!r} is not supported by Anthropic.")
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        # Anthropic wants the tool results first in their user turn, other blocks after.
        if turn["role"] == "user":
            turn["content"].sort(key=lambda b: b["type"] != "tool_result")
    return system, turns


def _tools(body: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    tools: list[dict[str, Any]] = []
    for fn in function_tools(body, "Anthropic"):
        schema = fn.get("parameters") or {"type": "object", "properties": {}}
        out: dict[str, Any] = {"name": fn.get("name"), "input_schema": schema}
        if fn.get("description"):
            out["description"] = fn["description"]
        if isinstance(fn.get("strict"), bool):
            out["strict"] = fn["strict"]
        tools.append(out)
    if not tools:
        return [], None
    choice = body.get("tool_choice")
    mapped: dict[str, Any]
    if choice in (None, "auto"):
        mapped = {"type": "auto"}
    elif choice == "none":
        return tools, {"type": "none"}
    elif choice == "required":
        mapped = {"type": "any"}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        mapped = {"type": "tool", "name": choice["function"].get("name")}
    else:
        raise client_error("tool_choice must be 'auto', 'none', 'required' or a function.")
    if body.get("parallel_tool_calls") is False:
        mapped["disable_parallel_tool_use"] = True
    return tools, mapped


def to_anthropic(
    body: dict[str, Any], model: str, *, default_max_tokens: int, stream: bool
) -> dict[str, Any]:
    """The Messages API body for an OpenAI chat request (``body`` is not modified)."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise client_error("'messages' must be an array.")
    n = body.get("n")
    if n not in (None, 1):
        raise client_error("Anthropic returns one choice per request; 'n' must be 1.")
    system, turns = _messages(messages)
    out: dict[str, Any] = {
        "model": model,
        "messages": turns,
        "max_tokens": max_tokens_of(body) or default_max_tokens,
    }
    if system:
        out["system"] = system
    if stop := stop_list(body):
        out["stop_sequences"] = stop
    tools, choice = _tools(body)
    if tools:
        out["tools"] = tools
        if choice is not None:
            out["tool_choice"] = choice
    fmt = json_schema_format(body)
    if fmt is not None and fmt[0] == "json_schema":
        out["output_config"] = {"format": {"type": "json_schema", "schema": fmt[1]}}
    if isinstance(body.get("user"), str):
        out["metadata"] = {"user_id": body["user"]}
    if stream:
        out["stream"] = True
    return out
