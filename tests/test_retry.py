"""The failure table's pure functions, table-tested."""

from __future__ import annotations

import random

import pytest

from modelrouter.retry import backoff
from providers.base import Failure
from providers.failures import classify_status, parse_retry_after


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (408, b"", Failure.SERVER),
        (409, b"", Failure.SERVER),
        (500, b"", Failure.SERVER),
        (502, b"", Failure.SERVER),
        (503, b"", Failure.SERVER),
        (504, b"", Failure.SERVER),
        (529, b'{"type":"error","error":{"type":"overloaded_error"}}', Failure.SERVER),
        (429, b"", Failure.RATE_LIMIT),
        (401, b"", Failure.MISCONFIGURED),
        (403, b"", Failure.MISCONFIGURED),
        (404, b"", Failure.MISCONFIGURED),
        (400, b'{"error":{"message":"bad temperature"}}', Failure.CLIENT),
        (413, b"", Failure.CLIENT),
        (422, b"", Failure.CLIENT),
        (400, b'{"error":{"code":"context_length_exceeded"}}', Failure.CONTEXT_LENGTH),
        (400, b"This model's maximum context length is 8192 tokens", Failure.CONTEXT_LENGTH),
        (400, b'{"error":{"message":"prompt is too long: 210000 tokens"}}', Failure.CONTEXT_LENGTH),
        (405, b"", Failure.MISCONFIGURED),
    ],
)
def test_classify_status(status: int, body: bytes, expected: Failure) -> None:
    assert classify_status(status, body) is expected


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"retry-after": "30"}, 30.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after-ms": "x", "retry-after": "9"}, 9.0),
        ({"retry-after": "-5"}, 0.0),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "Wed, 25 Nov 2026 10:00:30 GMT"}, 30.0),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    now = 1795600800.0  # Wed, 25 Nov 2026 10:00:00 GMT
    got = parse_retry_after(headers, now=now)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected)


def test_backoff_is_exponential_jittered_and_capped() -> None:
    rng = random.Random(1)
    for retry, full in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0), (9, 8.0)]:
        for _ in range(200):
            d = backoff(retry, base=0.5, cap=8.0, rand=rng)
            assert full / 2 <= d <= full
