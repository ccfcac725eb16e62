"""Budgets in the limiter: the admission rule, seeding and refreshing from a spend
source, period rollover, with injected clocks."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import UTC, datetime

import pytest

from modelrouter.governance.limiter import IDLE_S, LocalLimiter
from modelrouter.governance.types import Ask, Limits, Scope, ScopeKind
from modelrouter.governance.wire import LimitExceeded
from tests.fakes.clock import FakeClock

DAY_2027_03_10_NOON = datetime(2027, 3, 10, 12, tzinfo=UTC).timestamp()
DAY_START = datetime(2027, 3, 10, tzinfo=UTC).timestamp()
NEXT_DAY = datetime(2027, 3, 11, tzinfo=UTC).timestamp()


class Source:
    """A spend source whose answers the test sets (what the store would hold)."""

    def __init__(self, spent: float = 0.0) -> None:
        self.spent: dict[tuple[str, float], float] = {}
        self.default = spent
        self.one_calls: list[tuple[str, str, float]] = []
        self.many_calls = 0
        self.gate: asyncio.Event | None = None
        self.fail = False

    async def one(self, kind: ScopeKind, id: str, since: float) -> float:
        self.one_calls.append((kind, id, since))
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise OSError("store down")
        return self.spent.get((id, since), self.default)

    async def many(self, kind: ScopeKind, since: float, ids: Iterable[str]) -> dict[str, float]:
        self.many_calls += 1
        if self.fail:
            raise OSError("store down")
        return {i: self.spent.get((i, since), self.default) for i in ids}


class Wall:
    def __init__(self, t: float = DAY_2027_03_10_NOON) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def budget(usd: float, period: str = "day") -> Scope:
    return Scope("key", "k1", Limits(budget_usd=usd, budget_period=period))  # type: ignore[arg-type]


def make(source: Source | None = None, **kw: float) -> tuple[LocalLimiter, FakeClock, Wall]:
    clock, wall = FakeClock(), Wall()
    return LocalLimiter(source=source, clock=clock, wall=wall, **kw), clock, wall


async def quota_refused(lim: LocalLimiter, scope: Scope, ask: Ask) -> LimitExceeded:
    with pytest.raises(LimitExceeded) as info:
        await lim.acquire([scope], ask)
    return info.value


async def test_admitted_while_spent_plus_running_estimates_is_below_the_budget() -> None:
    lim, _, _ = make()
    scope = budget(1.0)
    ask = Ask(10, 0.4)
    grants = [await lim.acquire([scope], ask) for _ in range(3)]  # 0, 0.4, 0.8 held before each
    err = await quota_refused(lim, scope, ask)  # 1.2 held
    assert (err.status, err.code, err.type, err.reason) == (
        429,
        "insufficient_quota",
        "insufficient_quota",
        "budget",
    )
    assert err.headers["x-should-retry"] == "false"
    assert "retry-after" not in err.headers
    assert "$1.00 per day" in err.message and "renews at 2027-03-11T00:00:00Z" in err.message
    lim.settle(grants[0], 10, 0.1)  # the real cost replaces the estimate: 0.1 + 0.8 held
    await lim.acquire([scope], ask)
    await quota_refused(lim, scope, ask)  # 0.1 + 1.2


async def test_a_failed_request_gives_its_reservation_back() -> None:
    lim, _, _ = make()
    scope = budget(1.0)
    grant = await lim.acquire([scope], Ask(10, 5.0))  # an estimate beyond the whole budget
    await quota_refused(lim, scope, Ask(10, 0.01))
    lim.settle(grant, 0, 0.0)
    await lim.acquire([scope], Ask(10, 0.01))


async def test_a_budget_of_zero_admits_nothing() -> None:
    lim, _, _ = make()
    await quota_refused(lim, budget(0.0), Ask(1, 0.0))


async def test_total_budgets_say_they_do_not_renew() -> None:
    lim, _, _ = make()
    scope = budget(0.5, "total")
    grant = await lim.acquire([scope], Ask(1, 0.0))
    lim.settle(grant, 1, 0.5)
    err = await quota_refused(lim, scope, Ask(1, 0.0))
    assert "in total" in err.message and "does not renew" in err.message


async def test_spend_is_seeded_from_the_store_once_for_concurrent_first_requests() -> None:
    source = Source()
    source.spent[("k1", DAY_START)] = 0.95
    source.gate = asyncio.Event()
    lim, _, _ = make(source)
    scope = budget(1.0)
    tasks = [asyncio.create_task(lim.acquire([scope], Ask(1, 0.04))) for _ in range(5)]
    await asyncio.sleep(0)
    source.gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    # One read, from the start of the UTC day; 0.95 + 0.04 * n < 1.0 admits two.
    assert source.one_calls == [("key", "k1", DAY_START)]
    assert sum(not isinstance(r, BaseException) for r in results) == 2
    assert all(isinstance(r, LimitExceeded) for r in results if isinstance(r, BaseException))


async def test_a_store_that_does_not_answer_delays_the_first_request_only_so_long() -> None:
    source = Source()
    source.gate = asyncio.Event()  # never set: the store hangs
    lim, _, _ = make(source, seed_timeout_s=0.05)
    await lim.acquire([budget(1.0)], Ask(1, 0.1))
    await lim.acquire([budget(1.0)], Ask(1, 0.1))  # no second wait
    assert len(source.one_calls) == 1
    source.gate.set()  # let the read finish before the loop closes
    await asyncio.sleep(0.01)


async def test_a_store_error_counts_locally_and_the_refresh_catches_up() -> None:
    source = Source(0.0)
    source.fail = True
    lim, _, _ = make(source)
    scope = budget(1.0)
    grant = await lim.acquire([scope], Ask(1, 0.1))
    lim.settle(grant, 1, 0.3)
    assert lim.state()["budget_store_errors"] == 1
    source.fail = False
    source.spent[("k1", DAY_START)] = 2.0  # other workers spent it all
    await lim.refresh()
    assert source.many_calls == 1
    await quota_refused(lim, scope, Ask(1, 0.0))


async def test_a_refresh_never_lowers_spend_and_keeps_what_finished_during_the_read() -> None:
    source = Source(0.0)
    lim, _, _ = make(source)
    scope = budget(1.0)
    grant = await lim.acquire([scope], Ask(1, 0.0))
    lim.settle(grant, 1, 0.7)  # finished here, not yet in the store
    await lim.refresh()  # the store says 0.0: the local 0.7 stays
    (state,) = lim.budget_states()
    assert state.spent == pytest.approx(0.7)
    source.spent[("k1", DAY_START)] = 0.9  # the 0.7 written, plus 0.2 from another worker
    await lim.refresh()
    assert state.spent == pytest.approx(0.9)


async def test_a_new_period_starts_from_zero_and_reads_the_store_again() -> None:
    source = Source(0.0)
    source.spent[("k1", DAY_START)] = 5.0
    lim, _, wall = make(source)
    scope = budget(1.0)
    await quota_refused(lim, scope, Ask(1, 0.0))
    wall.t = NEXT_DAY + 1
    await lim.acquire([scope], Ask(1, 0.0))
    assert source.one_calls[-1] == ("key", "k1", NEXT_DAY)


async def test_without_a_store_spend_counts_from_zero_in_this_process() -> None:
    lim, clock, _ = make(None)
    scope = budget(1.0)
    grant = await lim.acquire([scope], Ask(1, 0.0))
    lim.settle(grant, 1, 1.0)
    await quota_refused(lim, scope, Ask(1, 0.0))
    clock.advance(IDLE_S * 10)
    assert lim.sweep() == 0  # nothing could bring the spend back: kept


async def test_budget_scopes_with_a_store_are_forgotten_when_idle() -> None:
    source = Source(0.0)
    lim, clock, _ = make(source)
    grant = await lim.acquire([budget(1.0)], Ask(1, 0.0))
    lim.settle(grant, 1, 0.5)
    clock.advance(IDLE_S / 2)
    assert lim.sweep() == 0
    clock.advance(IDLE_S)
    assert lim.sweep() == 1


async def test_a_changed_period_reads_the_new_period_and_keeps_running_estimates() -> None:
    source = Source(0.0)
    lim, _, _ = make(source)
    running = await lim.acquire([budget(1.0, "day")], Ask(1, 0.6))
    monthly = budget(1.0, "month")
    await lim.acquire([monthly], Ask(1, 0.4))  # 0.6 still held: 1.0 after this one
    await quota_refused(lim, monthly, Ask(1, 0.4))
    lim.settle(running, 1, 0.0)
    month_start = datetime(2027, 3, 1, tzinfo=UTC).timestamp()
    assert source.one_calls[-1] == ("key", "k1", month_start)
