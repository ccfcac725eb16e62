"""The Anthropic Messages API request schema, written out as strict checks.

The anthropic SDK's request TypedDicts describe the fields but enforce nothing, so
the rules the real API applies are spelled out here: unknown fields, roles, content
block types and their fields, image sources, tool definitions and ``tool_choice``,
and the pairing of ``tool_use`` with ``tool_result`` across turns. Messages follow
the API's wording, so a test can match on them.
"""

from __future__ import annotations

import re
from typing import Any


class Invalid(Exception):
    """A request that the real API would answer with 400 invalid_request_error."""


TOP_LEVEL = frozenset(
    [
        "model",
        "messages",
        "max_tokens",
        "cache_control",
        "container",
        "diagnostics",
        "inference_geo",
        "metadata",
        "output_config",
        "service_tier",
        "speed",
        "stop_sequences",
        "stream",
        "system",
        "thinking",
        "tool_choice",
        "tools",
        "user_profile_id",
        "workspace_id",
    ]
)
"""Every top-level field of the Messages API request (anthropic SDK 2.x)."""

BLOCK_FIELDS: dict[str, tuple[set[str], set[str]]] = {
    "text": ({"type", "text"}, {"cache_control", "citations"}),
    "image": ({"type", "source"}, {"cache_control"}),
    "document": ({"type", "source"}, {"cache_control", "citations", "context", "title"}),
    "tool_use": ({"type", "id", "name", "input"}, {"cache_control"}),
    "tool_result": ({"type", "tool_use_id"}, {"cache_control", "content", "is_error"}),
    "thinking": ({"type", "thinking", "signature"}, set()),
    "redacted_thinking": ({"type", "data"}, set()),
}
"""Content block types this fake knows: (required fields, optional fields)."""

ROLE_BLOCKS = {
    "user": {"text", "image", "document", "tool_result"},
    "assistant": {"text", "tool_use", "thinking", "redacted_thinking"},
    "system": {"text"},
}
IMAGE_TYPES = {"image/jpeg", "image/png", "image/gif", "image/webp"}
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
TOOL_FIELDS = frozenset(
    [
        "name",
        "input_schema",
        "description",
        "cache_control",
        "strict",
        "type",
        "input_examples",
        "defer_loading",
        "eager_input_streaming",
        "allowed_callers",
    ]
)


def _obj(
    value: Any, path: str, required: set[str], optional: set[str] | frozenset[str]
) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Invalid(f"{path}: Input should be a valid dictionary")
    for key in sorted(required - value.keys()):
        raise Invalid(f"{path}.{key}: Field required".lstrip("."))
    for key in value:
        if key not in required | optional:
            raise Invalid(f"{path}.{key}: Extra inputs are not permitted".lstrip("."))
    return value


def _str(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise Invalid(f"{path}: Input should be a valid string")
    return value


def _source(src: Any, path: str, block: str) -> None:
    kind = src.get("type") if isinstance(src, dict) else None
    if kind == "base64":
        _obj(src, path, {"type", "media_type", "data"}, set())
        allowed = IMAGE_TYPES if block == "image" else {"application/pdf"}
        if src["media_type"] not in allowed:
            raise Invalid(f"{path}.media_type: Input should be one of {sorted(allowed)}")
        _str(src["data"], f"{path}.data")
    elif kind == "url":
        _str(_obj(src, path, {"type", "url"}, set())["url"], f"{path}.url")
    elif kind == "text" and block == "document":
        _obj(src, path, {"type", "media_type", "data"}, set())
    else:
        raise Invalid(f"{path}.type: Input tag {kind!r} does not match any of the expected tags")


def _block(block: Any, path: str, role: str) -> dict[str, Any]:
    kind = block.get("type") if isinstance(block, dict) else None
    if kind not in BLOCK_FIELDS:
        tags = ", ".join(f"'{t}'" for t in BLOCK_FIELDS)
        raise Invalid(
            f"{path}: Input tag {kind!r} found using 'type' does not match any of the "
            f"expected tags: {tags}"
        )
    if kind not in ROLE_BLOCKS[role]:
        raise Invalid(f"{path}: {kind} blocks are not allowed in {role} messages")
    required, optional = BLOCK_FIELDS[kind]
    _obj(block, path, required, optional)
    if kind == "text" and not _str(block["text"], f"{path}.text"):
        raise Invalid("messages: text content blocks must be non-empty")
    if kind in ("image", "document"):
        _source(block["source"], f"{path}.source", kind)
    if kind == "tool_use":
        _str(block["id"], f"{path}.id")
        _str(block["name"], f"{path}.name")
        if not isinstance(block["input"], dict):
            raise Invalid(f"{path}.input: Input should be a valid dictionary")
    if kind == "tool_result":
        _str(block["tool_use_id"], f"{path}.tool_use_id")
        content = block.get("content")
        if isinstance(content, list):
            for i, inner in enumerate(content):
                _block(inner, f"{path}.content.{i}", "user")
                if inner["type"] == "tool_result":
                    raise Invalid(f"{path}.content.{i}: tool_result cannot be nested")
        elif content is not None:
            _str(content, f"{path}.content")
    return block


def _content(content: Any, path: str, role: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise Invalid(f"{path}: Input should be a valid string or list")
    return [_block(b, f"{path}.{i}", role) for i, b in enumerate(content)]


def _check_tool_pairs(turns: list[tuple[int, str, list[dict[str, Any]]]]) -> None:
    """Each tool_use answered in the next turn; each tool_result answering the previous."""
    for t, (i, role, blocks) in enumerate(turns):
        prev_ids = (
            {b["id"] for b in turns[t - 1][2] if b["type"] == "tool_use"}
            if t > 0 and turns[t - 1][1] == "assistant"
            else set()
        )
        seen_other = False
        for j, b in enumerate(blocks):
            if b["type"] != "tool_result":
                seen_other = True
                continue
            if b["tool_use_id"] not in prev_ids:
                raise Invalid(
                    f"messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` "
                    f"blocks: {b['tool_use_id']}. Each `tool_result` block must have a "
                    "corresponding `tool_use` block in the previous message."
                )
            if seen_other:
                raise Invalid(f"messages.{i}: `tool_result` blocks must come first in the content")
        if role == "assistant" and t + 1 < len(turns):
            uses = [b["id"] for b in blocks if b["type"] == "tool_use"]
            answered = {b["tool_use_id"] for b in turns[t + 1][2] if b["type"] == "tool_result"}
            missing = [u for u in uses if u not in answered]
            if missing:
                raise Invalid(
                    f"messages.{i}: `tool_use` ids were found without `tool_result` blocks "
                    f"immediately after: {', '.join(missing)}. Each `tool_use` block must have "
                    "a corresponding `tool_result` block in the next message."
                )


def _messages(messages: Any) -> None:
    if not isinstance(messages, list) or not messages:
        raise Invalid("messages: at least one message is required")
    turns: list[tuple[int, str, list[dict[str, Any]]]] = []
    for i, msg in enumerate(messages):
        _obj(msg, f"messages.{i}", {"role", "content"}, set())
        role = msg["role"]
        if role not in ROLE_BLOCKS:
            raise Invalid(f"messages.{i}.role: Input should be 'user', 'assistant' or 'system'")
        blocks = _content(msg["content"], f"messages.{i}.content", role)
        if not blocks and not (role == "assistant" and i == len(messages) - 1):
            raise Invalid(
                f"messages.{i}: all messages must have non-empty content except for the "
                "optional final assistant message"
            )
        if role == "system":
            continue
        # The API combines consecutive turns of one role before pairing tool blocks.
        if turns and turns[-1][1] == role:
            turns[-1][2].extend(blocks)
        else:
            turns.append((i, role, list(blocks)))
    _check_tool_pairs(turns)


def _tools(body: dict[str, Any]) -> None:
    tools = body.get("tools")
    names: list[str] = []
    if tools is not None:
        if not isinstance(tools, list):
            raise Invalid("tools: Input should be a valid list")
        for i, tool in enumerate(tools):
            _obj(tool, f"tools.{i}", {"name", "input_schema"}, TOOL_FIELDS)
            if not TOOL_NAME.match(_str(tool["name"], f"tools.{i}.name")):
                raise Invalid(f"tools.{i}.name: String should match pattern '{TOOL_NAME.pattern}'")
            schema = tool["input_schema"]
            if not isinstance(schema, dict) or schema.get("type") != "object":
                raise Invalid(f"tools.{i}.input_schema.type: Input should be 'object'")
            names.append(tool["name"])
        if len(set(names)) != len(names):
            raise Invalid("tools: Tool names must be unique.")
    choice = body.get("tool_choice")
    if choice is None:
        return
    kind = choice.get("type") if isinstance(choice, dict) else None
    fields = {"auto": set(), "any": set(), "tool": {"name"}, "none": set()}
    if kind not in fields:
        raise Invalid(f"tool_choice.type: Input tag {kind!r} does not match any expected tags")
    optional = set() if kind == "none" else {"disable_parallel_tool_use"}
    _obj(choice, "tool_choice", {"type"} | fields[kind], optional)
    if kind == "tool" and choice["name"] not in names:
        raise Invalid(f"tool_choice.name: tool {choice['name']!r} is not in tools")


def validate(body: Any) -> None:
    """Raise :class:`Invalid` if ``body`` is not a valid Messages API request."""
    if not isinstance(body, dict):
        raise Invalid("request body must be a JSON object")
    _obj(body, "", {"model", "messages", "max_tokens"}, TOP_LEVEL)
    _str(body["model"], "model")
    mt = body["max_tokens"]
    if not isinstance(mt, int) or isinstance(mt, bool) or mt < 0:
        raise Invalid("max_tokens: Input should be a valid integer greater than or equal to 0")
    system = body.get("system")
    if isinstance(system, list):
        for i, b in enumerate(system):
            _block(b, f"system.{i}", "system")
    elif system is not None:
        _str(system, "system")
    stops = body.get("stop_sequences")
    if stops is not None and not (
        isinstance(stops, list) and all(isinstance(s, str) for s in stops)
    ):
        raise Invalid("stop_sequences: Input should be a valid list of strings")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise Invalid("stream: Input should be a valid boolean")
    if "metadata" in body:
        _obj(body["metadata"], "metadata", set(), {"user_id"})
    if "output_config" in body:
        cfg = _obj(body["output_config"], "output_config", set(), {"effort", "format"})
        if cfg.get("format") is not None:
            fmt = _obj(cfg["format"], "output_config.format", {"type", "schema"}, set())
            if fmt["type"] != "json_schema" or not isinstance(fmt["schema"], dict):
                raise Invalid("output_config.format: expected a json_schema format")
    _messages(body["messages"])
    _tools(body)
