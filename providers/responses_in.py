"""OpenAI Responses API requests to Chat Completions, for the router's Responses door: pure.

Stateless: the whole conversation comes in ``input``, a string or items. Messages
(``user``, ``system``, ``developer``, ``assistant``; text, images, files) become chat
messages; ``function_call`` items become an assistant turn's ``tool_calls`` and
``function_call_output`` items ``tool`` messages; ``instructions`` becomes the first
system message; function tools, ``tool_choice``, ``parallel_tool_calls``,
``max_output_tokens``, ``temperature``, ``top_p``, ``text.format``, ``reasoning.effort``
and ``user`` (or ``safety_identifier``) are mapped. A stream asks for usage, which
``response.completed`` reports.

What needs state the router does not keep (``previous_response_id``, ``store: true``,
``conversation``, ``background``, stored ``prompt`` templates, ``item_reference``
items) and the built-in tools (web search, file search...) are 400s that say so; so is
a parameter this translation does not know, as OpenAI answers one. Serving hints that
change nothing in the answer (``service_tier``, ``prompt_cache_key``, ``include``...)
are listed in :attr:`ResponsesRequest.ignored`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from providers.base import InvalidBody

STATEFUL = {
    "previous_response_id": "previous_response_id",
    "conversation": "a conversation",
    "background": "background responses",
    "prompt": "stored prompt templates",
}
"""Parameters that need responses or prompts kept on the server."""

HINTS = frozenset(
    {
        "service_tier",
        "prompt_cache_key",
        "prompt_cache_retention",
        "prompt_cache_options",
        "include",
        "stream_options",
        "top_logprobs",
        "max_tool_calls",
        "context_management",
        "moderation",
        "access_programs",
        "background_options",
        "image",
    }
)
"""Parameters that tell OpenAI how to serve; the answer is the same without them."""

KNOWN = frozenset(
    {
        "model",
        "models",
        "input",
        "instructions",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "max_output_tokens",
        "temperature",
        "top_p",
        "stream",
        "store",
        "text",
        "reasoning",
        "user",
        "safety_identifier",
        "metadata",
        "truncation",
        *STATEFUL,
        *HINTS,
    }
)


_TOOL_FIELDS = ("name", "description", "parameters", "strict")
"""Function tool fields that have a chat counterpart."""


@dataclass(slots=True)
class ResponsesRequest:
    """A Responses API request as a chat body, with what the answer echoes back."""

    chat: dict[str, Any]
    echo: dict[str, Any]
    """The request's settings as a Response object repeats them."""
    ignored: list[str] = field(default_factory=list)


def _bad(message: str, param: str | None = None) -> InvalidBody:
    return InvalidBody(message, param)


def stateless(name: str) -> InvalidBody:
    """The 400 for a parameter that needs state the router does not keep."""
    what = STATEFUL.get(name, name)
    return _bad(
        f"{what} is not supported: modelrouter keeps no conversation state (every request "
        "is answered as with store: false). Send the whole conversation in 'input' instead.",
        name,
    )


def _part(part: Any, where: str) -> dict[str, Any]:
    """An input content part as a chat content part."""
    if not isinstance(part, dict):
        raise _bad(f"{where} must be an object.", "input")
    kind = part.get("type")
    if kind in ("input_text", "output_text"):
        return {"type": "text", "text": str(part.get("text", ""))}
    if kind == "refusal":
        return {"type": "text", "text": str(part.get("refusal", ""))}
    if kind == "input_image":
        url = part.get("image_url")
        if not isinstance(url, str):
            raise _bad(f"{where}: images by file_id need stored files; send image_url.", "input")
        image: dict[str, Any] = {"url": url}
        if part.get("detail") in ("low", "high", "auto"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file" and isinstance(part.get("file_data"), str):
        file = {"file_data": part["file_data"], "filename": part.get("filename") or "file"}
        return {"type": "file", "file": file}
    if kind == "input_file":
        raise _bad(f"{where}: files by file_id or file_url are not supported; send file_data.")
    raise _bad(f"{where}: content type {kind!r} is not supported.", "input")


def _content(content: Any, where: str) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _bad(f"{where} must be a string or an array.", "input")
    parts = [_part(p, f"{where}[{i}]") for i, p in enumerate(content)]
    if all(p["type"] == "text" for p in parts):
        return "".join(p["text"] for p in parts)
    return parts


def _output(output: Any, where: str) -> str:
    """A function call's output: a string, or parts whose text is joined."""
    if isinstance(output, str):
        return output
    content = _content(output, where)
    if isinstance(content, list):
        raise _bad(f"{where}: only text outputs are supported.", "input")
    return content


class _Turns:
    """Builds chat messages from input items, merging function calls into one turn."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def _assistant(self) -> dict[str, Any]:
        last = self.messages[-1] if self.messages else None
        if last is not None and last["role"] == "assistant":
            return last
        msg: dict[str, Any] = {"role": "assistant", "content": None}
        self.messages.append(msg)
        return msg

    def add(self, item: Any, where: str) -> None:
        if not isinstance(item, dict):
            raise _bad(f"{where} must be an object.", "input")
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            if role not in ("user", "system", "developer", "assistant"):
                raise _bad(f"{where}.role: {role!r} is not a message role.", "input")
            content = _content(item.get("content"), f"{where}.content")
            if role == "assistant" and self.messages and self.messages[-1]["role"] == role:
                prev = self.messages[-1]
                if prev.get("tool_calls"):
                    # Text after calls in one turn: chat has no order within a turn.
                    self.messages.append({"role": "assistant", "content": content})
                    return
            self.messages.append({"role": role, "content": content})
        elif kind == "function_call":
            msg = self._assistant()
            fn = {"name": item.get("name"), "arguments": str(item.get("arguments") or "{}")}
            call = {"id": item.get("call_id"), "type": "function", "function": fn}
            msg.setdefault("tool_calls", []).append(call)
        elif kind == "function_call_output":
            output = _output(item.get("output"), f"{where}.output")
            self.messages.append(
                {"role": "tool", "tool_call_id": item.get("call_id"), "content": output}
            )
        elif kind == "reasoning":
            return  # a model's own reasoning: another model answers without it
        elif kind == "item_reference":
            raise stateless("item_reference")
        else:
            raise _bad(
                f"{where}: {kind!r} items are not supported (the router runs function tools "
                "only, no built-in tools).",
                "input",
            )


def _tools(body: dict[str, Any], chat: dict[str, Any], ignored: list[str]) -> None:
    tools = body.get("tools")
    if not tools:
        return
    if not isinstance(tools, list):
        raise _bad("'tools' must be an array.", "tools")
    out = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or tool.get("type") != "function":
            kind = tool.get("type") if isinstance(tool, dict) else None
            raise _bad(
                f"tools[{i}]: {kind!r} tools are not supported; the router runs function "
                "tools only (no built-in tools such as web or file search).",
                "tools",
            )
        fn = {k: tool[k] for k in _TOOL_FIELDS if k in tool}
        ignored += [f"tools.{key}" for key in tool.keys() - _TOOL_FIELDS - {"type"}]
        if fn.get("strict") is None:
            fn.pop("strict", None)
        out.append({"type": "function", "function": fn})
    chat["tools"] = out
    choice = body.get("tool_choice")
    if choice in (None, "auto", "none", "required"):
        if choice is not None:
            chat["tool_choice"] = choice
    elif isinstance(choice, dict) and choice.get("type") == "function":
        chat["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
    else:
        raise _bad("tool_choice must be 'auto', 'none', 'required' or a function.", "tool_choice")
    if isinstance(body.get("parallel_tool_calls"), bool):
        chat["parallel_tool_calls"] = body["parallel_tool_calls"]


def _text_format(text: Any, chat: dict[str, Any], ignored: list[str]) -> None:
    if text is None:
        return
    if not isinstance(text, dict):
        raise _bad("'text' must be an object.", "text")
    ignored += [f"text.{key}" for key in text.keys() - {"format"}]
    fmt = text.get("format")
    if fmt is None or fmt.get("type") == "text":
        return
    if fmt.get("type") == "json_object":
        chat["response_format"] = {"type": "json_object"}
    elif fmt.get("type") == "json_schema":
        spec = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
        chat["response_format"] = {"type": "json_schema", "json_schema": spec}
    else:
        raise _bad(f"text.format type {fmt.get('type')!r} is not supported.", "text")


def _check(body: dict[str, Any]) -> None:
    for name in body:
        if name not in KNOWN:
            raise _bad(f"Unknown parameter: '{name}'.", name)
    for name in STATEFUL:
        if body.get(name) not in (None, False):
            raise stateless(name)
    if body.get("store") is True:
        raise _bad(
            "store: true is not supported: modelrouter keeps no responses (it is stateless). "
            "Send store: false, or leave it out.",
            "store",
        )
    if body.get("truncation") not in (None, "disabled"):
        raise _bad(
            "truncation 'auto' is not supported: the router never drops input.", "truncation"
        )
    if body.get("input") is None:
        raise _bad("Missing required parameter: 'input'.", "input")
    limit = body.get("max_output_tokens")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise _bad("'max_output_tokens' must be a positive integer.", "max_output_tokens")


def to_chat(body: dict[str, Any]) -> ResponsesRequest:
    """The Chat Completions body for a Responses API request (``body`` is not modified)."""
    _check(body)
    chat: dict[str, Any] = {"model": body.get("model")}
    if "models" in body:
        chat["models"] = body["models"]
    turns = _Turns()
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        turns.messages.append({"role": "system", "content": instructions})
    inputs = body["input"]
    if isinstance(inputs, str):
        turns.messages.append({"role": "user", "content": inputs})
    elif isinstance(inputs, list):
        for i, item in enumerate(inputs):
            turns.add(item, f"input[{i}]")
    else:
        raise _bad("'input' must be a string or an array of items.", "input")
    chat["messages"] = turns.messages
    if body.get("max_output_tokens") is not None:
        chat["max_tokens"] = body["max_output_tokens"]
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            chat[name] = body[name]
    ignored = [name for name in body if name in HINTS and body[name] is not None]
    _tools(body, chat, ignored)
    _text_format(body.get("text"), chat, ignored)
    reasoning = body.get("reasoning") or {}
    if reasoning.get("effort") is not None:
        chat["reasoning_effort"] = reasoning["effort"]
    ignored += [f"reasoning.{key}" for key in reasoning.keys() - {"effort"}]
    user = body.get("safety_identifier") or body.get("user")
    if isinstance(user, str):
        chat["user"] = user
    if body.get("stream") is True:
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    return ResponsesRequest(chat, _echo(body), sorted(set(ignored)))


def _echo(body: dict[str, Any]) -> dict[str, Any]:
    """The request settings a Response object repeats, with OpenAI's defaults."""
    return {
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "metadata": body.get("metadata") or {},
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": None,
        "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
        "store": False,
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "user": body.get("user"),
    }
