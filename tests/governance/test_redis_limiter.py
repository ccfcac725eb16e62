"""The shared counters' semantics, against the machine's real Redis (a namespace per test).

Buckets run on Redis's clock, so these tests use limits whose refill during a test
(milliseconds) cannot add a whole request or a measurable share of the tokens.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from redis.asyncio import Redis

from modelrouter.errors import RouterError
from modelrouter.governance.redis_counters import NANO, period_window
from modelrouter.governance.redis_limiter import RedisLimiter
from modelrouter.governance.types import Ask, Limits, Scope

Make = Callable[..., RedisLimiter]
ASK = Ask(tokens=10, cost_usd=0.0)


def key(kid: str = "k1", **limits: object) -> Scope:
    return Scope("key", kid, Limits(**limits))  # type: ignore[arg-type]


def team(name: str = "t1", **limits: object) -> Scope:
    return Scope("team", name, Limits(**limits))  # type: ignore[arg-type]


async def outcome(lim: RedisLimiter, scopes: list[Scope], ask: Ask = ASK) -> RouterError | None:
    try:
        await lim.acquire(scopes, ask)
    except RouterError as err:
        return err
    return None


async def test_rpm_is_exact_and_the_refusal_says_which_limit(client: Redis, make: Make) -> None:
    lim = make(client)
    scopes = [key(rpm=10)]
    grants = [await lim.acquire(scopes, ASK) for _ in range(10)]
    assert [g.headers["x-ratelimit-remaining-requests"] for g in grants] == [
        str(n) for n in range(9, -1, -1)
    ]
    assert grants[0].headers["x-ratelimit-limit-requests"] == "10"
    assert grants[0].headers["x-ratelimit-reset-requests"] == "6s"  # one request back: 6 s
    assert "x-ratelimit-limit-tokens" not in grants[0].headers
    errors = [await outcome(lim, scopes) for _ in range(20)]
    assert all(e is not None for e in errors)
    err = errors[0]
    assert err is not None
    assert (err.status, err.code, err.type) == (429, "rate_limit_exceeded", "rate_limit_error")
    assert "key 'k1'" in err.message and "rpm" in err.message
    assert err.headers["retry-after"] == "6"


async def test_tpm_settles_the_difference_and_debt_delays(client: Redis, make: Make) -> None:
    lim = make(client)
    scopes = [key(tpm=6000)]  # 100 tokens a second come back
    g = await lim.acquire(scopes, Ask(tokens=4000, cost_usd=0))
    assert int(g.headers["x-ratelimit-remaining-tokens"]) in range(1995, 2001)
    lim.settle(g, 1000, 0)  # used less than estimated: 3000 come back
    await lim.drain()
    g = await lim.acquire(scopes, Ask(tokens=100, cost_usd=0))
    assert int(g.headers["x-ratelimit-remaining-tokens"]) in range(4895, 5901)
    lim.settle(g, 20_000, 0)  # used far more: the bucket is in debt
    await lim.drain()
    err = await outcome(lim, scopes, Ask(tokens=0, cost_usd=0))
    assert err is not None and err.code == "rate_limit_exceeded" and "tpm" in err.message
    # about 15,000 tokens of debt at 100 per second
    assert 140 <= int(err.headers["retry-after"]) <= 152


async def test_a_request_larger_than_the_tpm_limit_needs_a_full_bucket(
    client: Redis, make: Make
) -> None:
    lim = make(client)
    scopes = [key(tpm=1000)]
    await lim.acquire(scopes, Ask(tokens=5000, cost_usd=0))  # full: admitted, deep debt
    err = await outcome(lim, scopes, Ask(tokens=5000, cost_usd=0))
    assert err is not None and 290 <= int(err.headers["retry-after"]) <= 301


async def test_all_or_nothing_across_key_and_team(client: Redis, make: Make) -> None:
    lim = make(client)
    scopes = [key(rpm=2), team(tpm=100)]
    g = await lim.acquire(scopes, Ask(tokens=60, cost_usd=0))
    assert g.headers["x-ratelimit-remaining-requests"] == "1"
    assert int(g.headers["x-ratelimit-remaining-tokens"]) == 40
    err = await outcome(lim, scopes, Ask(tokens=60, cost_usd=0))
    assert err is not None and "team 't1'" in err.message and "tpm" in err.message
    # the refusal took nothing from the key: one request is still left there
    g = await lim.acquire(scopes, Ask(tokens=10, cost_usd=0))
    assert g.headers["x-ratelimit-remaining-requests"] == "0"
    err = await outcome(lim, scopes, Ask(tokens=10, cost_usd=0))
    assert err is not None and "key 'k1'" in err.message and "rpm" in err.message


async def test_headers_show_the_stricter_scope(client: Redis, make: Make) -> None:
    lim = make(client)
    g = await lim.acquire([key(rpm=100), team(rpm=3)], ASK)
    assert g.headers["x-ratelimit-limit-requests"] == "3"
    assert g.headers["x-ratelimit-remaining-requests"] == "2"


async def test_budget_burst_overshoots_by_at_most_the_estimates_in_flight(
    client: Redis, make: Make, ns: str
) -> None:
    seeds: list[tuple[str, str, float]] = []

    async def seed(kind: str, sid: str, since: float) -> float:
        seeds.append((kind, sid, since))
        await asyncio.sleep(0.01)  # a store query
        return 0.95

    lim = make(client, seed=seed)
    scopes = [key(budget_usd=1.0, budget_period="month")]
    ask = Ask(tokens=10, cost_usd=0.01)
    results = await asyncio.gather(
        *(lim.acquire(scopes, ask) for _ in range(50)), return_exceptions=True
    )
    grants = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, RouterError)]
    assert len(grants) == 5 and len(refused) == 45  # 0.95 + 5 x 0.01 = 1.00 exactly
    assert len(seeds) == 1  # one store query for the burst
    assert seeds[0][:2] == ("key", "k1")
    err = refused[0]
    assert (err.status, err.code, err.type) == (429, "insufficient_quota", "insufficient_quota")
    assert err.headers["x-should-retry"] == "false"
    for g in grants:  # each cost twice its estimate
        lim.settle(g, 10, 0.02)
    await lim.drain()
    label, _, _ = period_window("month", (await client.time())[0])
    spend = await client.hgetall(f"{ns}:v1:{{key:k1}}:key:k1:spend:{label}")
    assert int(spend[b"spent"]) == round(1.05 * NANO)  # over by the 5 estimates in flight
    assert int(spend[b"rsum"]) == 0
    assert not [f for f in spend if f.startswith(b"r:")]
    err2 = await outcome(lim, scopes, Ask(tokens=1, cost_usd=0.0))
    assert err2 is not None and err2.code == "insufficient_quota"


async def test_settle_moves_the_reservation_to_spent(client: Redis, make: Make, ns: str) -> None:
    lim = make(client)
    scopes = [team(budget_usd=1.0, budget_period="day")]
    ask = Ask(tokens=10, cost_usd=0.5)
    a = await lim.acquire(scopes, ask)
    await lim.acquire(scopes, ask)
    assert await outcome(lim, scopes, ask) is not None  # 0 spent + 1.0 reserved
    lim.settle(a, 5, 0.1)
    await lim.drain()
    await lim.acquire(scopes, Ask(tokens=10, cost_usd=0.4))  # 0.1 + 0.5 + 0.4
    assert await outcome(lim, scopes, Ask(tokens=10, cost_usd=0.01)) is not None
    # settling twice (a batch sent again after a lost reply) charges once
    lim.settle(a, 5, 0.1)
    await lim.drain()
    label, _, end = period_window("day", (await client.time())[0])
    spend_key = f"{ns}:v1:{{team:t1}}:team:t1:spend:{label}"
    assert int(await client.hget(spend_key, "spent")) == round(0.1 * NANO)  # type: ignore[arg-type]
    # the day's counter expires after the day (plus the requests' deadline and slack)
    assert await client.expiretime(spend_key) == int(end + 600 + 60)


async def test_first_seed_wins_between_replicas(client: Redis, make: Make, ns: str) -> None:
    async def seed_a(kind: str, sid: str, since: float) -> float:
        return 0.5

    async def seed_b(kind: str, sid: str, since: float) -> float:
        return 0.9

    a, b = make(client, seed=seed_a), make(client, seed=seed_b)
    scopes = [key(budget_usd=1.0, budget_period="total")]
    await a.acquire(scopes, Ask(tokens=1, cost_usd=0.4))  # 0.5 + 0.4
    err = await outcome(b, scopes, Ask(tokens=1, cost_usd=0.2))  # b sees 0.5 + 0.4 reserved
    assert err is not None and err.code == "insufficient_quota"
    assert "$0.9000" in err.message
    spend_key = f"{ns}:v1:{{key:k1}}:key:k1:spend:total"
    assert 0 < await client.ttl(spend_key) <= 35 * 86_400  # re-seeded after disuse


async def test_expired_reservations_are_dropped(client: Redis, make: Make) -> None:
    # a replica that died mid-request never settles: its reservation lapses after
    # the request's deadline plus the slack (here 0.2 s in all)
    dead = make(client, request_timeout_s=0.2, reservation_slack_s=0.0)
    scopes = [key(budget_usd=1.0)]
    await dead.acquire(scopes, Ask(tokens=1, cost_usd=0.7))
    live = make(client)
    assert await outcome(live, scopes, Ask(tokens=1, cost_usd=0.7)) is not None
    await asyncio.sleep(0.3)
    g = await live.acquire(scopes, Ask(tokens=1, cost_usd=0.7))
    assert g.headers == {}  # budgets alone set no x-ratelimit headers


async def test_unlimited_scopes_never_touch_redis(client: Redis, make: Make, ns: str) -> None:
    lim = make(client)
    g = await lim.acquire([], ASK)
    lim.settle(g, 10, 0.0)
    await lim.drain()
    assert [k async for k in client.scan_iter(match=f"{ns}:*")] == []


async def test_buckets_expire_once_full_again(client: Redis, make: Make, ns: str) -> None:
    lim = make(client)
    await lim.acquire([key(rpm=60, tpm=600)], Ask(tokens=300, cost_usd=0))
    # 1 s to refill one request, 30 s for 300 of 600 tokens: the longer, plus 1 s
    assert 30_900 <= await client.pttl(f"{ns}:v1:{{key:k1}}:key:k1:rate") <= 31_000


@pytest.mark.parametrize("rpm", [0])
async def test_zero_limit_refuses_everything(client: Redis, make: Make, rpm: int) -> None:
    err = await outcome(make(client), [key(rpm=rpm)])
    assert err is not None and err.code == "rate_limit_exceeded"
    assert err.headers["retry-after"] == "60"
