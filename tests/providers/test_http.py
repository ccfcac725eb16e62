"""providers.http: SSE splitting (any chunking, any line ends, bounded events) and
the checked send (only 2xx is success)."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from providers.base import Failure, ProviderError
from providers.http import send_checked
from providers.lean import Origin
from providers.sse import sse_events
from tests.providers.test_lean import raw_server


async def _feed(chunks: Sequence[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def split(
    chunks: Sequence[bytes], **options: int
) -> tuple[list[bytes], ProviderError | None]:
    """The events of ``chunks``, and the error that ended them, if any."""
    out: list[bytes] = []
    try:
        async for event in sse_events(_feed(chunks), **options):
            out.append(event)
    except ProviderError as err:
        return out, err
    return out, None


LINES = st.lists(
    st.sampled_from(
        [b"data: x", b'data: {"a": [1, 2]}', b"event: ping", b": keep", b"id: 7", b"data:"]
    )
    | st.binary(min_size=1, max_size=12).filter(lambda b: b"\r" not in b and b"\n" not in b),
    min_size=1,
    max_size=4,
)
ENDS = st.sampled_from([b"\n", b"\r\n", b"\r"])


@st.composite
def sse_body(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    """An SSE body with mixed line ends and blank lines, and the events it holds."""
    out = bytearray()
    events: list[bytes] = []

    def end() -> None:
        # A CR then an LF is one line end (CRLF), so an LF never follows a lone CR.
        e = draw(ENDS)
        out.extend(b"\r\n" if out.endswith(b"\r") and e == b"\n" else e)

    for _ in range(draw(st.integers(0, 6))):
        for _ in range(draw(st.integers(0, 2))):
            end()  # blank lines between events dispatch nothing
        lines = draw(LINES)
        for line in lines:
            out += line
            end()
        end()  # the blank line that ends the event
        events.append(b"\n".join(lines) + b"\n\n")
    if draw(st.booleans()):
        # A last event cut off by the end of the body (maybe with its last line end).
        lines = draw(LINES)
        out += b"\n".join(lines)
        if draw(st.booleans()):
            end()
        events.append(b"\n".join(lines) + b"\n\n")
    return bytes(out), events


def cut(data: bytes, points: list[int]) -> list[bytes]:
    edges = sorted({p for p in points if 0 < p < len(data)})
    return [data[a:b] for a, b in itertools.pairwise([0, *edges, len(data)])]


@given(sse_body(), st.lists(st.integers(1, 300), max_size=20), st.integers(1, 40))
@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
def test_events_are_the_same_whatever_the_chunking(
    drawn: tuple[bytes, list[bytes]], points: list[int], limit: int
) -> None:
    data, events = drawn
    # The events up to the first one longer than the limit, then the error.
    fit = list(itertools.takewhile(lambda e: len(e) - 2 <= limit, events))
    for chunks in ([data], cut(data, points), [data[i : i + 1] for i in range(len(data))]):
        assert asyncio.run(split(chunks)) == (events, None)
        got, err = asyncio.run(split(chunks, max_event_bytes=limit))
        assert got == fit
        if len(fit) == len(events):
            assert err is None
        else:
            assert err is not None and err.failure is Failure.MALFORMED
            assert err.message == f"upstream stream event larger than {limit} bytes"


async def test_one_event_per_chunk_is_passed_on_without_a_copy() -> None:
    chunks = [b"data: 1\n\n", b"data: 2\n\n"]
    got, _ = await split(chunks)
    assert got == chunks and all(g is c for g, c in zip(got, chunks, strict=True))


async def test_limit_counts_the_event_not_its_terminator() -> None:
    event = b"data: " + b"x" * 94  # 100 bytes
    for chunks in ([event + b"\n\n"], [event, b"\n", b"\n"], [event + b"\n"]):
        assert await split(chunks, max_event_bytes=100) == ([event + b"\n\n"], None)
        got, err = await split(chunks, max_event_bytes=99)
        assert got == [] and err is not None


async def test_a_huge_event_costs_linear_time() -> None:
    # Was quadratic: ~3 s here for 10 MB in 16 KB chunks (each chunk re-copied and
    # re-searched the whole buffer); now tens of ms.
    event = b"data: " + b"x" * (10 << 20)
    body = event + b"\r\n\r\n"
    chunks = [body[i : i + (16 << 10)] for i in range(0, len(body), 16 << 10)]
    started = time.perf_counter()
    got, err = await split(chunks, max_event_bytes=16 << 20)
    assert time.perf_counter() - started < 1.0
    assert err is None and got == [event + b"\n\n"]


async def test_a_huge_event_fails_once_past_the_limit() -> None:
    fed = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal fed
        while True:  # no blank line, ever
            fed += 1
            yield b"x" * 1024

    with pytest.raises(ProviderError) as info:
        async for _ in sse_events(endless(), max_event_bytes=64 << 10):
            pass
    assert info.value.failure is Failure.MALFORMED
    assert fed == 65  # stopped at the first chunk past the limit


@pytest.mark.parametrize("status", [301, 302, 307, 308, 300, 304])
async def test_send_checked_fails_on_3xx(status: int) -> None:
    # A redirect or any other 3xx is not an answer: classified like an error status.
    body = b"Moved"
    answer = b"HTTP/1.1 %d X\r\nLocation: https://elsewhere.example/v1\r\n" % status
    answer += b"Content-Length: %d\r\n\r\n%s" % (len(body), body) if status != 304 else b"\r\n"
    seen: list[tuple[int, bytes]] = []
    async with raw_server([answer]) as st_:
        origin = Origin(f"http://127.0.0.1:{st_['port']}", "t")

        def classify(code: int, raw: bytes) -> Failure:
            seen.append((code, raw))
            return Failure.MISCONFIGURED

        with pytest.raises(ProviderError) as info:
            await send_checked(origin, "POST", "/v1/x", b"", b"{}", 2, classify)
        origin.close()
    want_body = body if status != 304 else b""
    assert seen == [(status, want_body)]
    assert info.value.failure is Failure.MISCONFIGURED and info.value.status == status
    assert info.value.message.startswith(f"upstream {status} (t)")
    assert "elsewhere" not in info.value.message


@pytest.mark.parametrize("status", [200, 201, 204])
async def test_send_checked_passes_2xx(status: int) -> None:
    answer = b"HTTP/1.1 %d X\r\nContent-Length: 0\r\n\r\n" % status
    async with raw_server([answer]) as st_:
        origin = Origin(f"http://127.0.0.1:{st_['port']}", "t")

        def classify(code: int, raw: bytes) -> Failure:
            raise AssertionError("not an error")

        resp = await send_checked(origin, "POST", "/v1/x", b"", b"{}", 2, classify)
        assert resp.status == status and await resp.read() == b""
        resp.release()
        origin.close()
