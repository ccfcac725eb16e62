"""A fake Anthropic Messages API: a real HTTP server on 127.0.0.1 that is strict about requests.

Every ``POST /v1/messages`` is checked against the published request schema (the
rules are written out in :func:`validate`: the SDK's TypedDicts do not enforce
anything) and a violation gets Anthropic's own 400 shape::

    {"type": "error", "error": {"type": "invalid_request_error", "message": "..."}}

Valid requests get a ``Message`` or an event stream shaped like the documented
examples. Behaviours are scripted as with :class:`tests.fakes.upstream.FakeUpstream`
(``ok``, ``status``, ``hang``, ``drop``, ``bad_json``, ``cut_stream``, ``stream_error``)
plus :class:`ToolUse` and :class:`Refusal`::

    with FakeAnthropic.in_thread() as up:
        up.script(ToolUse("get_weather", {"city": "Paris"}))
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tests.fakes.anthropic_schema import Invalid, validate
from tests.fakes.upstream import (
    BadJson,
    Behaviour,
    CutStream,
    Drop,
    FakeUpstream,
    Hang,
    Ok,
    Status,
    StreamError,
)

KEY = "sk-ant-fake-key"
VERSIONS = frozenset({"2023-01-01", "2023-06-01", "2026-10-21"})
"""``anthropic-version`` values the API accepts."""


@dataclass(frozen=True)
class ToolUse:
    """Answer with a ``tool_use`` block calling ``name`` with ``input`` (after ``text``)."""

    name: str
    input: dict[str, Any] = field(default_factory=dict)
    text: str = ""


@dataclass(frozen=True)
class Refusal:
    """Answer ``stop_reason: refusal`` with no content."""


ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def error_body(code: int, message: str) -> dict[str, Any]:
    """Anthropic's error shape for HTTP status ``code``."""
    kind = ERROR_TYPES.get(code, "api_error")
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_fake"}


# ---- the server -------------------------------------------------------------------------


def _text(blocks: Any) -> str:
    if isinstance(blocks, str):
        return blocks
    out = []
    for b in blocks if isinstance(blocks, list) else ():
        if b.get("type") == "text":
            out.append(b["text"])
        elif b.get("type") == "tool_result":
            out.append(_text(b.get("content") or ""))
    return " ".join(out)


def sse(event: str, data: dict[str, Any]) -> bytes:
    """One Anthropic SSE event: ``event:`` line, ``data:`` line, blank line."""
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class FakeAnthropic(FakeUpstream):
    """The Messages API (``/v1/messages``, ``/v1/models``) with strict validation."""

    def __init__(
        self,
        name: str = "anthropic",
        *,
        content: str | None = None,
        models: tuple[str, ...] = ("claude-fake",),
        require_key: str | None = KEY,
    ) -> None:
        super().__init__(name, content=content, models=models, require_key=require_key)
        self.usage_extra: dict[str, int] = {}
        """Merged into every answer's ``usage`` (e.g. cache token counts)."""
        self.rejected: list[str] = []
        """The message of every request answered 400 by validation."""

    @property
    def base_url(self) -> str:
        """The API root, as in the SDK's ``ANTHROPIC_BASE_URL`` (no ``/v1``)."""
        return f"http://127.0.0.1:{self.port}"

    def routes(self, app: web.Application) -> None:
        """The Messages API and the model endpoint."""
        app.router.add_post("/v1/messages", self._messages)
        app.router.add_get("/v1/models/{model}", self._model)
        app.router.add_route("*", "/{tail:.*}", self._unknown)

    def _error(self, code: int, message: str) -> web.Response:
        return self._json(error_body(code, message), code)

    async def _admit(self, request: web.Request) -> tuple[Any, web.Response | None]:
        rec = await self.capture(request)
        data, headers = rec.json, rec.headers
        # The API takes the key as x-api-key (what the adapter sends) or as a bearer
        # token (what the anthropic SDK 2.x sends).
        bearer = headers.get("authorization", "")
        key = headers.get("x-api-key") or (bearer[7:] if bearer.startswith("Bearer ") else None)
        if key is None:
            return data, self._error(401, "x-api-key header is required")
        if self.require_key and key != self.require_key:
            return data, self._error(401, "invalid x-api-key")
        version = headers.get("anthropic-version")
        if request.method == "POST" and not version:
            return data, self._error(400, "anthropic-version: header is required")
        if version is not None and version not in VERSIONS:
            return data, self._error(400, f"anthropic-version: invalid version {version!r}")
        return data, None

    async def _unknown(self, request: web.Request) -> web.StreamResponse:
        await self._admit(request)
        return self._error(404, f"Not found: {request.path}")

    async def _model(self, request: web.Request) -> web.StreamResponse:
        _, denied = await self._admit(request)
        if denied is not None:
            return denied
        model = request.match_info["model"]
        if model not in self.models:
            return self._error(404, f"model: {model}")
        info = {
            "type": "model",
            "id": model,
            "display_name": model.title(),
            "created_at": "2025-05-14T00:00:00Z",
            "lifecycle": "active",
            "max_input_tokens": 200_000,
            "max_tokens": 64_000,
        }
        return self._json(info)

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        self.calls += 1
        body, denied = await self._admit(request)
        if denied is not None:
            return denied
        try:
            validate(body)
        except Invalid as err:
            self.rejected.append(str(err))
            return self._error(400, str(err))
        if body["model"] not in self.models:
            return self._error(404, f"model: {body['model']}")
        b: Behaviour | ToolUse | Refusal = self._queue.popleft() if self._queue else self.default
        return await _Answer(self, body, request).respond(b)


class _Answer:
    """Builds the Message or the event stream for one valid request."""

    def __init__(self, up: FakeAnthropic, body: dict[str, Any], request: web.Request) -> None:
        self.up, self.body, self.request = up, body, request
        self.id = f"msg_fake{up.calls:04d}"
        self.stream = bool(body.get("stream"))
        last = body["messages"][-1]
        said = _text(last["content"]) if last["role"] == "user" else ""
        has_result = isinstance(last["content"], list) and any(
            b["type"] == "tool_result" for b in last["content"]
        )
        self.text = f"tool said: {said}" if has_result else up.content
        words = sum(len(_text(m["content"]).split()) for m in body["messages"])
        self.input_tokens = max(1, words)

    def usage(self, output: int) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": output,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "service_tier": "standard",
            **self.up.usage_extra,
        }

    def finish(self, text: str) -> tuple[str, str, str | None]:
        """Apply ``stop_sequences`` and ``max_tokens`` to ``text``."""
        for stop in self.body.get("stop_sequences") or ():
            if stop in text:
                return text[: text.index(stop)], "stop_sequence", stop
        words = text.split(" ")
        if len(words) > self.body["max_tokens"]:
            return " ".join(words[: self.body["max_tokens"]]), "max_tokens", None
        return text, "end_turn", None

    def message(self, blocks: list[dict[str, Any]], stop: str, seq: str | None) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.body["model"],
            "content": blocks,
            "stop_reason": stop,
            "stop_sequence": seq,
            "usage": self.usage(max(1, sum(len(_text([b]).split()) for b in blocks))),
        }

    async def respond(self, b: Behaviour | ToolUse | Refusal) -> web.StreamResponse:
        up = self.up
        match b:
            case Ok(content=text, delay=delay):
                if await up._sleep(delay):
                    return up._close(self.request)
                text, stop, seq = self.finish(text if text is not None else self.text)
                blocks = [{"type": "text", "text": text}] if text else []
                return await self.send(blocks, stop, seq)
            case ToolUse(name=name, input=args, text=text):
                use_id = f"toolu_fake{up.calls:04d}"
                use = {"type": "tool_use", "id": use_id, "name": name, "input": args}
                blocks = ([{"type": "text", "text": text}] if text else []) + [use]
                return await self.send(blocks, "tool_use", None)
            case Refusal():
                return await self.send([], "refusal", None)
            case Status(code=code, body=err, headers=headers):
                data = err if err is not None else error_body(code, f"fake error {code}")
                if isinstance(data, str):
                    return web.Response(status=code, text=data, headers=headers)
                return up._json(data, code, headers)
            case Hang():
                await up._sleep(None)
                return up._close(self.request)
            case Drop():
                return up._close(self.request)
            case BadJson() if self.stream:
                return await self.events([b'event: message_start\ndata: {"type": "mess\n\n'])
            case BadJson():
                return up._json(b'{"id": "msg_bad", "conte')
            case CutStream(after=k) if self.stream:
                return await self.send(self.text_blocks(), "end_turn", None, cut=k)
            case StreamError(after=k, message=msg) if self.stream:
                return await self.send(self.text_blocks(), "end_turn", None, error=(k, msg))
            case CutStream() | StreamError():
                return up._json(error_body(500, "stream-only behaviour"), 500)
        raise AssertionError(f"behaviour {b!r} is not supported by FakeAnthropic")

    def text_blocks(self) -> list[dict[str, Any]]:
        return [{"type": "text", "text": self.text}]

    async def send(
        self,
        blocks: list[dict[str, Any]],
        stop: str,
        seq: str | None,
        *,
        cut: int | None = None,
        error: tuple[int, str] | None = None,
    ) -> web.StreamResponse:
        """The answer: a Message, or its events (cut or failed after some deltas)."""
        msg = self.message(blocks, stop, seq)
        if not self.stream:
            return self.up._json(msg)
        events = _stream_events(msg)
        if cut is None and error is None:
            return await self.events([e for _, e in events])
        limit = cut if cut is not None else error[0] if error is not None else 0
        sent: list[bytes] = []
        for is_delta, event in events:
            if is_delta:
                if limit == 0:
                    break
                limit -= 1
            sent.append(event)
        if error is None:
            return await self.events(sent, cut=True)
        err = {"type": "error", "error": {"type": "overloaded_error", "message": error[1]}}
        return await self.events([*sent, sse("error", err)])

    async def events(self, events: list[bytes], *, cut: bool = False) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": "text/event-stream; charset=utf-8"})
        resp.headers.update({"cache-control": "no-cache", "x-fake-upstream": self.up.name})
        await resp.prepare(self.request)
        for event in events:
            await resp.write(event)
        if cut:
            return self.up._close(self.request, resp)
        await resp.write_eof()
        return resp


def _pieces(text: str) -> list[str]:
    """Text deltas: one word (with its following space) each."""
    return re.findall(r"\S+\s*|\s+", text) or [text]


def _halves(raw: str) -> list[str]:
    """Tool input JSON in two partial pieces, as the API streams it."""
    mid = len(raw) // 2
    return [raw[:mid], raw[mid:]] if mid else [raw]


def _stream_events(msg: dict[str, Any]) -> list[tuple[bool, bytes]]:
    """The documented event sequence of ``msg``, each flagged True if it is a delta."""
    start = {
        **msg,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {**msg["usage"], "output_tokens": 1},
    }
    events = [
        (False, sse("message_start", {"type": "message_start", "message": start})),
        (False, sse("ping", {"type": "ping"})),
    ]
    for i, block in enumerate(msg["content"]):
        if block["type"] == "text":
            first: dict[str, Any] = {"type": "text", "text": ""}
            pieces = [{"type": "text_delta", "text": w} for w in _pieces(block["text"])]
        else:
            first = {**block, "input": {}}
            raw = orjson.dumps(block["input"]).decode()
            pieces = [{"type": "input_json_delta", "partial_json": p} for p in _halves(raw)]
        start_ev = {"type": "content_block_start", "index": i, "content_block": first}
        events.append((False, sse("content_block_start", start_ev)))
        for piece in pieces:
            delta = {"type": "content_block_delta", "index": i, "delta": piece}
            events.append((True, sse("content_block_delta", delta)))
        events.append(
            (False, sse("content_block_stop", {"type": "content_block_stop", "index": i}))
        )
    delta = {
        "type": "message_delta",
        "delta": {"stop_reason": msg["stop_reason"], "stop_sequence": msg["stop_sequence"]},
        "usage": {"output_tokens": msg["usage"]["output_tokens"]},
    }
    events.append((False, sse("message_delta", delta)))
    events.append((False, sse("message_stop", {"type": "message_stop"})))
    return events
