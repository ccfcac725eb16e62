"""Anthropic Messages API requests to Chat Completions, for the router's Messages door: pure.

The inverse of :mod:`providers.anthropic_wire`. ``system`` becomes a system message
and the turns become chat messages (:mod:`providers.anthropic_turns`: tool use and
results, images, documents); custom tools become function tools; ``tool_choice``,
``stop_sequences``, ``temperature``, ``top_p``, ``metadata.user_id`` and an
``output_config`` JSON schema are mapped; a stream asks for usage, which Anthropic's
stream always reports.

Nothing is dropped unnoticed. What only tells Anthropic how to serve (``thinking``,
``top_k``, ``cache_control``, ``service_tier``...) is listed in
:attr:`Translated.ignored` (the door reports it in a header when a model of another
vendor answered). What another vendor cannot do at all (Anthropic's server tools and
their result blocks, files by id) and top-level fields this translation does not know
make the request :attr:`Translated.unfit` for models that need the translation: only
Anthropic models are tried then, and they take the body as sent (so Anthropic itself
accepts a field newer than this module, or refuses an unknown one with its own 400).
"""

from __future__ import annotations

from typing import Any

import orjson

from providers.anthropic_turns import Translated, Turns, bad, text_of_blocks

__all__ = ["FIELDS", "HINTS", "Translated", "estimate_tokens", "to_chat"]

FIELDS = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "system",
        "stop_sequences",
        "stream",
        "temperature",
        "top_p",
        "top_k",
        "tools",
        "tool_choice",
        "metadata",
        "thinking",
        "output_config",
        "service_tier",
        "cache_control",
        "container",
        "context_management",
        "diagnostics",
        "inference_geo",
        "mcp_servers",
        "speed",
        "user_profile_id",
        "workspace_id",
        "models",
    }
)
"""The top-level fields this translation knows: the Messages API's (current, beta,
and older ones clients still send) and the router's own ``models`` (an ad-hoc fallback
list, as on the chat door)."""

HINTS = frozenset(
    {
        "top_k",
        "thinking",
        "service_tier",
        "cache_control",
        "container",
        "context_management",
        "diagnostics",
        "inference_geo",
        "speed",
        "user_profile_id",
        "workspace_id",
    }
)
"""Fields that tell Anthropic how to serve; another vendor answers the same request
without them."""

_NEEDS_ANTHROPIC = frozenset({"mcp_servers"})
_TOOL_FIELDS = frozenset({"name", "input_schema", "description", "strict", "type"})
"""Custom tool fields that have a chat counterpart; the others are serving hints."""


def _tools(body: dict[str, Any], out: Translated) -> None:
    tools = body.get("tools")
    if tools is None:
        return
    if not isinstance(tools, list):
        raise bad("tools: Input should be a valid list", "tools")
    functions = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise bad(f"tools.{i}: Input should be an object", "tools")
        if tool.get("type") not in (None, "custom"):
            out.unfit.append(f"server tool {tool.get('type')!r}")
            continue
        if not isinstance(tool.get("name"), str) or "input_schema" not in tool:
            raise bad(f"tools.{i}: 'name' and 'input_schema' are required", "tools")
        for key in tool.keys() - _TOOL_FIELDS:
            out.ignored.append(key if key == "cache_control" else f"tools.{key}")
        fn: dict[str, Any] = {"name": tool["name"], "parameters": tool["input_schema"]}
        if isinstance(tool.get("description"), str):
            fn["description"] = tool["description"]
        if isinstance(tool.get("strict"), bool):
            fn["strict"] = tool["strict"]
        functions.append({"type": "function", "function": fn})
    if functions:
        out.chat["tools"] = functions
    _tool_choice(body.get("tool_choice"), out)


def _tool_choice(choice: Any, out: Translated) -> None:
    if choice is None:
        return
    if not isinstance(choice, dict):
        raise bad("tool_choice: Input should be an object", "tool_choice")
    kind = choice.get("type")
    if kind == "auto":
        mapped: Any = "auto"
    elif kind == "any":
        mapped = "required"
    elif kind == "none":
        mapped = "none"
    elif kind == "tool" and isinstance(choice.get("name"), str):
        mapped = {"type": "function", "function": {"name": choice["name"]}}
    else:
        raise bad("tool_choice: type must be 'auto', 'any', 'tool' or 'none'", "tool_choice")
    if "tools" in out.chat:
        out.chat["tool_choice"] = mapped
        if choice.get("disable_parallel_tool_use") is True:
            out.chat["parallel_tool_calls"] = False


def _output_config(config: Any, out: Translated) -> None:
    if not isinstance(config, dict):
        raise bad("output_config: Input should be an object", "output_config")
    fmt = config.get("format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        schema = fmt.get("schema") if isinstance(fmt.get("schema"), dict) else {"type": "object"}
        spec = {"name": "output", "schema": schema}
        out.chat["response_format"] = {"type": "json_schema", "json_schema": spec}
    elif fmt is not None:
        raise bad("output_config.format: type must be 'json_schema'", "output_config")
    if config.keys() - {"format"}:
        out.ignored.append("output_config.effort")


def _check(body: dict[str, Any]) -> None:
    """What Anthropic refuses before it looks at the content."""
    max_tokens = body.get("max_tokens")
    if max_tokens is None:
        raise bad("max_tokens: Field required", "max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 0:
        raise bad("max_tokens: Input should be a non-negative integer", "max_tokens")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad("messages: at least one message is required", "messages")
    stops = body.get("stop_sequences")
    if stops is not None and not (
        isinstance(stops, list) and all(isinstance(s, str) for s in stops)
    ):
        raise bad("stop_sequences: Input should be a list of strings", "stop_sequences")


def to_chat(body: dict[str, Any]) -> Translated:
    """The Chat Completions body for a Messages API request (``body`` is not modified)."""
    _check(body)
    out = Translated({"model": body.get("model")})
    chat = out.chat
    if "models" in body:
        chat["models"] = body["models"]
    turns = Turns(out)
    if (system := body.get("system")) is not None:
        if isinstance(system, list):
            for block in system:
                if isinstance(block, dict) and "cache_control" in block:
                    out.ignored.append("cache_control")
        turns.messages.append({"role": "system", "content": text_of_blocks(system, "system")})
    for i, msg in enumerate(body["messages"]):
        where = f"messages.{i}"
        if not isinstance(msg, dict):
            raise bad(f"{where}: Input should be an object", "messages")
        out.unfit += [f"message field {key!r}" for key in msg.keys() - {"role", "content"}]
        role = msg.get("role")
        if role == "user":
            turns.user(msg.get("content"), f"{where}.content")
        elif role == "assistant":
            turns.assistant(msg.get("content"), f"{where}.content")
        else:
            raise bad(f"{where}.role: Input should be 'user' or 'assistant'", "messages")
    chat["messages"] = turns.messages
    if body["max_tokens"] == 0:
        # Zero warms Anthropic's prompt cache without an answer: nothing to others.
        out.unfit.append("max_tokens 0 (cache warming)")
    else:
        chat["max_tokens"] = body["max_tokens"]
    if body.get("stop_sequences"):
        chat["stop"] = body["stop_sequences"]
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            chat[name] = body[name]
    _tools(body, out)
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
        chat["user"] = metadata["user_id"]
    if body.get("output_config") is not None:
        _output_config(body["output_config"], out)
    if body.get("stream") is True:
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    elif body.get("stream") not in (None, False):
        raise bad("stream: Input should be a valid boolean", "stream")
    out.ignored += [name for name in body if name in HINTS and body[name] is not None]
    out.unfit += [f"field {name!r}" for name in body if name in _NEEDS_ANTHROPIC]
    out.unfit += [f"field {name!r}" for name in body if name not in FIELDS]
    out.ignored = sorted(set(out.ignored))
    return out


def estimate_tokens(body: dict[str, Any]) -> int:
    """A rough input token count for ``count_tokens``: four characters a token.

    Text of the system prompt, messages and tool definitions is counted; an image
    counts as a fixed 1,600 tokens (a large image, in Anthropic's own estimate).
    """
    _check_count(body)
    chars = len(text_of_blocks(body.get("system") or "", "system"))
    images = 0
    for msg in body["messages"]:
        content = msg.get("content") if isinstance(msg, dict) else None
        chars, images = _count(content, chars, images)
    if body.get("tools"):
        chars += len(orjson.dumps(body["tools"]))
    return max(1, chars // 4 + images * 1600)


def _check_count(body: dict[str, Any]) -> None:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad("messages: at least one message is required", "messages")
    if not isinstance(body.get("model"), str):
        raise bad("model: Field required", "model")


def _count(content: Any, chars: int, images: int) -> tuple[int, int]:
    if isinstance(content, str):
        return chars + len(content), images
    for block in content if isinstance(content, list) else ():
        if not isinstance(block, dict):
            continue
        if block.get("type") in ("image", "document"):
            images += 1
        elif block.get("type") == "tool_use":
            chars += len(orjson.dumps(block.get("input") or {}))
        elif block.get("type") == "tool_result":
            chars, images = _count(block.get("content"), chars, images)
        elif isinstance(block.get("text"), str):
            chars += len(block["text"])
    return chars, images
