"""Fixtures for the shared counters: a namespace per test on the machine's Redis, a
private Redis to kill, limiters that are closed (and keys removed) after each test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from typing import Any

import pytest
from redis.asyncio import Redis

from modelrouter.governance.redis_limiter import RedisLimiter
from modelrouter.governance.types import Ask, Grant, Scope
from tests.governance.shared.redis_service import OwnRedis, namespace, require_redis

PATIENT_S = 0.5
"""The request-path bound of the tests' limiters (see :func:`new_limiter`)."""


class RecordingLimiter:
    """A fallback that admits everything and remembers what it was asked: tests see
    which requests the Redis limiter handed over while Redis was away."""

    def __init__(self) -> None:
        self.acquired: list[tuple[Sequence[Scope], Ask]] = []
        self.settled: list[tuple[Grant, int, float]] = []

    async def acquire(self, scopes: Sequence[Scope], ask: Ask) -> Grant:
        """Admit and remember."""
        self.acquired.append((scopes, ask))
        return Grant(scopes, ask, {}, "local")

    def settle(self, grant: Grant, tokens: int, cost_usd: float) -> None:
        """Remember."""
        self.settled.append((grant, tokens, cost_usd))

    def peek(self, scopes: Sequence[Scope]) -> dict[str, str]:
        """Nothing known."""
        return {}

    def state(self) -> dict[str, Any]:
        """A marker the Redis limiter's state nests."""
        return {"backend": "recording", "acquired": len(self.acquired)}

    async def start(self) -> None:
        """Nothing to start."""

    async def aclose(self) -> None:
        """Nothing to stop."""


class Spend:
    """A spend source (the store's role) answering fixed values, counting its reads."""

    def __init__(self, usd: float, delay_s: float = 0.0) -> None:
        self.usd = usd
        self.delay_s = delay_s
        self.reads: list[tuple[str, str, float]] = []

    async def one(self, kind: str, id: str, since: float) -> float:
        """``usd``, after ``delay_s`` (a store query)."""
        self.reads.append((kind, id, since))
        await asyncio.sleep(self.delay_s)
        return self.usd

    async def many(self, kind: str, since: float, ids: Iterable[str]) -> dict[str, float]:
        """``usd`` for each."""
        return {i: self.usd for i in ids}


@pytest.fixture
def ns() -> str:
    """This test's key namespace."""
    return namespace()


@pytest.fixture
async def redis_client(ns: str) -> AsyncIterator[Redis]:
    """A client of the machine's Redis; this test's keys are deleted afterwards."""
    r = Redis.from_url(require_redis())
    yield r
    keys = [k async for k in r.scan_iter(match=f"{ns}:*", count=1000)]
    if keys:
        await r.delete(*keys)
    await r.aclose()


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    """A private, running ``redis-server``; stopped afterwards."""
    server = OwnRedis()
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def limiters() -> AsyncIterator[list[RedisLimiter]]:
    """Limiters made by a test, closed after it."""
    made: list[RedisLimiter] = []
    yield made
    for lim in made:
        await lim.aclose()


@pytest.fixture
def new_limiter(limiters: list[RedisLimiter], ns: str) -> Callable[..., RedisLimiter]:
    """``make(redis, **options)``: a :class:`RedisLimiter` in this test's namespace,
    closed after the test (``on_error="local"`` gets a :class:`RecordingLimiter`).

    Requests wait up to :data:`PATIENT_S` for Redis unless the test says otherwise: a
    test about exact counts must not see a CI machine's 50 ms stall as Redis trouble
    (the tests of the bound pass ``timeout_s=ACQUIRE_TIMEOUT_S``)."""

    def build(redis: Redis, **options: Any) -> RedisLimiter:
        options.setdefault("prefix", f"{ns}:")
        options.setdefault("timeout_s", PATIENT_S)
        if options.get("on_error", "local") == "local":
            options.setdefault("fallback", RecordingLimiter())
        lim = RedisLimiter(redis, **options)
        limiters.append(lim)
        return lim

    return build
