"""The per-process limiter: rpm and tpm token buckets and budgets, per scope.

**Rate limits** are token buckets, one per scope (key, team) and kind (rpm, tpm):

* capacity = the per-minute limit; refilled continuously at limit/60 per second;
  a new bucket starts full;
* rpm: a request takes 1 at admission; tpm: it takes its estimate
  (:attr:`~modelrouter.governance.types.Ask.tokens`) at admission, and when it ends
  :meth:`LocalLimiter.settle` charges the difference (real minus estimate): a refund, or
  a debt that may drive the level below 0 and so delays the requests that follow;
* a request passes only if every scope has room in every bucket (rpm: 1; tpm: its
  estimate, or a full bucket when the estimate is larger than the whole limit, so a
  big request waits for a full minute's allowance instead of never passing); if any
  refuses, nothing is taken from any. The wait (``Retry-After``) is the longest of the
  refusing buckets' times until they have room.

Why a token bucket: two numbers per bucket (level, time), so O(1) memory and work per
request; a quiet key may burst up to a minute's limit at once, then is held to the
rate; and the same arithmetic runs as one script in Redis (the cluster limiter).

**Budgets** (:mod:`modelrouter.governance.budget`) are checked first: a spent budget
answers ``insufficient_quota`` whatever the rate limits say.

Times come from an injected monotonic ``clock`` (buckets) and ``wall`` clock (budget
periods are UTC calendar periods), so tests move time instead of sleeping. A scope's
state is dropped when nothing of it is left to remember (its buckets full again, no
request running, its spend re-readable from the store), which bounds memory by the
scopes in use, not by every key ever seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from modelrouter.governance.budget import (
    REFRESH_S,
    SEED_TIMEOUT_S,
    Budgets,
    BudgetState,
    SpendSource,
)
from modelrouter.governance.types import Ask, Grant, Limits, Scope
from modelrouter.governance.wire import (
    NEVER,
    REQUESTS,
    TOKENS,
    Gauge,
    put,
    put_headers,
    quota_spent,
    rate_limited,
)

log = logging.getLogger("modelrouter.limits")

IDLE_S = 600.0
"""A scope with a budget is forgotten after this long without requests (its spend is
read from the store again when it comes back). Rate buckets need no such wait: a full
bucket is the same as a new one."""


class TokenBucket:
    """One per-minute limit (see the module docstring)."""

    __slots__ = ("capacity", "level", "limit", "rate", "stamp")

    def __init__(self, limit: int, now: float) -> None:
        self.capacity = float(limit)
        self.rate = limit / 60.0
        self.level = self.capacity
        self.stamp = now
        self.limit = str(limit)
        """The limit as its header writes it."""

    def refill(self, now: float) -> None:
        """Add what flowed in since the last call, up to the capacity."""
        if now > self.stamp:
            level = self.level + (now - self.stamp) * self.rate
            self.level = level if level < self.capacity else self.capacity
            self.stamp = now

    def need(self, amount: float) -> float:
        """The level a request of ``amount`` needs: at most a full bucket."""
        return amount if amount < self.capacity else self.capacity

    def has(self, amount: float) -> bool:
        """Whether a request of ``amount`` fits now (call :meth:`refill` first)."""
        return self.capacity > 0 and self.level >= self.need(amount)

    def wait(self, amount: float) -> float:
        """Seconds until a request of ``amount`` fits."""
        if self.rate <= 0:
            return NEVER
        short = self.need(amount) - self.level
        return short / self.rate if short > 0 else 0.0

    def charge(self, amount: float) -> None:
        """Take ``amount`` (negative: give back, up to the capacity)."""
        level = self.level - amount
        self.level = level if level < self.capacity else self.capacity

    def gauge(self) -> Gauge:
        """What the headers report: limit, remaining, time until full."""
        return Gauge(int(self.capacity), self.level, self.reset_s())

    def reset_s(self) -> float:
        """Seconds until the bucket is full again."""
        return (self.capacity - self.level) / self.rate if self.rate > 0 else 0.0

    def put(self, headers: dict[str, str], names: tuple[str, str, str]) -> None:
        """Write this bucket's three ``x-ratelimit-*`` headers."""
        put(headers, names, self.limit, self.level, self.reset_s())

    def resize(self, limit: int, now: float) -> None:
        """A new limit: keep the level (at most the new capacity)."""
        self.refill(now)
        self.capacity = float(limit)
        self.rate = limit / 60.0
        self.level = min(self.level, self.capacity)
        self.limit = str(limit)


class ScopeState:
    """What the limiter keeps for one scope."""

    __slots__ = ("budget", "inflight", "limits", "rpm", "scope", "tpm", "used")

    def __init__(self, scope: Scope, now: float, budgets: Budgets) -> None:
        self.scope = scope
        self.limits: Limits = scope.limits
        lim = scope.limits
        self.rpm = TokenBucket(lim.rpm, now) if lim.rpm is not None else None
        self.tpm = TokenBucket(lim.tpm, now) if lim.tpm is not None else None
        self.budget = budgets.new(scope) if lim.budget_usd is not None else None
        self.inflight = 0
        self.used = now

    def reconfigure(self, scope: Scope, now: float, budgets: Budgets) -> None:
        """The scope's limits changed (a key or team was edited): keep what still applies."""
        old, new = self.limits, scope.limits
        self.scope, self.limits = scope, new
        self.rpm = _resized(self.rpm, new.rpm, now)
        self.tpm = _resized(self.tpm, new.tpm, now)
        if new.budget_usd is None:
            self.budget = None
        elif self.budget is None or old.budget_period != new.budget_period:
            running = self.budget.reserved if self.budget is not None else 0.0
            self.budget = budgets.new(scope)
            self.budget.reserved = running
        else:
            self.budget.scope = scope

    def idle(self, now: float) -> bool:
        """Whether forgetting this state changes nothing (see :data:`IDLE_S`)."""
        if self.inflight:
            return False
        for bucket in (self.rpm, self.tpm):
            if bucket is not None:
                bucket.refill(now)
                if bucket.level < bucket.capacity:
                    return False
        b = self.budget
        return b is None or (b.sourced and now - self.used > IDLE_S)


def _resized(bucket: TokenBucket | None, limit: int | None, now: float) -> TokenBucket | None:
    if limit is None:
        return None
    if bucket is None:
        return TokenBucket(limit, now)
    bucket.resize(limit, now)
    return bucket


class LocalLimiter:
    """The :class:`~modelrouter.governance.types.Limiter` of one process."""

    def __init__(
        self,
        *,
        source: SpendSource | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        refresh_s: float = REFRESH_S,
        seed_timeout_s: float = SEED_TIMEOUT_S,
    ) -> None:
        self.clock = clock
        self.budgets = Budgets(source, wall=wall, seed_timeout_s=seed_timeout_s)
        self.refresh_s = refresh_s
        # By kind, then id: no string built per request to find a scope.
        self._scopes: dict[str, dict[str, ScopeState]] = {"key": {}, "team": {}}
        self._task: asyncio.Task[None] | None = None

    def scope_state(self, scope: Scope, now: float) -> ScopeState:
        """The state of ``scope`` (made on first use, updated if its limits changed)."""
        table = self._scopes[scope.kind]
        state = table.get(scope.id)
        if state is None:
            state = table[scope.id] = ScopeState(scope, now, self.budgets)
        elif state.limits is not scope.limits:
            if state.limits != scope.limits:
                state.reconfigure(scope, now, self.budgets)
            else:  # the same limits in a new object (keys reloaded): back to the fast test
                state.scope, state.limits = scope, scope.limits
                if state.budget is not None:
                    state.budget.scope = scope
        return state

    async def acquire(self, scopes: Sequence[Scope], ask: Ask) -> Grant:
        """Count a request in against every scope, or raise a 429 having counted nothing."""
        now = self.clock()
        states = [self.scope_state(s, now) for s in scopes]
        for state in states:
            b = state.budget
            if b is not None:
                b.roll(self.budgets.wall())
                if not b.seeded:
                    await self.budgets.ready(b)
                    now = self.clock()
        return self.take(states, ask, scopes, now)

    def take(
        self, states: Sequence[ScopeState], ask: Ask, scopes: Sequence[Scope], now: float
    ) -> Grant:
        """The synchronous part of :meth:`acquire`: check every bucket, then take from all."""
        for state in states:
            b = state.budget
            if b is not None and not b.room():
                raise quota_spent(state.scope, b.spent, b.reserved, b.budget, b.end)
        tokens = ask.tokens
        worst: tuple[float, ScopeState, bool] | None = None
        for state in states:
            rpm, tpm = state.rpm, state.tpm
            if rpm is not None:
                rpm.refill(now)
                if not rpm.has(1) and (worst is None or rpm.wait(1) > worst[0]):
                    worst = (rpm.wait(1), state, True)
            if tpm is not None:
                tpm.refill(now)
                if not tpm.has(tokens) and (worst is None or tpm.wait(tokens) > worst[0]):
                    worst = (tpm.wait(tokens), state, False)
        if worst is not None:
            wait, state, requests = worst
            bucket = state.rpm if requests else state.tpm
            assert bucket is not None
            raise rate_limited(
                state.scope,
                "rpm" if requests else "tpm",
                wait,
                limit=int(bucket.capacity),
                remaining=bucket.level,
                requested=1 if requests else tokens,
                headers=self.headers_of(states),
            )
        for state in states:
            if state.rpm is not None:
                state.rpm.level -= 1
            if state.tpm is not None:
                state.tpm.level -= tokens
            if state.budget is not None:
                state.budget.reserved += ask.cost_usd
            state.inflight += 1
            state.used = now
        return Grant(scopes, ask, headers=self.headers_of(states), token=states)

    def settle(self, grant: Grant, tokens: int, cost_usd: float) -> None:
        """Replace the reservation with what the request really used."""
        states: Sequence[ScopeState] = grant.token
        now = self.clock()
        delta = tokens - grant.ask.tokens
        for state in states:
            tpm = state.tpm
            if tpm is not None and delta:
                tpm.refill(now)
                tpm.charge(delta)
            if state.budget is not None:
                state.budget.settle(grant.ask.cost_usd, cost_usd)
            state.inflight -= 1
            state.used = now

    @staticmethod
    def headers_of(states: Sequence[ScopeState]) -> dict[str, str]:
        """The ``x-ratelimit-*`` headers of ``states`` now (buckets already refilled):
        of each kind, the bucket with the least left."""
        headers: dict[str, str] = {}
        rpm = tpm = None
        for s in states:
            if s.rpm is not None and (rpm is None or s.rpm.level < rpm.level):
                rpm = s.rpm
            if s.tpm is not None and (tpm is None or s.tpm.level < tpm.level):
                tpm = s.tpm
        if rpm is not None:
            rpm.put(headers, REQUESTS)
        if tpm is not None:
            tpm.put(headers, TOKENS)
        return headers

    def peek(self, scopes: Sequence[Scope]) -> dict[str, str]:
        """The ``x-ratelimit-*`` headers now, counting nothing (answers refused before
        admission, ``/v1/models``)."""
        now = self.clock()
        requests: list[Gauge] = []
        tokens: list[Gauge] = []
        for scope in scopes:
            state = self._scopes[scope.kind].get(scope.id)
            for limit, bucket, out in (
                (scope.limits.rpm, state.rpm if state else None, requests),
                (scope.limits.tpm, state.tpm if state else None, tokens),
            ):
                if bucket is not None:
                    bucket.refill(now)
                    out.append(bucket.gauge())
                elif limit is not None:
                    out.append(Gauge(limit, float(limit), 0.0))  # untouched: full
        headers: dict[str, str] = {}
        put_headers(headers, "requests", requests)
        put_headers(headers, "tokens", tokens)
        return headers

    def sweep(self) -> int:
        """Forget the states that hold nothing worth keeping; how many were dropped."""
        now = self.clock()
        dropped = 0
        for table in self._scopes.values():
            for sid in [sid for sid, state in table.items() if state.idle(now)]:
                del table[sid]
                dropped += 1
        return dropped

    def budget_states(self) -> list[BudgetState]:
        """Every budget being counted."""
        return [s.budget for t in self._scopes.values() for s in t.values() if s.budget is not None]

    async def refresh(self) -> None:
        """Read every active budget's spend from the store again, then sweep."""
        await self.budgets.refresh(self.budget_states())
        self.sweep()

    async def start(self) -> None:
        """Start the background refresh (budgets from the store, sweeping)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="modelrouter-limits")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_s)
            try:
                await self.refresh()
            except Exception:
                log.exception("limits: refresh failed")

    async def aclose(self) -> None:
        """Stop the background refresh."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def state(self) -> dict[str, Any]:
        """What ``/health`` shows about the limiter."""
        return {
            "mode": "local",
            "scopes": sum(len(t) for t in self._scopes.values()),
            "budget_store_errors": self.budgets.errors,
        }
