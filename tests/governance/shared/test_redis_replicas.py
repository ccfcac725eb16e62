"""Several limiters (replicas) on one Redis, and what happens when Redis goes away.

The outage tests run a ``redis-server`` of their own, so that killing, pausing or
flushing it touches no one else's keys or scripts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from redis.asyncio import Redis

from modelrouter.errors import RouterError
from modelrouter.governance.redis_counters import NANO
from modelrouter.governance.redis_limiter import ACQUIRE_TIMEOUT_S, RedisLimiter
from modelrouter.governance.redis_watch import TIMEOUTS_TO_DOWN
from modelrouter.governance.types import Ask, Limits, Scope
from tests.governance.shared.conftest import RecordingLimiter
from tests.governance.shared.redis_service import OwnRedis, require_redis

Make = Callable[..., RedisLimiter]
ASK = Ask(tokens=10, cost_usd=0.0)
BOUND_S = ACQUIRE_TIMEOUT_S + 0.1
"""The most a request may wait for a Redis that is gone (the bound plus scheduling)."""


def key(**limits: object) -> list[Scope]:
    return [Scope("key", "k1", Limits(**limits))]  # type: ignore[arg-type]


async def admitted(lim: RedisLimiter, scopes: list[Scope], n: int) -> int:
    results = await asyncio.gather(
        *(lim.acquire(scopes, ASK) for _ in range(n)), return_exceptions=True
    )
    for r in results:
        if isinstance(r, BaseException) and not (
            isinstance(r, RouterError) and r.code == "rate_limit_exceeded"
        ):
            raise r
    return sum(not isinstance(r, BaseException) for r in results)


async def until_shared(lim: RedisLimiter, within_s: float = 5.0) -> None:
    deadline = time.monotonic() + within_s
    while not lim.shared:
        assert time.monotonic() < deadline, f"never rejoined: {lim.state()}"
        await asyncio.sleep(0.02)


async def rpm_level(client: Redis) -> int:
    """The whole requests left in the one rate bucket of a private Redis."""
    (name,) = [k async for k in client.scan_iter(match="*:rate")]
    level = float((await client.get(name)).split()[0])  # type: ignore[union-attr]
    return int(level + 0.05)  # the refill while the test ran is far below a request


async def test_three_replicas_admit_exactly_the_limit(new_limiter: Make) -> None:
    url = require_redis()
    clients = [Redis.from_url(url) for _ in range(3)]
    try:
        replicas = [new_limiter(c) for c in clients]
        for r in replicas:  # as the front door starts them: scripts loaded, connected
            await r.start()
        scopes = key(rpm=10)
        counts = await asyncio.gather(*(admitted(r, scopes, 40) for r in replicas))
        assert sum(counts) == 10, counts
        assert all(r.state()["mode"] == "shared" for r in replicas)
    finally:
        for c in clients:
            await c.aclose()


async def test_scripts_are_loaded_again_after_a_flush(
    own_redis: OwnRedis, new_limiter: Make
) -> None:
    client = Redis.from_url(own_redis.url)
    lim = new_limiter(client)
    scopes = key(rpm=5, budget_usd=1.0)
    g = await lim.acquire(scopes, Ask(tokens=1, cost_usd=0.25))
    await client.script_flush()
    await lim.acquire(scopes, ASK)  # NOSCRIPT, loaded again, same round
    await client.script_flush()
    lim.settle(g, 1, 0.2)  # the settle pipeline meets NOSCRIPT too
    await lim.drain()
    spend = [k async for k in client.scan_iter(match="*:spend:*")]
    assert int(await client.hget(spend[0], "spent")) == round(0.2 * NANO)  # type: ignore[arg-type]
    assert await admitted(lim, scopes, 10) == 3
    assert lim.shared
    await client.aclose()


async def test_a_hung_redis_falls_back_to_local_within_the_bound(
    own_redis: OwnRedis, new_limiter: Make
) -> None:
    client = Redis.from_url(own_redis.url)
    fallback = RecordingLimiter()
    lim = new_limiter(client, fallback=fallback, reconnect_s=0.05, timeout_s=ACQUIRE_TIMEOUT_S)
    scopes = key(rpm=5)
    await lim.acquire(scopes, ASK)
    own_redis.pause()
    try:
        for n in range(1, TIMEOUTS_TO_DOWN + 1):
            # one slow answer sends its own request to the fallback; a few in a row
            # mean Redis is down
            assert lim.state()["redis"] == "ok"
            started = time.monotonic()
            g = await lim.acquire(scopes, ASK)
            assert time.monotonic() - started < BOUND_S
            assert g.token == "local" and len(fallback.acquired) == n
        state = lim.state()
        assert (state["redis"], state["mode"]) == ("down", "local")
        assert state["fallback"]["backend"] == "recording"
        started = time.monotonic()
        g2 = await lim.acquire(scopes, ASK)  # known down: Redis is not even asked
        assert time.monotonic() - started < 0.01
        lim.settle(g2, 5, 0.0)
        assert fallback.settled[0][0] is g2
    finally:
        own_redis.resume()
    await until_shared(lim)
    # exact again, on the counters Redis kept: one before the pause, and those of the
    # requests that timed out that Redis ran when it woke (a timeout never under-counts)
    level = await rpm_level(client)
    assert 5 - 1 - TIMEOUTS_TO_DOWN <= level <= 5 - 1 - 1  # the first one was sent
    assert await admitted(lim, scopes, 10) == level
    assert lim.state()["rejoined"] == 1
    await client.aclose()


async def test_a_killed_redis_denies_then_is_exact_after_restart(
    own_redis: OwnRedis, new_limiter: Make
) -> None:
    client = Redis.from_url(own_redis.url)
    lim = new_limiter(client, on_error="deny", reconnect_s=0.05, timeout_s=ACQUIRE_TIMEOUT_S)
    scopes = key(rpm=10)
    assert await admitted(lim, scopes, 3) == 3
    own_redis.kill()
    started = time.monotonic()
    try:
        await lim.acquire(scopes, ASK)
        raise AssertionError("admitted without Redis under on_error = deny")
    except RouterError as err:
        assert (err.status, err.code) == (503, "limiter_unavailable")
        assert err.headers["retry-after"] == "1"
    assert time.monotonic() - started < BOUND_S
    assert lim.state()["mode"] == "deny" and lim.state()["refused_down"] == 1
    g = await lim.acquire([], ASK)  # unlimited keys are served as ever
    assert g.headers == {}
    own_redis.start()  # empty: no counters, no scripts
    await until_shared(lim)
    assert await admitted(lim, scopes, 30) == 10


async def test_a_killed_redis_falls_back_then_rejoins(
    own_redis: OwnRedis, new_limiter: Make
) -> None:
    client = Redis.from_url(own_redis.url)
    fallback = RecordingLimiter()
    lim = new_limiter(client, fallback=fallback, reconnect_s=0.05, timeout_s=ACQUIRE_TIMEOUT_S)
    scopes = key(rpm=10)
    own_redis.kill()
    started = time.monotonic()
    assert await admitted(lim, scopes, 20) == 20  # all by the fallback
    assert time.monotonic() - started < BOUND_S
    assert len(fallback.acquired) == 20
    own_redis.start()
    await until_shared(lim)
    assert await admitted(lim, scopes, 30) == 10
    assert len(fallback.acquired) == 20
    await client.aclose()


async def test_settles_wait_for_redis_to_come_back(own_redis: OwnRedis, new_limiter: Make) -> None:
    client = Redis.from_url(own_redis.url)
    lim = new_limiter(client, reconnect_s=0.05)
    scopes = key(budget_usd=1.0)
    g = await lim.acquire(scopes, Ask(tokens=1, cost_usd=0.5))
    own_redis.pause()
    try:
        lim.settle(g, 1, 0.3)
        deadline = time.monotonic() + 3
        while lim.shared:  # the batch times out: Redis is marked down
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        assert lim.state()["pending_settles"] == 1
    finally:
        own_redis.resume()
    await until_shared(lim)
    await lim.drain()
    assert lim.state()["pending_settles"] == 0
    spend = [k async for k in client.scan_iter(match="*:spend:*")]
    fields = await client.hgetall(spend[0])
    # charged once, although the first batch may have run when Redis woke
    assert int(fields[b"spent"]) == round(0.3 * NANO)
    assert int(fields[b"rsum"]) == 0
    await client.aclose()


async def test_settles_go_through_the_background_client(
    own_redis: OwnRedis, new_limiter: Make
) -> None:
    # Two Redis servers only to tell the clients apart: acquires on the machine's,
    # settles (and script loads, pings) on the private one.
    hot, bg = Redis.from_url(require_redis()), Redis.from_url(own_redis.url)
    lim = new_limiter(hot, background=bg)
    await lim.start()
    g = await lim.acquire(key(tpm=1000), ASK)
    await bg.config_resetstat()
    lim.settle(g, 500, 0.0)
    await lim.drain()
    stats = await bg.info("commandstats")
    assert stats["cmdstat_evalsha"]["calls"] == 1
    await hot.aclose()
    await bg.aclose()
