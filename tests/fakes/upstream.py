"""A scriptable fake OpenAI-compatible upstream: a real aiohttp server on 127.0.0.1.

Async tests::

    async with FakeUpstream("a") as up:
        up.script(status(500), ok("second try"))

Sync tests (server runs on its own loop in a background thread)::

    with FakeUpstream.in_thread("a") as up:
        up.fail_n(2)

Each chat request consumes one scripted behaviour; when the queue is empty ``up.default``
applies. Stream-only behaviours given to a non-stream request: ``cut_stream`` sends half of
a ``content-length`` body then closes, ``stream_error`` answers 500, ``slow_stream`` and
``first_chunk_delay`` delay the whole answer.
"""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, Self

import orjson
from aiohttp import web


@dataclass(frozen=True)
class Ok:
    """Answer normally with ``content`` (None: the upstream's content) after ``delay`` s."""

    content: str | None = None
    delay: float = 0.0


@dataclass(frozen=True)
class Status:
    """Answer ``code`` with ``body`` (dict: JSON, str: text; None: OpenAI-shaped error)."""

    code: int
    body: Mapping[str, Any] | str | None = None
    headers: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Hang:
    """Never answer; the handler ends (closing the connection) only when the server stops."""


@dataclass(frozen=True)
class Drop:
    """Read the request, then close the TCP connection without any HTTP response."""


@dataclass(frozen=True)
class BadJson:
    """200 whose body (or stream event) is not valid JSON."""


@dataclass(frozen=True)
class NoChoices:
    """200 with a valid completion (or chunk) lacking ``choices``."""


@dataclass(frozen=True)
class CutStream:
    """Stream ``after`` content chunks, then close the connection without ``[DONE]``."""

    after: int = 1


@dataclass(frozen=True)
class SlowStream:
    """Stream the content as ``chunks`` pieces, each preceded by ``interval`` seconds."""

    chunks: int = 5
    interval: float = 0.05


@dataclass(frozen=True)
class StreamError:
    """Stream ``after`` content chunks, then a ``data: {"error": ...}`` event, then end."""

    after: int = 1
    message: str = "fake upstream stream error"


@dataclass(frozen=True)
class BadEvent:
    """Stream ``after`` content chunks, then ``raw`` as one event, then finish cleanly.

    With ``after=0``, ``raw`` is the first event (no role chunk before it)."""

    after: int
    raw: bytes


@dataclass(frozen=True)
class FirstChunkDelay:
    """Send stream headers at once but the first event only after ``seconds``."""

    seconds: float


Behaviour = (
    (Ok | Status | Hang | Drop | BadJson | NoChoices | CutStream | SlowStream | StreamError)
    | FirstChunkDelay
    | BadEvent
)

# Lower-case aliases so scripts read like prose: up.script(status(500), ok()).
ok, status, hang, drop, bad_json, no_choices = Ok, Status, Hang, Drop, BadJson, NoChoices
cut_stream, slow_stream = CutStream, SlowStream
stream_error, first_chunk_delay, bad_event = StreamError, FirstChunkDelay, BadEvent


def error_body(
    message: str, type: str = "invalid_request_error", code: str | None = None
) -> dict[str, Any]:
    """An OpenAI-shaped error body: ``{"error": {message, type, param, code}}``."""
    return {"error": {"message": message, "type": type, "param": None, "code": code}}


def rate_limited(retry_after: int = 30) -> Status:
    """429 with a ``retry-after`` header (seconds)."""
    return Status(
        429,
        error_body("Rate limit reached", "requests", "rate_limit_exceeded"),
        {"retry-after": str(retry_after)},
    )


def context_length_exceeded() -> Status:
    """400 with OpenAI's ``context_length_exceeded`` error code."""
    msg = "This model's maximum context length is 8192 tokens."
    return Status(400, error_body(msg, code="context_length_exceeded"))


def refused_port() -> int:
    """A 127.0.0.1 port that was free a moment ago, so connecting to it is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def refused_base_url() -> str:
    """A ``/v1`` base URL on which connections are refused."""
    return f"http://127.0.0.1:{refused_port()}/v1"


@dataclass(frozen=True)
class RecordedRequest:
    """One request as received (header names lower-cased; ``json`` None if not JSON)."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any
    body: bytes = field(repr=False)


def _split(text: str, n: int) -> list[str]:
    """``n`` non-empty consecutive pieces of ``text`` (padded with "." if too short)."""
    text = text.ljust(n, ".")
    return [text[len(text) * i // n : len(text) * (i + 1) // n] for i in range(n)]


def _sse(data: Any) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"


class FakeUpstream:
    """A real HTTP server speaking the OpenAI chat API, scripted per test."""

    def __init__(
        self,
        name: str = "fake",
        *,
        content: str | None = None,
        models: tuple[str, ...] = ("fake-model",),
        require_key: str | None = None,
        cached_tokens: int | None = None,
    ) -> None:
        self.name = name
        self.cached_tokens = cached_tokens
        """Reported as ``usage.prompt_tokens_details.cached_tokens`` when set."""
        self.content = content if content is not None else f"hello from {name}"
        self.models = models
        self.require_key = require_key
        self.default: Behaviour = Ok()
        self.requests: list[RecordedRequest] = []
        self.calls = 0
        self.port = 0
        self._queue: deque[Behaviour] = deque()
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    def script(self, *behaviours: Behaviour) -> None:
        """Queue behaviours, one consumed per chat request."""
        self._queue.extend(behaviours)

    def fail_n(self, n: int, code: int = 500) -> None:
        """Queue ``n`` failures with status ``code``."""
        self.script(*[Status(code)] * n)

    @property
    def pending(self) -> int:
        """Scripted behaviours not consumed yet."""
        return len(self._queue)

    def clear(self) -> None:
        """Forget recorded requests, the call count and the queue."""
        self.requests.clear()
        self._queue.clear()
        self.calls = 0

    def routes(self, app: web.Application) -> None:
        """Register the endpoints; vendor fakes override this with their own API."""
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_route("*", "/{tail:.*}", self._not_found)

    async def start(self) -> Self:
        """Start serving; after a ``stop()`` this rebinds the same port."""
        app = web.Application()
        self.routes(app)
        self._closing = asyncio.Event()
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        self.port, self._runner = runner.addresses[0][1], runner
        return self

    async def stop(self) -> None:
        """Stop serving (connections to ``port`` are then refused); hung requests end."""
        runner, self._runner = self._runner, None
        if runner is not None:
            self._closing.set()
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @classmethod
    @contextmanager
    def in_thread(cls, name: str = "fake", **kwargs: Any) -> Iterator[Self]:
        """Run the server on its own event loop in a daemon thread (for sync tests)."""
        up = cls(name, **kwargs)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name=f"fake-{name}", daemon=True)
        thread.start()
        up._loop = loop
        try:
            up.start_sync()
            yield up
        finally:
            up.stop_sync()
            loop.call_soon_threadsafe(loop.stop)
            thread.join(5)
            loop.close()

    def start_sync(self) -> None:
        """``start()`` from another thread (``in_thread`` mode only)."""
        assert self._loop is not None, "start_sync needs FakeUpstream.in_thread()"
        asyncio.run_coroutine_threadsafe(self.start(), self._loop).result(10)

    def stop_sync(self) -> None:
        """``stop()`` from another thread (``in_thread`` mode only)."""
        assert self._loop is not None, "stop_sync needs FakeUpstream.in_thread()"
        asyncio.run_coroutine_threadsafe(self.stop(), self._loop).result(10)

    # ---- handlers -------------------------------------------------------------------

    def _json(
        self, data: Any, code: int = 200, headers: Mapping[str, str] | None = None
    ) -> web.Response:
        body = data if isinstance(data, bytes) else orjson.dumps(data)
        resp = web.Response(status=code, body=body, content_type="application/json")
        resp.headers.update({"x-fake-upstream": self.name, **(headers or {})})
        return resp

    async def capture(self, request: web.Request) -> RecordedRequest:
        """Read, decode (JSON if it is) and record a request; vendor fakes share this."""
        body = await request.read()
        try:
            data = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            data = None
        headers = {k.lower(): v for k, v in request.headers.items()}
        rec = RecordedRequest(request.method, request.path, headers, data, body)
        self.requests.append(rec)
        return rec

    async def _record(self, request: web.Request) -> web.Response | None:
        headers = (await self.capture(request)).headers
        given = headers.get("authorization", "")
        if self.require_key and given != f"Bearer {self.require_key}":
            # Echoes the key it got, as real upstreams do: the router must redact it.
            msg = f"Incorrect API key provided: {given.removeprefix('Bearer ')}"
            return self._json(error_body(msg, code="invalid_api_key"), 401)
        return None

    async def _not_found(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        return self._json(error_body(f"Unknown path {request.path}"), 404)

    async def _models(self, request: web.Request) -> web.StreamResponse:
        if (denied := await self._record(request)) is not None:
            return denied
        data = [
            {"id": m, "object": "model", "created": 0, "owned_by": self.name} for m in self.models
        ]
        return self._json({"object": "list", "data": data})

    async def _sleep(self, seconds: float | None) -> bool:
        """Sleep (None: forever); True if the server started stopping meanwhile."""
        if seconds is not None and seconds <= 0:
            return self._closing.is_set()
        try:
            await asyncio.wait_for(self._closing.wait(), seconds)
        except TimeoutError:
            return False
        return True

    def _close(
        self, request: web.Request, resp: web.StreamResponse | None = None
    ) -> web.StreamResponse:
        if request.transport is not None:
            request.transport.close()
        return resp if resp is not None else web.Response()

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        self.calls += 1
        if (denied := await self._record(request)) is not None:
            return denied
        body = self.requests[-1].json
        if not isinstance(body, dict):
            return self._json(error_body("Request body is not a JSON object"), 400)
        b = self._queue.popleft() if self._queue else self.default
        c = _Completion(self, body)
        match b:
            case Ok(content=text, delay=delay):
                if await self._sleep(delay):
                    return self._close(request)
                c.text = text if text is not None else c.text
                return await c.stream(request) if c.streaming else self._json(c.full())
            case Status(code=code, body=err, headers=headers):
                if isinstance(err, str):
                    hdrs = {"x-fake-upstream": self.name, **(headers or {})}
                    return web.Response(status=code, text=err, headers=hdrs)
                kind = "invalid_request_error" if code < 500 else "server_error"
                err = err if err is not None else error_body(f"fake error {code}", kind)
                return self._json(err, code, headers)
            case Hang():
                await self._sleep(None)
                return self._close(request)
            case Drop():
                return self._close(request)
            case BadJson() if c.streaming:
                return await c.stream(request, raw=b'data: {"id": "chatcmpl-bad", "choi\n\n')
            case BadJson():
                return self._json(b'{"id": "chatcmpl-bad", "choi')
            case NoChoices():
                whole = c.chunk({"content": c.text}) if c.streaming else c.full()
                data = {k: v for k, v in whole.items() if k != "choices"}
                return await c.stream(request, raw=_sse(data)) if c.streaming else self._json(data)
            case CutStream(after=k) if c.streaming:
                return await c.stream(request, pieces=_split(c.text, k + 1)[:k], end="cut")
            case CutStream():
                full = orjson.dumps(c.full())
                resp = web.StreamResponse(headers={"x-fake-upstream": self.name})
                resp.content_type = "application/json"
                resp.content_length = len(full)
                await resp.prepare(request)
                await resp.write(full[: len(full) // 2])
                return self._close(request, resp)
            case StreamError(after=k, message=msg) if c.streaming:
                c.error = error_body(msg, "server_error")
                return await c.stream(request, pieces=_split(c.text, k + 1)[:k], end="error")
            case BadEvent(after=0, raw=raw) if c.streaming:
                return await c.stream(request, raw=raw)
            case BadEvent(after=k, raw=raw) if c.streaming:
                return await c.stream(request, pieces=_split(c.text, k + 1)[:k], tail=raw)
            case BadEvent(raw=raw):
                return self._json(raw)
            case StreamError(message=msg):
                return self._json(error_body(msg, "server_error"), 500)
            case SlowStream(chunks=n, interval=s):
                if c.streaming:
                    return await c.stream(request, pieces=_split(c.text, n), interval=s)
                return self._close(request) if await self._sleep(n * s) else self._json(c.full())
            case FirstChunkDelay(seconds=s):
                if c.streaming:
                    return await c.stream(request, first_delay=s)
                return self._close(request) if await self._sleep(s) else self._json(c.full())
        raise AssertionError(f"unknown behaviour {b!r}")


class _Completion:
    """Builds OpenAI-shaped completion bodies and SSE streams for one request."""

    def __init__(self, up: FakeUpstream, body: dict[str, Any]) -> None:
        self.up, self.text = up, up.content
        self.error: dict[str, Any] | None = None
        self.model = body.get("model")
        self.streaming = bool(body.get("stream"))
        opts = body.get("stream_options")
        self.include_usage = isinstance(opts, dict) and bool(opts.get("include_usage"))
        msgs = body.get("messages")
        self.prompt_tokens = (
            sum(len(str(m.get("content") or "").split()) for m in msgs if isinstance(m, dict))
            if isinstance(msgs, list)
            else 0
        )
        self.id = f"chatcmpl-{up.name}-{up.calls}"
        self.created = int(time.time())

    def _usage(self) -> dict[str, Any]:
        p, d = self.prompt_tokens, len(self.text.split())
        usage: dict[str, Any] = {"prompt_tokens": p, "completion_tokens": d, "total_tokens": p + d}
        if self.up.cached_tokens is not None:
            usage["prompt_tokens_details"] = {"cached_tokens": self.up.cached_tokens}
        return usage

    def _base(self, obj: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": obj,
            "created": self.created,
            "model": self.model,
            "system_fingerprint": "fp_fake",
        }

    def full(self) -> dict[str, Any]:
        """A non-stream ``chat.completion`` body."""
        message = {"role": "assistant", "content": self.text, "refusal": None}
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
        return {**self._base("chat.completion"), "choices": [choice], "usage": self._usage()}

    def chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        """One ``chat.completion.chunk`` (with ``usage: null`` when usage was requested)."""
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        extra: dict[str, Any] = {"usage": None} if self.include_usage else {}
        return {**self._base("chat.completion.chunk"), "choices": [choice], **extra}

    async def stream(
        self,
        request: web.Request,
        *,
        pieces: list[str] | None = None,
        raw: bytes | None = None,
        interval: float = 0.0,
        first_delay: float = 0.0,
        end: Literal["done", "cut", "error"] = "done",
        tail: bytes = b"",
    ) -> web.StreamResponse:
        """Write the SSE answer, one write per event; ``raw`` replaces the content events."""
        up = self.up
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        resp.headers.update({"cache-control": "no-cache", "x-fake-upstream": up.name})
        await resp.prepare(request)
        if await up._sleep(first_delay):
            return up._close(request, resp)
        if raw is not None:
            await resp.write(raw)
        else:
            await resp.write(_sse(self.chunk({"role": "assistant", "content": ""})))
            for piece in re.findall(r"\s*\S+\s*|\s+", self.text) if pieces is None else pieces:
                if interval and await up._sleep(interval):
                    return up._close(request, resp)
                await resp.write(_sse(self.chunk({"content": piece})))
            if end == "cut":
                return up._close(request, resp)
            if end == "error":
                await resp.write(_sse(self.error))
                await resp.write_eof()
                return resp
            if tail:
                await resp.write(tail)
            await resp.write(_sse(self.chunk({}, "stop")))
            if self.include_usage:
                usage = {
                    **self._base("chat.completion.chunk"),
                    "choices": [],
                    "usage": self._usage(),
                }
                await resp.write(_sse(usage))
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp
