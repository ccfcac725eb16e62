"""A scriptable fake OpenAI-compatible upstream: a real aiohttp server on 127.0.0.1.

Async tests::

    async with FakeUpstream("a") as up:
        up.script(status(500), ok("second try"))

Sync tests (server runs on its own loop in a background thread)::

    with FakeUpstream.in_thread("a") as up:
        up.fail_n(2)

Each chat request consumes one scripted behaviour; when the queue is empty ``up.default``
applies. How the fake reports usage is set per fake: ``up.usage`` (``"asked"``: OpenAI's
way, a usage-only chunk closing a stream that asked for it; ``"on_finish"``: Mistral's
way, usage on the finish chunk of every stream, and ``stream_options`` refused with
422; ``"none"``: never, asked or not, as old servers do) and ``up.cached_tokens``
(reported as ``prompt_tokens_details.cached_tokens``). ``up.sent`` holds the events of
the last stream as written.

Stream-only behaviours given to a non-stream request: ``cut_stream`` sends half of a
``content-length`` body then closes, ``stream_error`` answers 500, ``slow_stream`` and
``first_chunk_delay`` delay the whole answer.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, Self

import orjson
from aiohttp import web

from tests.fakes.completion import Completion, split_text, sse
from tests.fakes.script import (
    BadEvent,
    BadJson,
    Behaviour,
    CutStream,
    Drop,
    FirstChunkDelay,
    Hang,
    NoChoices,
    Ok,
    SlowStream,
    Status,
    StreamError,
    bad_event,
    bad_json,
    context_length_exceeded,
    cut_stream,
    drop,
    error_body,
    first_chunk_delay,
    hang,
    no_choices,
    ok,
    rate_limited,
    refused_base_url,
    refused_port,
    slow_stream,
    status,
    stream_error,
)

__all__ = [
    "BadEvent",
    "BadJson",
    "Behaviour",
    "CutStream",
    "Drop",
    "FakeUpstream",
    "FirstChunkDelay",
    "Hang",
    "NoChoices",
    "Ok",
    "RecordedRequest",
    "SlowStream",
    "Status",
    "StreamError",
    "bad_event",
    "bad_json",
    "context_length_exceeded",
    "cut_stream",
    "drop",
    "error_body",
    "first_chunk_delay",
    "hang",
    "no_choices",
    "ok",
    "rate_limited",
    "refused_base_url",
    "refused_port",
    "slow_stream",
    "status",
    "stream_error",
]


@dataclass(frozen=True)
class RecordedRequest:
    """One request as received (header names lower-cased; ``json`` None if not JSON)."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any
    body: bytes = field(repr=False)


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
        self.usage: Literal["asked", "on_finish", "none"] = "asked"
        self.sent: list[bytes] = []
        """The events of the last streamed answer, as written."""
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
        if self.usage == "on_finish" and "stream_options" in body:
            # Mistral's answer to a member it does not know.
            detail = [{"type": "extra_forbidden", "loc": ["body", "stream_options"]}]
            return self._json({"object": "error", "message": {"detail": detail}}, 422)
        b = self._queue.popleft() if self._queue else self.default
        c = Completion(self, body)
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
                return await c.stream(request, raw=sse(data)) if c.streaming else self._json(data)
            case CutStream(after=k) if c.streaming:
                return await c.stream(request, pieces=split_text(c.text, k + 1)[:k], end="cut")
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
                return await c.stream(request, pieces=split_text(c.text, k + 1)[:k], end="error")
            case BadEvent(after=0, raw=raw) if c.streaming:
                return await c.stream(request, raw=raw)
            case BadEvent(after=k, raw=raw) if c.streaming:
                return await c.stream(request, pieces=split_text(c.text, k + 1)[:k], tail=raw)
            case BadEvent(raw=raw):
                return self._json(raw)
            case StreamError(message=msg):
                return self._json(error_body(msg, "server_error"), 500)
            case SlowStream(chunks=n, interval=s):
                if c.streaming:
                    return await c.stream(request, pieces=split_text(c.text, n), interval=s)
                return self._close(request) if await self._sleep(n * s) else self._json(c.full())
            case FirstChunkDelay(seconds=s):
                if c.streaming:
                    return await c.stream(request, first_delay=s)
                return self._close(request) if await self._sleep(s) else self._json(c.full())
        raise AssertionError(f"unknown behaviour {b!r}")
