"""Chat Completions answers as OpenAI Responses API answers, for the Responses door: pure.

A ``chat.completion`` becomes a ``response`` object (:func:`to_response`): its text a
``message`` output item, its tool calls ``function_call`` items whose ``call_id`` is
the chat call id (so the client's ``function_call_output`` finds its call again).
A chunk stream becomes the Responses API's typed events (:class:`ResponsesShape`),
each with its ``sequence_number``: ``response.created``, ``response.in_progress``,
then per output item ``response.output_item.added``, its content events
(``response.content_part.added``, ``response.output_text.delta`` ... ``.done``,
``response.content_part.done``; or ``response.function_call_arguments.delta`` ...
``.done``) and ``response.output_item.done``, and at the end ``response.completed``
(``response.incomplete`` when the answer hit its token limit or a filter). A stream
that fails after it began ends with ``response.failed``, never with a clean end.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson

from providers.openai_shapes import malformed
from providers.sse import DONE, named_event, parse_sse

INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}
"""Chat ``finish_reason`` values that leave a response ``incomplete``, and why."""


def new_id(prefix: str) -> str:
    """An id in OpenAI's style (``resp_...``, ``msg_...``, ``fc_...``)."""
    return f"{prefix}_{uuid.uuid4().hex}"


def usage_of(usage: dict[str, Any] | None) -> dict[str, Any]:
    """Chat usage → Responses usage."""
    usage = usage or {}
    prompt = int(usage.get("prompt_tokens") or 0)
    output = int(usage.get("completion_tokens") or 0)
    details = usage.get("prompt_tokens_details") or {}
    reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens")
    return {
        "input_tokens": prompt,
        "input_tokens_details": {
            "cached_tokens": int(details.get("cached_tokens") or 0),
            "cache_write_tokens": int(details.get("cache_creation_tokens") or 0),
        },
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": int(reasoning or 0)},
        "total_tokens": int(usage.get("total_tokens") or prompt + output),
    }


def response_object(
    rid: str,
    created: int,
    model: str,
    echo: dict[str, Any],
    output: list[dict[str, Any]],
    *,
    status: str,
    usage: dict[str, Any] | None = None,
    finish: str | None = None,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A whole ``response`` object (``echo``: the request settings it repeats)."""
    reason = INCOMPLETE.get(str(finish))
    if status == "completed" and reason is not None:
        status = "incomplete"
    return {
        "id": rid,
        "object": "response",
        "created_at": created,
        "status": status,
        "error": error,
        "incomplete_details": {"reason": reason} if status == "incomplete" else None,
        "model": model,
        "output": output,
        **echo,
        "usage": usage_of(usage) if usage is not None or status != "in_progress" else None,
    }


def _message(text: str, refusal: str | None, status: str = "completed") -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if text:
        content.append({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
    if refusal:
        content.append({"type": "refusal", "refusal": refusal})
    return {
        "type": "message",
        "id": new_id("msg"),
        "status": status,
        "role": "assistant",
        "content": content,
    }


def _function_call(call_id: Any, name: Any, arguments: str, status: str) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": new_id("fc"),
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def to_response(raw: bytes, echo: dict[str, Any], model: str) -> bytes:
    """A ``chat.completion`` body as a ``response`` body."""
    try:
        data = orjson.loads(raw)
        choice = data["choices"][0]
        msg = choice["message"]
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
        raise malformed("upstream", "no choice to answer with") from None
    output: list[dict[str, Any]] = []
    text = msg.get("content") if isinstance(msg.get("content"), str) else ""
    if text or msg.get("refusal"):
        output.append(_message(text, msg.get("refusal")))
    for call in msg.get("tool_calls") or ():
        fn = call.get("function") or {}
        output.append(
            _function_call(call.get("id"), fn.get("name"), fn.get("arguments") or "", "completed")
        )
    response = response_object(
        new_id("resp"),
        int(data.get("created") or time.time()),
        str(data.get("model") or model),
        echo,
        output,
        status="completed",
        usage=data.get("usage") if isinstance(data.get("usage"), dict) else {},
        finish=choice.get("finish_reason"),
    )
    return orjson.dumps(response)


class ResponsesShape:
    """Chat chunks in, the Responses API's typed stream events out (one per stream)."""

    def __init__(self, echo: dict[str, Any], model: str) -> None:
        self._echo, self._model = echo, model
        self.usage: dict[str, Any] | None = None
        self._id = new_id("resp")
        self._created = int(time.time())
        self._seq = 0
        self._items: list[dict[str, Any]] = []
        """Every output item so far, as it stands."""
        self._open: dict[str, Any] | None = None
        """The item being streamed."""
        self._part: str | None = None
        """The open message's content part: ``"output_text"`` or ``"refusal"``."""
        self._tools: dict[int, dict[str, Any]] = {}
        """Chat tool call index → its ``function_call`` item."""
        self._finish: str | None = None

    def _event(self, kind: str, **fields: Any) -> bytes:
        data = {"type": kind, "sequence_number": self._seq, **fields}
        self._seq += 1
        return named_event(kind, data)

    def _response(self, status: str, **extra: Any) -> dict[str, Any]:
        return response_object(
            self._id,
            self._created,
            self._model,
            self._echo,
            list(self._items),
            status=status,
            **extra,
        )

    @property
    def _index(self) -> int:
        assert self._open is not None
        return self._items.index(self._open)

    def _add(self, item: dict[str, Any]) -> list[bytes]:
        out = self._close()
        self._items.append(item)
        self._open = item
        out.append(self._event("response.output_item.added", output_index=self._index, item=item))
        return out

    def _close_part(self) -> list[bytes]:
        if self._open is None or self._part is None:
            return []
        item, kind = self._open, self._part
        part = item["content"][-1]
        where = {
            "item_id": item["id"],
            "output_index": self._index,
            "content_index": len(item["content"]) - 1,
        }
        self._part = None
        if kind == "output_text":
            done = self._event("response.output_text.done", **where, text=part["text"], logprobs=[])
        else:
            done = self._event("response.refusal.done", **where, refusal=part["refusal"])
        return [done, self._event("response.content_part.done", **where, part=part)]

    def _close(self) -> list[bytes]:
        if self._open is None:
            return []
        item = self._open
        out = self._close_part()
        if item["type"] == "function_call":
            out.append(
                self._event(
                    "response.function_call_arguments.done",
                    item_id=item["id"],
                    output_index=self._index,
                    arguments=item["arguments"],
                    name=item["name"],
                )
            )
        item["status"] = "completed"
        out.append(self._event("response.output_item.done", output_index=self._index, item=item))
        self._open = None
        return out

    def _content(self, kind: str, delta: str) -> list[bytes]:
        out: list[bytes] = []
        if self._open is None or self._open["type"] != "message":
            out += self._add(_message("", None, "in_progress"))
        item = self._open
        assert item is not None
        if self._part != kind:
            out += self._close_part()
            part: dict[str, Any] = (
                {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
                if kind == "output_text"
                else {"type": "refusal", "refusal": ""}
            )
            item["content"].append(part)
            self._part = kind
            where = {"item_id": item["id"], "output_index": self._index}
            index = len(item["content"]) - 1
            out.append(
                self._event("response.content_part.added", **where, content_index=index, part=part)
            )
        part = item["content"][-1]
        where = {"item_id": item["id"], "output_index": self._index}
        index = len(item["content"]) - 1
        if kind == "output_text":
            part["text"] += delta
            out.append(
                self._event(
                    "response.output_text.delta",
                    **where,
                    content_index=index,
                    delta=delta,
                    logprobs=[],
                )
            )
        else:
            part["refusal"] += delta
            out.append(
                self._event("response.refusal.delta", **where, content_index=index, delta=delta)
            )
        return out

    def _tool(self, call: dict[str, Any]) -> list[bytes]:
        index = int(call.get("index", 0))
        fn = call.get("function") or {}
        out: list[bytes] = []
        item = self._tools.get(index)
        if item is None:
            item = _function_call(call.get("id"), fn.get("name"), "", "in_progress")
            self._tools[index] = item
            out += self._add(item)
        elif item is not self._open:
            # An item once done cannot take more arguments in this API's stream.
            raise malformed("upstream", "tool call arguments resumed after another item")
        if fn.get("arguments"):
            item["arguments"] += fn["arguments"]
            out.append(
                self._event(
                    "response.function_call_arguments.delta",
                    item_id=item["id"],
                    output_index=self._index,
                    delta=fn["arguments"],
                )
            )
        return out

    def _start(self) -> list[bytes]:
        started = self._response("in_progress")
        return [
            self._event("response.created", response=started),
            self._event("response.in_progress", response=started),
        ]

    def feed(self, event: bytes) -> list[bytes]:
        """The Responses events for one chat chunk (``[DONE]`` completes the response)."""
        out = self._start() if self._seq == 0 else []
        if event == DONE:
            out += self._close()
            final = self._response("completed", usage=self.usage or {}, finish=self._finish)
            kind = "response.completed" if final["status"] == "completed" else "response.incomplete"
            out.append(self._event(kind, response=final))
            return out
        _, data = parse_sse(event)
        if not data:
            return out
        chunk = orjson.loads(data)
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue  # one answer per response; chat asked for one
            delta = choice.get("delta") or {}
            if isinstance(delta.get("content"), str) and delta["content"]:
                out += self._content("output_text", delta["content"])
            if isinstance(delta.get("refusal"), str) and delta["refusal"]:
                out += self._content("refusal", delta["refusal"])
            for call in delta.get("tool_calls") or ():
                out += self._tool(call)
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
        return out

    def fail(self, message: str) -> bytes:
        """``response.failed``: the response so far, with the error."""
        error = {"code": "server_error", "message": message}
        failed = self._response("failed", usage=self.usage, error=error)
        return self._event("response.failed", response=failed)
