"""A streaming client that timestamps every SSE event as its HTTP chunk arrives.

It reads the chunked body itself (no client library buffering in between), so each
chunk's arrival time is known and so is whether a chunk held exactly one SSE event:
the check that the router passes events through 1:1, none merged or split.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field

from bench.common import run_async
from bench.loadgen import CHAT_PATH


@dataclass
class StreamSample:
    """One stream: time to first event, gaps between events, and the chunks themselves."""

    ttft_s: float
    gaps_s: list[float]
    chunks: list[bytes]
    after_idle: bool = False
    """First of its block: the target sat idle while the other target's block ran."""


@dataclass
class StreamRun:
    """All streams of one target."""

    samples: list[StreamSample] = field(default_factory=list)
    errors: int = 0


def request_bytes(port: int, body: bytes) -> bytes:
    """The raw HTTP/1.1 request for one streaming chat completion."""
    return (
        f"POST {CHAT_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nAccept: text/event-stream\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def one_stream(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> StreamSample:
    """Send one request on an open connection and time its chunked SSE answer."""
    t0 = time.perf_counter()
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    if head[9:12] != b"200" or b"chunked" not in head.lower():
        raise RuntimeError(f"not a chunked 200 stream: {head[:200]!r}")
    times: list[float] = []
    chunks: list[bytes] = []
    while True:
        size = int((await reader.readline()).split(b";")[0], 16)
        data = await reader.readexactly(size + 2)
        if size == 0:
            break
        times.append(time.perf_counter())
        chunks.append(data[:-2])
    gaps = [b - a for a, b in itertools.pairwise(times)]
    return StreamSample(ttft_s=times[0] - t0 if times else float("nan"), gaps_s=gaps, chunks=chunks)


async def _interleaved(
    targets: dict[str, int], body: bytes, count: int, block: int
) -> dict[str, StreamRun]:
    """``count`` streams per target, one at a time, in alternating blocks of ``block``.

    Alternating spreads background noise on the machine over the targets. Within a
    block streams run back to back (warm); the first of each block follows an idle
    pause as long as the other target's block and is marked ``after_idle``.
    """
    runs = {name: StreamRun() for name in targets}
    conns: dict[str, tuple[asyncio.StreamReader, asyncio.StreamWriter]] = {}
    try:
        for name, port in targets.items():
            conns[name] = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
        requests = {name: request_bytes(port, body) for name, port in targets.items()}
        for first in range(0, count, block):
            for name in targets:
                for i in range(first, min(first + block, count)):
                    reader, writer = conns[name]
                    try:
                        sample = await asyncio.wait_for(
                            one_stream(reader, writer, requests[name]), 30
                        )
                    except (OSError, asyncio.IncompleteReadError, RuntimeError, TimeoutError):
                        runs[name].errors += 1
                        writer.close()
                        conns[name] = await asyncio.open_connection(
                            "127.0.0.1", targets[name], limit=1 << 20
                        )
                        continue
                    sample.after_idle = i == first
                    runs[name].samples.append(sample)
    finally:
        for _, writer in conns.values():
            writer.close()
    return runs


def measure(
    targets: dict[str, int], body: bytes, count: int, block: int = 5
) -> dict[str, StreamRun]:
    """Run :func:`_interleaved` on a fresh event loop."""
    return run_async(_interleaved(targets, body, count, block))


def one_event_per_chunk(chunks: list[bytes]) -> bool:
    """True when every chunk is exactly one whole SSE event (ends with one blank line)."""
    return all(c.endswith(b"\n\n") and c.count(b"\n\n") == 1 for c in chunks)
