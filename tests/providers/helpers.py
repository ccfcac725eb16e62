"""Reading OpenAI chunk streams back, as a client would."""

from __future__ import annotations

from typing import Any

import orjson

HI: list[Any] = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
"""A system prompt and one user turn."""
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
"""One OpenAI function tool."""


def chunks_of(events: list[bytes]) -> list[dict[str, Any]]:
    """Decode ``data: {...}`` events; every event must be one, except the final ``[DONE]``."""
    out = []
    for event in events:
        assert event.startswith(b"data: ") and event.endswith(b"\n\n"), event
        if event == b"data: [DONE]\n\n":
            continue
        out.append(orjson.loads(event[6:]))
    return out


def joined_text(chunks: list[dict[str, Any]], index: int = 0) -> str:
    """The content of choice ``index``, assembled from its deltas."""
    return "".join(
        c["delta"].get("content") or ""
        for chunk in chunks
        for c in chunk["choices"]
        if c["index"] == index
    )


def joined_tool_calls(chunks: list[dict[str, Any]], index: int = 0) -> list[dict[str, Any]]:
    """Tool calls of choice ``index`` assembled from deltas: ``[{id, name, arguments}]``."""
    calls: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        for c in chunk["choices"]:
            if c["index"] != index:
                continue
            for tc in c["delta"].get("tool_calls") or ():
                call = calls.setdefault(tc["index"], {"id": None, "name": None, "arguments": ""})
                call["id"] = tc.get("id") or call["id"]
                fn = tc.get("function") or {}
                call["name"] = fn.get("name") or call["name"]
                call["arguments"] += fn.get("arguments") or ""
    return [calls[i] for i in sorted(calls)]
