"""Budgets: spend per key or team in the current UTC period, and the admission rule.

**The rule.** A request is admitted while its scope's budget is not used up, counting
the requests still running by their estimate::

    spent + reserved < budget_usd        (reserved: estimates of admitted, unfinished requests)

and, once admitted, its estimate joins ``reserved`` until it ends; then the estimate
leaves ``reserved`` and the request's real cost joins ``spent``. So a request that
would start after the budget is spent is refused (429 ``insufficient_quota``), and a
burst of parallel requests stops as soon as the estimates of those admitted reach the
budget: the overshoot is at most the last admitted request's estimate (plus whatever
the requests really cost beyond their estimates). A request is never refused because
its own estimate is larger than what is left: estimates are pessimistic (the dearest
model, ``max_tokens`` or a default), and a budget should not end early because of them.

**Where ``spent`` comes from.** At first use (and at each new period) a scope's spend
since the period began is read from the store (:func:`modelrouter.store.spend.spend_since`,
every worker's and replica's records), and every few seconds all active scopes are
read again in one query per kind and period (:func:`~modelrouter.store.spend.spend_all`).
Between reads, this process adds the real cost of each request it finished. A read
never lowers ``spent`` (spend only grows within a period), which covers records this
process finished that the store has not written yet. Without a store, spend is counted
per process from zero at start.

**How exact.** Within one process, to the rule above. Several workers or replicas see
each other's spend only through the store, so together they may overshoot by what they
spend in one refresh interval (:data:`REFRESH_S`) plus the writer's flush delay.
Exact across replicas comes with the Redis limiter (``[cluster] redis_url``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from modelrouter.governance.periods import period_end, period_start
from modelrouter.governance.types import Scope, ScopeKind
from modelrouter.store.schema import VALUE_LEN
from modelrouter.store.spend import spend_all, spend_since

log = logging.getLogger("modelrouter.limits")

REFRESH_S = 5.0
"""How often active scopes' spend is read again from the store."""
SEED_TIMEOUT_S = 2.0
"""How long a scope's first request waits for its spend from the store; past this it
goes on with what this process counted and the next refresh catches up."""


class SpendSource(Protocol):
    """Where spend is read from: the store (every worker's records)."""

    async def one(self, kind: ScopeKind, id: str, since: float) -> float:
        """USD spent by one key or team since ``since`` (epoch seconds)."""
        ...

    async def many(self, kind: ScopeKind, since: float, ids: Iterable[str]) -> dict[str, float]:
        """USD spent by each of ``ids`` since ``since`` (one query)."""
        ...


class StoreSpend:
    """A :class:`SpendSource` over the store's usage roll-ups."""

    def __init__(self, engine: Callable[[], AsyncEngine | None]) -> None:
        # A getter: the engine exists only once the store has started.
        self._engine = engine

    def _get(self) -> AsyncEngine:
        engine = self._engine()
        if engine is None:
            raise RuntimeError("the store is not open")
        return engine

    async def one(self, kind: ScopeKind, id: str, since: float) -> float:
        """USD spent by one key or team since ``since``."""
        return await spend_since(self._get(), kind, id, since)

    async def many(self, kind: ScopeKind, since: float, ids: Iterable[str]) -> dict[str, float]:
        """USD spent by each of ``ids`` since ``since``."""
        found = await spend_all(self._get(), kind, since)
        # The roll-ups keep ids cut to the column's length, as spend_since reads them.
        return {i: found.get(i[:VALUE_LEN], 0.0) for i in ids}


class BudgetState:
    """One scope's spend in its current period."""

    __slots__ = (
        "end",
        "local",
        "reserved",
        "scope",
        "seeded",
        "seeding",
        "sourced",
        "spent",
        "start",
    )

    def __init__(self, scope: Scope, now: float, *, sourced: bool) -> None:
        self.scope = scope
        self.start = period_start(scope.limits.budget_period, now)
        self.end = period_end(scope.limits.budget_period, now)
        self.spent = 0.0
        """This period's spend: the store's last reading plus what finished here since."""
        self.reserved = 0.0
        """Estimates of the admitted requests still running."""
        self.local = 0.0
        """What finished in this process this period (only grows; marks reads)."""
        self.sourced = sourced
        """Spend is read from a store (else counted here only, from zero)."""
        self.seeded = not sourced
        """This period's spend has been read from the store (or there is none)."""
        self.seeding: asyncio.Future[None] | None = None

    @property
    def budget(self) -> float:
        """The cap (the scope's current ``budget_usd``)."""
        return self.scope.limits.budget_usd or 0.0

    def roll(self, now: float) -> None:
        """Start a new period if the current one is over (spend back to 0)."""
        if self.end is not None and now >= self.end:
            period = self.scope.limits.budget_period
            self.start, self.end = period_start(period, now), period_end(period, now)
            self.spent = self.local = 0.0
            self.seeded = not self.sourced

    def room(self) -> bool:
        """Whether a request may start (see the module docstring)."""
        return self.spent + self.reserved < self.budget

    def settle(self, estimate: float, cost: float) -> None:
        """A request ended: its estimate leaves ``reserved``, its cost joins ``spent``."""
        self.reserved = max(0.0, self.reserved - estimate)
        self.spent += cost
        self.local += cost

    def read(self, start: float, mark: float, value: float) -> None:
        """Take the store's ``value`` for the period from ``start``, read while ``local``
        was ``mark``: what finished here during the read is added, and ``spent`` never
        goes down."""
        if start != self.start:
            return  # the period rolled over during the read
        fresh = value + (self.local - mark)
        if fresh > self.spent:
            self.spent = fresh
        self.seeded = True


class Budgets:
    """Seeds and refreshes :class:`BudgetState` from a :class:`SpendSource`."""

    def __init__(
        self,
        source: SpendSource | None,
        *,
        wall: Callable[[], float],
        seed_timeout_s: float = SEED_TIMEOUT_S,
    ) -> None:
        self.source = source
        self.wall = wall
        """Epoch seconds: periods are UTC calendar periods."""
        self.seed_timeout_s = seed_timeout_s
        self.errors = 0
        """Store reads that failed in a row (``/health``)."""

    def new(self, scope: Scope) -> BudgetState:
        """The state of a scope seen for the first time (seeded when there is no store)."""
        return BudgetState(scope, self.wall(), sourced=self.source is not None)

    async def ready(self, state: BudgetState) -> None:
        """Make sure ``state`` has been read from the store this period (one read shared
        by concurrent requests; waits at most ``seed_timeout_s``)."""
        if state.seeding is None:
            state.seeding = asyncio.ensure_future(self._seed(state))
        try:
            await asyncio.wait_for(asyncio.shield(state.seeding), self.seed_timeout_s)
        except TimeoutError:
            log.warning(
                "budget of %s: the store did not answer within %gs; counting locally",
                state.scope.label,
                self.seed_timeout_s,
            )
            state.seeded = True  # the refresh loop brings the store's value later

    async def _seed(self, state: BudgetState) -> None:
        assert self.source is not None
        start, mark = state.start, state.local
        try:
            value = await self.source.one(state.scope.kind, state.scope.id, start)
        except Exception as err:
            self._failed(err)
            state.seeded = True
        else:
            self.errors = 0
            state.read(start, mark, value)
        finally:
            state.seeding = None

    async def refresh(self, states: Iterable[BudgetState]) -> None:
        """Read every state's spend again: one query per kind and period start."""
        if self.source is None:
            return
        now = self.wall()
        groups: dict[tuple[ScopeKind, float], list[BudgetState]] = defaultdict(list)
        for state in states:
            state.roll(now)
            groups[(state.scope.kind, state.start)].append(state)
        for (kind, start), members in groups.items():
            marks = [s.local for s in members]
            try:
                found = await self.source.many(kind, start, [s.scope.id for s in members])
            except Exception as err:
                self._failed(err)
                return
            self.errors = 0
            for state, mark in zip(members, marks, strict=True):
                state.read(start, mark, found.get(state.scope.id, 0.0))

    def _failed(self, err: Exception) -> None:
        self.errors += 1
        if self.errors == 1:
            log.warning("budgets: cannot read spend from the store (%s); counting locally", err)
