"""A minimal OpenAI-shaped upstream on raw asyncio: fixed answers, paced SSE, errors.

Run as ``python -m bench.upstream --port P [--chunks N --interval-ms MS]``. It is the
fallback fixed upstream when nginx is absent and, always, the streaming upstream
(nginx cannot pace chunks). Routing by request:

- path starting ``/err/``: ``500`` with an OpenAI error body;
- ``GET /stats``: connections accepted and requests served so far;
- other ``GET``: a model list (probes are off in the benchmark, but answer anyway);
- a body with ``"stream": true``: ``N`` SSE events, the first at once, then one every
  ``interval`` ms, each in its own HTTP chunk, then (if the body asks for usage with
  ``"include_usage":true``, as the router always does) OpenAI's usage-only chunk, then
  ``data: [DONE]``;
- anything else: :data:`FIXED_COMPLETION`.

Bodies are fixed bytes (no ids or timestamps that vary), so the benchmark can compare
what came through the router with what the upstream sent, byte for byte.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from typing import cast

from bench.common import run_async

FIXED_COMPLETION = (
    b'{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,'
    b'"model":"bench-model","choices":[{"index":0,"message":{"role":"assistant",'
    b'"content":"Hello! This is a fixed benchmark answer."},"finish_reason":"stop"}],'
    b'"usage":{"prompt_tokens":9,"completion_tokens":9,"total_tokens":18}}'
)
"""The fixed non-streaming answer (nginx serves the same bytes)."""
ERROR_BODY = (
    b'{"error":{"message":"bench upstream failure","type":"server_error","param":null,"code":null}}'
)
"""The body of the ``500`` answer under ``/err/``."""
MODELS_BODY = b'{"object":"list","data":[{"id":"bench-model","object":"model"}]}'


def sse_event(i: int) -> bytes:
    """The ``i``-th streamed event (deterministic bytes)."""
    return (
        b'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,'
        b'"model":"bench-model","choices":[{"index":0,"delta":{"content":"tok%d "},'
        b'"finish_reason":null}]}\n\n' % i
    )


SSE_DONE = b"data: [DONE]\n\n"
SSE_USAGE = (
    b'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,'
    b'"model":"bench-model","choices":[],'
    b'"usage":{"prompt_tokens":9,"completion_tokens":20,"total_tokens":29}}\n\n'
)
"""The closing usage chunk of a stream that asked for it."""


def _response(status: bytes, body: bytes) -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\nConnection: keep-alive\r\n\r\n" % len(body) + body
    )


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


_OK = _response(b"200 OK", FIXED_COMPLETION)
_ERR = _response(b"500 Internal Server Error", ERROR_BODY)
_MODELS = _response(b"200 OK", MODELS_BODY)
_SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n"
)


class UpstreamProtocol(asyncio.Protocol):
    """One keep-alive connection: parse requests (Content-Length bodies), answer them."""

    connections = 0
    """Connections accepted so far (``GET /stats``): shows whether clients reuse them."""
    requests = 0

    def __init__(self, chunks: int, interval_s: float) -> None:
        self.chunks = chunks
        self.interval_s = interval_s
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.busy = False
        self._head_end = -1
        self._need = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport."""
        # uvloop's transports are not asyncio.Transport subclasses; same interface.
        self.transport = cast(asyncio.Transport, transport)
        UpstreamProtocol.connections += 1

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the transport; a running stream stops at its next write."""
        self.transport = None

    def data_received(self, data: bytes) -> None:
        """Buffer bytes and answer every complete request in them."""
        self.buf += data
        self._drain()

    def _drain(self) -> None:
        while not self.busy and self.transport is not None:
            if self._head_end < 0:
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                self._head_end = end
                head = bytes(self.buf[: end + 2]).lower()
                i = head.find(b"\r\ncontent-length:")
                length = int(head[i + 17 : head.find(b"\r\n", i + 2)]) if i >= 0 else 0
                self._need = end + 4 + length
            if len(self.buf) < self._need:
                return
            head = bytes(self.buf[: self._head_end])
            body = bytes(self.buf[self._head_end + 4 : self._need])
            del self.buf[: self._need]
            self._head_end = -1
            self._answer(head, body)

    def _answer(self, head: bytes, body: bytes) -> None:
        assert self.transport is not None
        method, _, rest = head.partition(b" ")
        path = rest.partition(b" ")[0]
        UpstreamProtocol.requests += 1
        if path == b"/stats":
            stats = b'{"connections":%d,"requests":%d}' % (self.connections, self.requests)
            self.transport.write(_response(b"200 OK", stats))
        elif path.startswith(b"/err/"):
            self.transport.write(_ERR)
        elif method == b"GET":
            self.transport.write(_MODELS)
        elif b'"stream":true' in body or b'"stream": true' in body:
            self.busy = True
            usage = b'"include_usage":true' in body or b'"include_usage": true' in body
            asyncio.get_running_loop().create_task(self._stream(usage))
        else:
            self.transport.write(_OK)

    async def _stream(self, usage: bool) -> None:
        loop = asyncio.get_running_loop()
        t = self.transport
        if t is None:
            return
        t.write(_SSE_HEAD + _chunk(sse_event(0)))
        start = loop.time()
        for i in range(1, self.chunks):
            # Pace against the start time so timer lateness does not accumulate.
            await asyncio.sleep(max(0.0, start + i * self.interval_s - loop.time()))
            if self.transport is None:
                return
            t.write(_chunk(sse_event(i)))
        await asyncio.sleep(max(0.0, start + self.chunks * self.interval_s - loop.time()))
        if self.transport is None:
            return
        t.write((_chunk(SSE_USAGE) if usage else b"") + _chunk(SSE_DONE) + b"0\r\n\r\n")
        self.busy = False
        self._drain()


async def serve(port: int, chunks: int, interval_s: float) -> None:
    """Serve on ``127.0.0.1:port`` until cancelled."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: UpstreamProtocol(chunks, interval_s), "127.0.0.1", port, backlog=1024
    )
    async with server:
        await server.serve_forever()


def main() -> None:
    """Command line entry point."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--chunks", type=int, default=20, help="SSE events per stream before [DONE]")
    p.add_argument("--interval-ms", type=float, default=5.0, help="time between SSE events")
    a = p.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        run_async(serve(a.port, a.chunks, a.interval_ms / 1000))


if __name__ == "__main__":
    main()
