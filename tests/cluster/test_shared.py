"""Shared health, the probe lease and the link against a real Redis, in one process.

Each :class:`Cluster` here is what one replica runs; several in one event loop talk
only through Redis (their own ``redis-server``, see :mod:`tests.cluster.services`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from modelrouter.cluster.link import HOT_TIMEOUT_S, LinkState, RedisLink
from modelrouter.cluster.node import Cluster
from modelrouter.cluster.tracker import ClusterTracker
from modelrouter.health import SLOW_START_FLOOR, Breaker
from modelrouter.settings import ClusterSettings, HealthSettings
from providers.base import Failure
from tests.cluster.services import RedisServer, namespace


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


async def eventually(
    check: Callable[[], bool], timeout: float = 3.0, what: str = "the condition"
) -> float:
    """Wait until ``check()``; return how long it took."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)
    return time.monotonic() - start


class Members:
    """Replicas sharing one namespace; started with :meth:`add`, stopped at the end."""

    def __init__(self, url: str, **health: Any) -> None:
        self.url = url
        self.ns = namespace()
        opts: dict[str, Any] = {"probe": "none", "failure_threshold": 3, "slow_start_s": 30}
        opts.update(health)
        self.health = HealthSettings.model_validate(opts)
        self.all: list[Cluster] = []

    async def add(self, name: str, *, wait: bool = True) -> Cluster:
        settings = ClusterSettings(redis_url=self.url, namespace=self.ns)
        tracker = ClusterTracker(self.health, ["m", "n"])
        member = Cluster(settings, self.health, tracker, instance=name)
        await member.start()
        self.all.append(member)
        if wait:
            await asyncio.wait_for(member.sync.joined.wait(), 5)
        return member

    async def stop(self) -> None:
        for member in self.all:
            await member.stop()


@asynccontextmanager
async def members(url: str, **health: Any) -> AsyncIterator[Members]:
    group = Members(url, **health)
    try:
        yield group
    finally:
        await group.stop()


def breaker(member: Cluster, model: str = "m") -> Breaker:
    return member.tracker.status(model).breaker


def fail(member: Cluster, n: int = 1, model: str = "m") -> None:
    for _ in range(n):
        member.tracker.record_failure(model, Failure.SERVER, status=500)


async def test_a_breaker_opened_on_one_replica_is_open_on_the_others_within_a_second(
    redis_server: RedisServer,
) -> None:
    async with members(redis_server.url) as group:
        a, b, c = [await group.add(n) for n in "abc"]
        fail(a, 3)
        assert breaker(a) is Breaker.OPEN
        took = await eventually(
            lambda: breaker(b) is Breaker.OPEN and breaker(c) is Breaker.OPEN, what="b and c"
        )
        assert took < 1.0
        assert "on a" in (b.tracker.status("m").reason or "")
        # The same instant on every replica (Redis time, not each machine's clock).
        until = [m.tracker.to_shared(m.tracker.status("m").open_until or 0) for m in (a, b, c)]
        assert max(until) - min(until) < 50
        assert breaker(b, "n") is Breaker.CLOSED


async def test_failures_spread_over_replicas_open_the_breaker_everywhere(
    redis_server: RedisServer,
) -> None:
    async with members(redis_server.url) as group:
        a, b, c = [await group.add(n) for n in "abc"]
        # One failure each: no replica alone reaches failure_threshold = 3.
        for m in (a, b, c):
            fail(m)
            await m.sync.flush()
        await eventually(lambda: all(breaker(m) is Breaker.OPEN for m in (a, b, c)))
        assert "3 consecutive failures across replicas" in (a.tracker.status("m").reason or "")


async def test_an_error_rate_across_replicas_opens_the_breaker(redis_server: RedisServer) -> None:
    async with members(
        redis_server.url, failure_threshold=100, min_requests=10, error_rate_threshold=0.5
    ) as group:
        a, b = await group.add("a"), await group.add("b")
        for m in (a, b):
            for ok in (False, True, False, True, False):
                if ok:
                    m.tracker.record_success("m", 0.01)
                else:
                    fail(m)
            assert breaker(m) is Breaker.CLOSED  # 3 of 5 alone: below min_requests
        await eventually(lambda: breaker(a) is Breaker.OPEN and breaker(b) is Breaker.OPEN)
        assert "60% errors over 10 calls across replicas" in (b.tracker.status("m").reason or "")


async def test_recovery_closes_everywhere_and_slow_start_ramps_together(
    redis_server: RedisServer,
) -> None:
    async with members(redis_server.url, open_s=0.2) as group:
        a, b = await group.add("a"), await group.add("b")
        fail(a, 3)
        await eventually(lambda: breaker(b) is Breaker.OPEN)
        await asyncio.sleep(0.25)
        a.tracker.record_success("m", 0.01)  # the half-open trial on A succeeds
        await eventually(lambda: breaker(b) is Breaker.CLOSED, what="b closed")
        sa, sb = a.tracker.status("m").share, b.tracker.status("m").share
        assert SLOW_START_FLOOR <= sa < 0.2 and abs(sa - sb) < 0.01
        # The outage's failures are gone from the shared window: one more does not reopen.
        fail(b)
        await b.sync.flush()
        await asyncio.sleep(0.2)
        assert breaker(a) is Breaker.CLOSED and breaker(b) is Breaker.CLOSED


async def test_a_cooldown_on_one_replica_is_honoured_by_the_others(
    redis_server: RedisServer,
) -> None:
    async with members(redis_server.url) as group:
        a, b = await group.add("a"), await group.add("b")
        a.tracker.record_failure("m", Failure.RATE_LIMIT, retry_after_s=30, status=429)
        await eventually(lambda: b.tracker.status("m").cooling_until is not None)
        left = (b.tracker.status("m").cooling_until or 0) - time.monotonic()
        assert 29 < left <= 30


async def test_a_replica_that_joins_late_reads_the_state(redis_server: RedisServer) -> None:
    async with members(redis_server.url) as group:
        a = await group.add("a")
        a.tracker.record_failure("n", Failure.MISCONFIGURED, status=401, error="bad key")
        await a.sync.flush()
        late = await group.add("late")
        assert breaker(late, "n") is Breaker.OPEN
        assert (late.tracker.status("n").reason or "").startswith("misconfigured")
        client = a.link.bg
        ttl = await client.pttl(a.sync.state_key("n"))
        assert 0 < ttl <= (30 + group.health.interval_s + group.health.timeout_s + 1) * 1000
        ours = {k.decode() async for k in client.scan_iter(match=a.link.prefix + "*")}
        assert ours == {a.sync.state_key("n"), a.sync.counts_key("n")}
        # Nothing outside the versioned prefix (this Redis serves these tests only).
        assert all([k.startswith(b"modelrouter:v1:") async for k in client.scan_iter()])


async def test_one_replica_holds_the_probe_lease_and_hands_it_over(
    redis_server: RedisServer,
) -> None:
    async with members(redis_server.url, probe="models", interval_s=3) as group:
        trio = [await group.add(n) for n in "abc"]
        await eventually(lambda: sum(m.lease.held() for m in trio) == 1, what="one holder")
        for _ in range(20):  # and it stays one
            assert sum(m.lease.held() for m in trio) == 1
            await asyncio.sleep(0.03)
        holder = next(m for m in trio if m.lease.held())
        assert holder.lease.ttl_s == pytest.approx(1.5)
        await holder.stop()
        group.all.remove(holder)
        rest = [m for m in trio if m is not holder]
        # Given back on stop: taken within a renewal period (ttl / 3 = 0.5 s), not left
        # to expire (ttl = 1.5 s).
        took = await eventually(lambda: any(m.lease.held() for m in rest), what="a new holder")
        assert took < 1.0


async def test_a_restarted_redis_gets_the_state_back(tmp_path: Path) -> None:
    with RedisServer(tmp_path) as server:
        async with members(server.url) as group:
            a = await group.add("a")
            fail(a, 3)
            await a.sync.flush()
            server.kill()
            await eventually(lambda: a.link.state is LinkState.DOWN, what="down")
            assert a.report()["mode"] == "local"
            assert breaker(a) is Breaker.OPEN  # per-process state goes on
            server.start()  # empty: --save ''
            await eventually(lambda: a.link.ok and a.sync.joined.is_set(), 5, "rejoined")
            late = await group.add("late")
            assert breaker(late) is Breaker.OPEN


async def test_a_hung_redis_costs_a_request_at_most_the_hot_timeout(tmp_path: Path) -> None:
    with RedisServer(tmp_path) as server:
        link = RedisLink(server.url, namespace=namespace())
        await link.start()
        try:
            assert link.ok
            await link.hot.set(link.key("x"), "1")
            server.pause()
            waits = []
            for _ in range(5):
                start = time.monotonic()
                with pytest.raises(Exception) as err:
                    await link.hot.get(link.key("x"))
                waits.append(time.monotonic() - start)
                assert "Timeout" in type(err.value).__name__
            # The documented bound is 2 * HOT_TIMEOUT_S (connect, then read): never more
            # here than that plus scheduling slack on a busy machine.
            assert max(waits) < 2 * HOT_TIMEOUT_S + 0.25
            await eventually(lambda: link.state is LinkState.DOWN, 5, "down")
            server.resume()
            await eventually(lambda: link.ok, 5, "ok again")
            assert await link.hot.get(link.key("x")) == b"1"
        finally:
            await link.stop()
