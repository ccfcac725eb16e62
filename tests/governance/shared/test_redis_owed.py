"""What the fallback's requests spent while Redis was away reaches Redis's budget
counters when it is back, and is not counted twice when Redis restarted meanwhile.

Each test runs a ``redis-server`` of its own: pausing it keeps its counters (the same
server, as for a replica cut off by the network), killing and starting it again loses
them (a restart, after which counters are seeded from the store).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from redis.asyncio import Redis

from modelrouter.governance.limiter import LocalLimiter
from modelrouter.governance.redis_counters import NANO
from modelrouter.governance.redis_limiter import RedisLimiter
from modelrouter.governance.redis_watch import TIMEOUTS_TO_DOWN
from modelrouter.governance.types import Ask, Limits, Scope
from tests.governance.shared.conftest import RecordingLimiter, Spend
from tests.governance.shared.redis_service import OwnRedis

Make = Callable[..., RedisLimiter]
SCOPES = [Scope("key", "k1", Limits(budget_usd=10.0))]
ASK = Ask(tokens=10, cost_usd=0.01)


async def spent(client: Redis) -> float:
    (name,) = [k async for k in client.scan_iter(match="*:spend:*")]
    return int(await client.hget(name, "spent")) / NANO  # type: ignore[arg-type]


async def until(check: Callable[[], bool], what: str, within_s: float = 5.0) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def go_down(lim: RedisLimiter) -> None:
    """Requests until the limiter counts Redis as down (each waits the bound)."""
    for _ in range(TIMEOUTS_TO_DOWN):
        lim.settle(await lim.acquire(SCOPES, ASK), 10, 0.0)
    assert not lim.shared


async def test_spend_during_an_outage_is_added_when_redis_is_back(
    own_redis: OwnRedis, new_limiter: Make
) -> None:
    client = Redis.from_url(own_redis.url)
    store = Spend(1.0)
    lim = new_limiter(client, fallback=LocalLimiter(source=store), source=store, reconnect_s=0.05)
    await lim.start()
    g = await lim.acquire(SCOPES, ASK)  # seeds the counter with the store's 1.0
    lim.settle(g, 10, 0.5)
    await lim.drain()
    assert await spent(client) == 1.5
    own_redis.pause()
    try:
        await go_down(lim)
        for cost in (0.25, 0.125):  # admitted per process, spend owed to Redis
            lim.settle(await lim.acquire(SCOPES, ASK), 10, cost)
        assert lim.state()["owed_usd"] == 0.375
    finally:
        own_redis.resume()
    await until(lambda: lim.state()["owed_usd"] == 0, "the owed spend to be paid")
    assert await spent(client) == 1.875
    state = lim.state()
    assert (state["owed_paid_usd"], state["owed_dropped_usd"]) == (0.375, 0.0)
    await client.aclose()


async def test_owed_spend_is_dropped_after_a_restart_that_reseeds_from_the_store(
    own_redis: OwnRedis, new_limiter: Make
) -> None:
    client = Redis.from_url(own_redis.url)
    store = Spend(1.0)
    lim = new_limiter(client, fallback=LocalLimiter(source=store), source=store, reconnect_s=0.05)
    await lim.start()
    lim.settle(await lim.acquire(SCOPES, ASK), 10, 0.5)
    await lim.drain()
    own_redis.kill()
    lim.settle(await lim.acquire(SCOPES, ASK), 10, 0.25)  # fallback: owed
    assert not lim.shared and lim.state()["owed_usd"] == 0.25
    store.usd = 1.75  # what the call log now holds: the outage's calls included
    own_redis.start()  # a new server: no counters
    await until(lambda: lim.shared and lim.state()["owed_usd"] == 0, "the rejoin")
    await until(lambda: lim.state()["owed_dropped_usd"] == 0.25, "the drop")
    lim.settle(await lim.acquire(SCOPES, ASK), 10, 0.0)  # seeded again, once
    await lim.drain()
    assert await spent(client) == 1.75
    assert lim.state()["owed_paid_usd"] == 0
    await client.aclose()


async def test_a_counter_gone_meanwhile_is_left_to_the_store(
    own_redis: OwnRedis, new_limiter: Make
) -> None:
    client = Redis.from_url(own_redis.url)
    store = Spend(0.0)
    lim = new_limiter(client, fallback=LocalLimiter(source=store), source=store, reconnect_s=0.05)
    await lim.start()
    lim.settle(await lim.acquire(SCOPES, ASK), 10, 0.5)
    await lim.drain()
    # Same server, but the counter expires (its period ended) before the payment.
    await client.delete(*[k async for k in client.scan_iter(match="*:spend:*")])
    own_redis.pause()
    try:
        await go_down(lim)
        lim.settle(await lim.acquire(SCOPES, ASK), 10, 0.25)
        assert lim.state()["owed_usd"] == 0.25
    finally:
        own_redis.resume()
    await until(lambda: lim.state()["owed_usd"] == 0, "the payment")
    assert [k async for k in client.scan_iter(match="*:spend:*")] == []
    assert lim.state()["owed_paid_usd"] == 0
    await client.aclose()


async def test_a_limiter_on_the_cluster_link_follows_it(own_redis: OwnRedis) -> None:
    # The router's shape: the limiter uses the process's link (its clients, its
    # namespace), goes down as soon as the link's supervisor finds Redis gone, with no
    # request paying a timeout to find out, and leaves the link's clients open.
    from modelrouter.cluster.link import RedisLink

    link = RedisLink(own_redis.url, namespace="linked", ping_every_s=0.05)
    await link.start()
    fallback = RecordingLimiter()
    lim = RedisLimiter.on_link(link, fallback=fallback, reconnect_s=0.05)
    try:
        await lim.start()
        scopes = [Scope("key", "k1", Limits(rpm=100))]
        await lim.acquire(scopes, ASK)
        keys = [k async for k in link.bg.scan_iter(match="*")]
        assert [k.decode() for k in keys] == ["modelrouter:v1:linked:lim1:{key:k1}:key:k1:rate"], (
            keys
        )
        own_redis.kill()
        await until(lambda: not link.ok, "the link to see Redis gone")
        assert not lim.shared  # told by the link, not by a timed-out request
        started = time.monotonic()
        g = await lim.acquire(scopes, ASK)
        assert time.monotonic() - started < 0.01 and g.token == "local"
        own_redis.start()
        await until(lambda: lim.shared, "the limiter to rejoin")
        assert (await lim.acquire(scopes, ASK)).token != "local"
    finally:
        await lim.aclose()
    assert await link.hot.ping()  # the link's clients are the link's to close
    await link.stop()
