"""The shared counters' rules, against the machine's real Redis (a key prefix per test).

The rules are the per-process limiter's (``test_limiter.py``, ``test_budget.py``); the
answers come from the same helpers (``wire.py``). Buckets run on Redis's clock, so
these tests use limits whose refill during a test (milliseconds) cannot add a whole
request or a measurable share of the tokens.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from redis.asyncio import Redis

from modelrouter.governance.redis_counters import NANO, period_window
from modelrouter.governance.redis_limiter import RedisLimiter
from modelrouter.governance.types import Ask, Limits, Scope
from modelrouter.governance.wire import LimitExceeded
from tests.governance.shared.conftest import Spend

Make = Callable[..., RedisLimiter]
ASK = Ask(tokens=10, cost_usd=0.0)


def key(kid: str = "k1", **limits: object) -> Scope:
    return Scope("key", kid, Limits(**limits))  # type: ignore[arg-type]


def team(name: str = "t1", **limits: object) -> Scope:
    return Scope("team", name, Limits(**limits))  # type: ignore[arg-type]


async def outcome(lim: RedisLimiter, scopes: list[Scope], ask: Ask = ASK) -> LimitExceeded | None:
    try:
        await lim.acquire(scopes, ask)
    except LimitExceeded as err:
        return err
    return None


async def spend_of(r: Redis, ns: str, tag: str, label: str, period: str) -> dict[bytes, bytes]:
    window, _, _ = period_window(period, (await r.time())[0])  # type: ignore[arg-type]
    return await r.hgetall(f"{ns}:lim1:{{{tag}}}:{label}:spend:{window}")  # type: ignore[no-any-return]


async def test_rpm_is_exact_and_the_refusal_says_which_limit(
    redis_client: Redis, new_limiter: Make
) -> None:
    lim = new_limiter(redis_client)
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
    assert (err.status, err.code, err.type, err.reason) == (
        429,
        "rate_limit_exceeded",
        "rate_limit_error",
        "rpm",
    )
    assert "this key's limit of 10 requests per minute (rpm)" in err.message
    assert err.headers["retry-after"] == "6"
    assert 5900 <= int(err.headers["retry-after-ms"]) <= 6000
    assert err.headers["x-ratelimit-remaining-requests"] == "0"
    assert lim.peek(scopes)["x-ratelimit-remaining-requests"] == "0"


async def test_tpm_settles_the_difference_and_debt_delays(
    redis_client: Redis, new_limiter: Make
) -> None:
    lim = new_limiter(redis_client)
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
    assert err is not None and err.reason == "tpm"
    # about 15,000 tokens of debt at 100 per second
    assert 140 <= int(err.headers["retry-after"]) <= 152
    assert err.headers["x-ratelimit-remaining-tokens"] == "0"


async def test_a_request_larger_than_the_tpm_limit_needs_a_full_bucket(
    redis_client: Redis, new_limiter: Make
) -> None:
    lim = new_limiter(redis_client)
    scopes = [key(tpm=1000)]
    await lim.acquire(scopes, Ask(tokens=5000, cost_usd=0))  # full: admitted, deep debt
    err = await outcome(lim, scopes, Ask(tokens=5000, cost_usd=0))
    assert err is not None and 290 <= int(err.headers["retry-after"]) <= 301
    assert "more than a minute's limit" in err.message


async def test_all_or_nothing_across_key_and_team(redis_client: Redis, new_limiter: Make) -> None:
    lim = new_limiter(redis_client)
    scopes = [key(rpm=2), team(tpm=100)]
    g = await lim.acquire(scopes, Ask(tokens=60, cost_usd=0))
    assert g.headers["x-ratelimit-remaining-requests"] == "1"
    assert int(g.headers["x-ratelimit-remaining-tokens"]) == 40
    err = await outcome(lim, scopes, Ask(tokens=60, cost_usd=0))
    assert err is not None and err.reason == "tpm" and err.scope_kind == "team"
    assert "team 't1''s limit of 100 tokens per minute" in err.message
    # the refusal took nothing from the key: one request is still left there
    g = await lim.acquire(scopes, Ask(tokens=10, cost_usd=0))
    assert g.headers["x-ratelimit-remaining-requests"] == "0"
    err = await outcome(lim, scopes, Ask(tokens=10, cost_usd=0))
    assert err is not None and err.reason == "rpm" and err.scope_kind == "key"


async def test_headers_show_the_stricter_scope(redis_client: Redis, new_limiter: Make) -> None:
    lim = new_limiter(redis_client)
    scopes = [key(rpm=100), team(rpm=3)]
    assert lim.peek(scopes)["x-ratelimit-remaining-requests"] == "3"  # nothing known: full
    g = await lim.acquire(scopes, ASK)
    assert g.headers["x-ratelimit-limit-requests"] == "3"
    assert g.headers["x-ratelimit-remaining-requests"] == "2"


async def test_budget_burst_overshoots_by_at_most_the_estimates_in_flight(
    redis_client: Redis, new_limiter: Make, ns: str
) -> None:
    store = Spend(0.95, delay_s=0.01)
    lim = new_limiter(redis_client, source=store)
    scopes = [key(budget_usd=1.0, budget_period="month")]
    ask = Ask(tokens=10, cost_usd=0.01)
    results = await asyncio.gather(
        *(lim.acquire(scopes, ask) for _ in range(50)), return_exceptions=True
    )
    grants = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, LimitExceeded)]
    # admitted while spent + reserved < budget: 0.95, 0.96, ..., 0.99
    assert len(grants) == 5 and len(refused) == 45
    assert len(store.reads) == 1  # one store query for the burst
    assert store.reads[0][:2] == ("key", "k1")
    err = refused[0]
    assert (err.status, err.code, err.type, err.reason) == (
        429,
        "insufficient_quota",
        "insufficient_quota",
        "budget",
    )
    assert err.headers["x-should-retry"] == "false"
    assert "$0.9500 is spent and $0.0500 held by requests still running" in err.message
    assert "It renews at" in err.message
    for g in grants:  # each cost twice its estimate
        lim.settle(g, 10, 0.02)
    await lim.drain()
    spend = await spend_of(redis_client, ns, "key:k1", "key:k1", "month")
    assert int(spend[b"spent"]) == round(1.05 * NANO)  # over by the 5 estimates in flight
    assert int(spend[b"rsum"]) == 0
    assert not [f for f in spend if f.startswith(b"r:")]
    err2 = await outcome(lim, scopes, Ask(tokens=1, cost_usd=0.0))
    assert err2 is not None and err2.code == "insufficient_quota"


async def test_settle_moves_the_reservation_to_spent(
    redis_client: Redis, new_limiter: Make, ns: str
) -> None:
    lim = new_limiter(redis_client)
    scopes = [team(budget_usd=1.0, budget_period="day")]
    ask = Ask(tokens=10, cost_usd=0.5)
    a = await lim.acquire(scopes, ask)
    await lim.acquire(scopes, ask)
    assert await outcome(lim, scopes, ask) is not None  # 0 spent + 1.0 reserved
    lim.settle(a, 5, 0.1)
    await lim.drain()
    await lim.acquire(scopes, Ask(tokens=10, cost_usd=0.4))  # 0.1 + 0.5 < 1
    assert await outcome(lim, scopes, Ask(tokens=10, cost_usd=0.01)) is not None
    # settling twice (a batch sent again after a lost reply) charges once
    lim.settle(a, 5, 0.1)
    await lim.drain()
    spend = await spend_of(redis_client, ns, "team:t1", "team:t1", "day")
    assert int(spend[b"spent"]) == round(0.1 * NANO)
    assert int(spend[b"rsum"]) == round(0.9 * NANO)
    # the day's counter expires after the day plus the requests' deadline and slack
    label, _, end = period_window("day", (await redis_client.time())[0])
    spend_key = f"{ns}:lim1:{{team:t1}}:team:t1:spend:{label}"
    assert await redis_client.expiretime(spend_key) == int(end + 600 + 60)


async def test_first_seed_wins_between_replicas(
    redis_client: Redis, new_limiter: Make, ns: str
) -> None:
    a = new_limiter(redis_client, source=Spend(0.5))
    b = new_limiter(redis_client, source=Spend(0.9))
    scopes = [key(budget_usd=1.0, budget_period="total")]
    await a.acquire(scopes, Ask(tokens=1, cost_usd=0.5))  # seeds 0.5, reserves 0.5
    err = await outcome(b, scopes, Ask(tokens=1, cost_usd=0.2))  # b reads no store at all
    assert err is not None and err.code == "insufficient_quota"
    assert "$0.5000 is spent and $0.5000 held" in err.message
    assert "It does not renew" in err.message
    spend_key = f"{ns}:lim1:{{key:k1}}:key:k1:spend:total"
    assert 0 < await redis_client.ttl(spend_key) <= 35 * 86_400  # re-seeded after that


async def test_expired_reservations_are_dropped(redis_client: Redis, new_limiter: Make) -> None:
    # a replica that died mid-request never settles: its reservation lapses after
    # the request's deadline plus the slack (here 0.2 s in all)
    dead = new_limiter(redis_client, request_timeout_s=0.2, reservation_slack_s=0.0)
    scopes = [key(budget_usd=1.0)]
    await dead.acquire(scopes, Ask(tokens=1, cost_usd=1.0))
    live = new_limiter(redis_client)
    assert await outcome(live, scopes, Ask(tokens=1, cost_usd=0.1)) is not None
    await asyncio.sleep(0.3)
    g = await live.acquire(scopes, Ask(tokens=1, cost_usd=0.1))
    assert g.headers == {}  # budgets alone set no x-ratelimit headers


async def test_unlimited_scopes_never_touch_redis(
    redis_client: Redis, new_limiter: Make, ns: str
) -> None:
    lim = new_limiter(redis_client)
    g = await lim.acquire([], ASK)
    lim.settle(g, 10, 0.0)
    await lim.drain()
    assert [k async for k in redis_client.scan_iter(match=f"{ns}:*")] == []


async def test_buckets_expire_once_full_again(
    redis_client: Redis, new_limiter: Make, ns: str
) -> None:
    lim = new_limiter(redis_client)
    await lim.acquire([key(rpm=60, tpm=600)], Ask(tokens=300, cost_usd=0))
    # 1 s to refill one request, 30 s for 300 of 600 tokens: the longer, plus 1 s
    assert 30_900 <= await redis_client.pttl(f"{ns}:lim1:{{key:k1}}:key:k1:rate") <= 31_000


@pytest.mark.parametrize("limits", [{"rpm": 0}, {"tpm": 0}])
async def test_zero_limit_refuses_everything(
    redis_client: Redis, new_limiter: Make, limits: dict[str, int]
) -> None:
    err = await outcome(new_limiter(redis_client), [key(**limits)])
    assert err is not None and err.code == "rate_limit_exceeded"
    assert err.headers["retry-after"] == "60"


async def test_a_store_that_cannot_seed_sends_the_request_to_the_fallback(
    redis_client: Redis, new_limiter: Make
) -> None:
    class Broken(Spend):
        async def one(self, kind: str, id: str, since: float) -> float:
            raise OSError("the store is down")

    lim = new_limiter(redis_client, source=Broken(0.0))
    scopes = [key(budget_usd=1.0)]
    g = await lim.acquire(scopes, Ask(tokens=1, cost_usd=0.1))
    assert g.token == "local"  # the RecordingLimiter's grant
    assert lim.shared  # Redis itself is fine


async def test_settles_of_many_requests_and_scope_sets_in_one_flush(
    redis_client: Redis, new_limiter: Make, ns: str
) -> None:
    lim = new_limiter(redis_client)
    sets = [[key("a", tpm=6000, budget_usd=10.0)], [key("b", tpm=6000, budget_usd=10.0)]]
    grants = [await lim.acquire(s, Ask(tokens=500, cost_usd=0.5)) for s in sets for _ in range(4)]
    for g in grants:  # each used 100 tokens and cost 0.25: one script per scope set
        lim.settle(g, 100, 0.25)
    await lim.drain()
    for kid, scopes in (("a", sets[0]), ("b", sets[1])):
        spend = await spend_of(redis_client, ns, f"key:{kid}", f"key:{kid}", "month")
        assert (int(spend[b"spent"]), int(spend[b"rsum"])) == (NANO, 0)
        g = await lim.acquire(scopes, Ask(tokens=0, cost_usd=0))
        # 4 x 500 taken, 4 x 400 given back: 400 short of full (plus a little refill)
        assert 5600 <= int(g.headers["x-ratelimit-remaining-tokens"]) <= 5700


async def test_nothing_to_reconcile_sends_no_settle(redis_client: Redis, new_limiter: Make) -> None:
    lim = new_limiter(redis_client)
    g = await lim.acquire([key(rpm=100)], ASK)
    lim.settle(g, 999, 1.0)  # rpm alone: what a request used changes nothing
    g = await lim.acquire([key("k2", tpm=1000)], Ask(tokens=50, cost_usd=0))
    lim.settle(g, 50, 0.0)  # tokens as estimated
    assert lim.state()["pending_settles"] == 0
    g = await lim.acquire([key("k2", tpm=1000)], Ask(tokens=50, cost_usd=0))
    lim.settle(g, 60, 0.0)
    assert lim.state()["pending_settles"] == 1
