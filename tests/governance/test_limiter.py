"""The per-process limiter's token buckets, with an injected clock (no sleeping)."""

from __future__ import annotations

import pytest

from modelrouter.governance.limiter import LocalLimiter, TokenBucket
from modelrouter.governance.types import Ask, Limits, Scope
from modelrouter.governance.wire import LimitExceeded
from tests.fakes.clock import FakeClock


def key(**limits: object) -> Scope:
    return Scope("key", "k1", Limits(**limits))  # type: ignore[arg-type]


def team(**limits: object) -> Scope:
    return Scope("team", "research", Limits(**limits))  # type: ignore[arg-type]


def limiter(clock: FakeClock) -> LocalLimiter:
    return LocalLimiter(clock=clock, wall=lambda: 1_800_000_000.0)


async def refused(lim: LocalLimiter, scopes: list[Scope], ask: Ask) -> LimitExceeded:
    with pytest.raises(LimitExceeded) as info:
        await lim.acquire(scopes, ask)
    return info.value


ONE = Ask(1, 0.0)


async def test_rpm_bucket_starts_full_then_refills_at_limit_per_60s() -> None:
    clock = FakeClock()
    lim = limiter(clock)
    scopes = [key(rpm=3)]
    for _ in range(3):
        await lim.acquire(scopes, ONE)
    err = await refused(lim, scopes, ONE)
    assert (err.status, err.code, err.type, err.reason) == (
        429,
        "rate_limit_exceeded",
        "rate_limit_error",
        "rpm",
    )
    # One request per 20 s flows back in.
    assert err.headers["retry-after"] == "20"
    assert err.headers["retry-after-ms"] == "20000"
    assert "this key's limit of 3 requests per minute (rpm)" in err.message
    clock.advance(19.9)
    await refused(lim, scopes, ONE)
    clock.advance(0.1)
    grant = await lim.acquire(scopes, ONE)
    assert grant.headers["x-ratelimit-remaining-requests"] == "0"


async def test_retry_after_rounds_up_to_whole_seconds() -> None:
    clock = FakeClock()
    lim = limiter(clock)
    scopes = [key(rpm=120)]  # one every 0.5 s
    for _ in range(120):
        await lim.acquire(scopes, ONE)
    err = await refused(lim, scopes, ONE)
    assert err.headers["retry-after"] == "1"
    assert err.headers["retry-after-ms"] == "1000"


async def test_tpm_takes_the_estimate_and_settle_refunds_the_difference() -> None:
    clock = FakeClock()
    lim = limiter(clock)
    scopes = [key(tpm=1000)]
    first = await lim.acquire(scopes, Ask(600, 0.0))
    assert first.headers["x-ratelimit-remaining-tokens"] == "400"
    err = await refused(lim, scopes, Ask(600, 0.0))
    assert err.reason == "tpm"
    # 200 tokens short at 1000/60 a second: 12 s.
    assert err.headers["retry-after"] == "12"
    lim.settle(first, 100, 0.0)  # used 100 of the 600 reserved
    second = await lim.acquire(scopes, Ask(600, 0.0))
    assert second.headers["x-ratelimit-remaining-tokens"] == "300"


async def test_tpm_debt_delays_the_requests_that_follow() -> None:
    clock = FakeClock()
    lim = limiter(clock)
    scopes = [key(tpm=600)]  # 10 tokens a second
    grant = await lim.acquire(scopes, Ask(100, 0.0))
    lim.settle(grant, 1300, 0.0)  # 1,200 more than estimated: level 600 - 1300 = -700
    err = await refused(lim, scopes, Ask(100, 0.0))
    assert err.headers["retry-after"] == "80"  # (100 - -700) / 10
    assert err.headers["x-ratelimit-remaining-tokens"] == "0"
    clock.advance(80)
    await lim.acquire(scopes, Ask(100, 0.0))


async def test_a_request_larger_than_the_tpm_limit_waits_for_a_full_bucket() -> None:
    clock = FakeClock()
    lim = limiter(clock)
    scopes = [key(tpm=600)]
    await lim.acquire(scopes, Ask(1000, 0.0))  # full bucket: admitted, level -400
    err = await refused(lim, scopes, Ask(1000, 0.0))
    assert err.headers["retry-after"] == "100"  # back to full (600) from -400 at 10/s
    assert "more than a minute's limit" in err.message
    clock.advance(100)
    await lim.acquire(scopes, Ask(1000, 0.0))


async def test_every_scope_must_have_room_and_a_refusal_takes_nothing() -> None:
    clock = FakeClock()
    lim = limiter(clock)
    scopes = [key(rpm=10), team(rpm=2)]
    await lim.acquire(scopes, ONE)
    grant = await lim.acquire(scopes, ONE)
    # The stricter (least remaining) is reported: the team's 0, not the key's 8.
    assert grant.headers["x-ratelimit-limit-requests"] == "2"
    assert grant.headers["x-ratelimit-remaining-requests"] == "0"
    err = await refused(lim, scopes, ONE)
    assert err.scope_kind == "team"
    assert "team 'research''s limit of 2 requests per minute" in err.message
    # The key's bucket was not charged for the refused request.
    assert lim.peek([key(rpm=10)])["x-ratelimit-remaining-requests"] == "8"


async def test_the_longest_wait_names_the_limit_and_sets_retry_after() -> None:
    clock = FakeClock()
    lim = limiter(clock)
    scopes = [key(rpm=60, tpm=600), team(tpm=60)]
    await lim.acquire(scopes, Ask(60, 0.0))
    # Key rpm has room; key tpm needs 60 - 540 → room; team tpm: 0 left, 60 s to 60.
    err = await refused(lim, scopes, Ask(60, 0.0))
    assert (err.scope_kind, err.reason, err.headers["retry-after"]) == ("team", "tpm", "60")


async def test_headers_format_reset_as_openai_durations() -> None:
    clock = FakeClock()
    lim = limiter(clock)
    grant = await lim.acquire([key(rpm=1, tpm=120_000)], Ask(30_000, 0.0))
    assert grant.headers == {
        "x-ratelimit-limit-requests": "1",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "1m0s",
        "x-ratelimit-limit-tokens": "120000",
        "x-ratelimit-remaining-tokens": "90000",
        "x-ratelimit-reset-tokens": "15s",
    }


async def test_a_limit_of_zero_refuses_everything() -> None:
    lim = limiter(FakeClock())
    err = await refused(lim, [key(rpm=0)], ONE)
    assert err.headers["retry-after"] == "60"


async def test_peek_counts_nothing_and_shows_untouched_scopes_as_full() -> None:
    lim = limiter(FakeClock())
    scopes = [key(rpm=5, tpm=100)]
    assert lim.peek(scopes)["x-ratelimit-remaining-requests"] == "5"
    assert lim.peek(scopes)["x-ratelimit-remaining-requests"] == "5"
    await lim.acquire(scopes, Ask(10, 0.0))
    assert lim.peek(scopes)["x-ratelimit-remaining-tokens"] == "90"


async def test_edited_limits_keep_the_level_within_the_new_capacity() -> None:
    clock = FakeClock()
    lim = limiter(clock)
    await lim.acquire([key(rpm=10)], ONE)
    await lim.acquire([key(rpm=10)], ONE)
    grant = await lim.acquire([key(rpm=5)], ONE)  # lowered: 8 left → capped at 5, minus 1
    assert grant.headers["x-ratelimit-remaining-requests"] == "4"
    grant = await lim.acquire([key(rpm=5, tpm=100)], Ask(40, 0.0))  # tpm added: starts full
    assert grant.headers["x-ratelimit-remaining-tokens"] == "60"
    grant = await lim.acquire([key(tpm=100)], Ask(10, 0.0))  # rpm removed
    assert "x-ratelimit-limit-requests" not in grant.headers


async def test_idle_rate_limited_scopes_are_forgotten_once_full_again() -> None:
    clock = FakeClock()
    lim = limiter(clock)
    grant = await lim.acquire([key(rpm=60)], ONE)
    assert lim.sweep() == 0  # a request is running
    lim.settle(grant, 1, 0.0)
    assert lim.sweep() == 0  # not full yet: forgetting would hand back a request
    clock.advance(1)
    assert lim.sweep() == 1
    assert lim.state()["scopes"] == 0


def test_bucket_refill_is_capped_at_capacity() -> None:
    bucket = TokenBucket(60, now=0.0)
    bucket.level = 0
    bucket.refill(30.0)
    assert bucket.level == 30
    bucket.refill(1000.0)
    assert bucket.level == 60
    bucket.charge(-50)  # a refund past full stays full
    assert bucket.level == 60
