"""Rate limits and budgets exact across replicas: the counters live in Redis.

:class:`RedisLimiter` implements :class:`~modelrouter.governance.types.Limiter` with
one ``EVALSHA`` per admitted request (``lua/acquire.lua``: every scope's buckets and
budget in one atomic step, on Redis's clock) and a settle that never waits: it joins a
queue that a background task sends as pipelined ``EVALSHA`` of ``lua/settle.lua``.
The semantics are the per-process limiter's (token buckets refilled per minute,
budgets with in-flight reservations), so N replicas count as one process would.

When Redis does not answer within :data:`ACQUIRE_TIMEOUT_S`, or fails, the limiter
stops asking it and serves by ``cluster.on_redis_error``: ``"local"`` hands requests to
the fallback limiter it was built with, ``"deny"`` refuses them with 503. A watcher
pings Redis every :data:`RECONNECT_S` and rejoins as soon as it answers.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from redis.asyncio import Redis
from redis.exceptions import RedisError

from modelrouter.errors import RouterError
from modelrouter.governance import refusals
from modelrouter.governance.redis_calls import ScriptCalls
from modelrouter.governance.redis_counters import (
    Admitted,
    NeedSeed,
    Plan,
    Refused,
    acquire_args,
    decode,
    plan,
    script,
    settle_args,
)
from modelrouter.governance.types import Ask, Grant, Limiter, Scope, ScopeKind

log = logging.getLogger("modelrouter.limits")

ACQUIRE_TIMEOUT_S = 0.05
"""Longest wait for Redis on a request's path: a healthy Redis answers in well under a
millisecond (even across a data centre), so 50 ms means trouble, and a request should
not pay more than that to find out."""
SETTLE_TIMEOUT_S = 1.0
"""Longest wait for one batch of settles (off the request path)."""
TIMEOUTS_TO_DOWN = 3
"""Consecutive acquires that time out before Redis counts as down: one slow answer (a
pause of this process, a burst) sends only its own request to the fallback."""
RECONNECT_S = 1.0
"""How often a limiter that lost Redis checks whether it is back."""
FLUSH_DELAY_S = 0.002
"""Settles wait this long for company before they are sent together."""
FLUSH_BATCH = 256
"""A batch this full is sent at once; also the most settles in one pipeline."""
MAX_PENDING = 100_000
"""Settles kept while Redis is away; beyond that the oldest are dropped (their
reservations then expire, and their spend is in the store for the next seed)."""
RESERVATION_SLACK_S = 60.0
"""A reservation outlives its request's deadline by this much before it is dropped."""

SeedFn = Callable[[ScopeKind, str, float], Awaitable[float]]
"""``seed(kind, id, since_epoch) -> USD`` spent since then, from the store."""
RedisSource = Redis | Callable[[], Redis]
"""A client, or a callable returning the current one (a shared connection manager)."""

PLAN_CACHE = 10_000
"""Scope sets whose keys and arguments are kept ready (a plan is redone when its budget
period ends, or when the limits change: new limits are a new scope set)."""

_TROUBLE = (RedisError, OSError, TimeoutError)


@dataclass(slots=True)
class _Held:
    """A Redis grant's reservation: what its settle must name."""

    plan: Plan
    rid: str
    tokens: int


class RedisLimiter:
    """The :class:`Limiter` whose counters are shared by every replica through Redis."""

    def __init__(
        self,
        redis: RedisSource,
        *,
        on_error: Literal["local", "deny"] = "local",
        fallback: Limiter | None = None,
        seed: SeedFn | None = None,
        request_timeout_s: float = 600.0,
        reservation_slack_s: float = RESERVATION_SLACK_S,
        namespace: str = "modelrouter",
        timeout_s: float = ACQUIRE_TIMEOUT_S,
        reconnect_s: float = RECONNECT_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if on_error == "local" and fallback is None:
            raise ValueError('on_error = "local" needs a fallback limiter')
        self._client: Callable[[], Redis] = (lambda: redis) if isinstance(redis, Redis) else redis
        self._on_error = on_error
        self._fallback = fallback
        self._seed = seed
        self._resv_s = request_timeout_s + reservation_slack_s
        self._namespace = namespace
        self._timeout = timeout_s
        self._reconnect_s = reconnect_s
        self._clock = clock
        self._offset = 0.0
        """Redis's clock minus ours, from the last answer: budget periods follow Redis."""
        self._ids = itertools.count(1)
        self._rid_prefix = os.urandom(5).hex()
        self._seeding: dict[tuple[str, str, str], asyncio.Future[float]] = {}
        self._pending: deque[tuple[Sequence[str], list[str]]] = deque()
        self._acquire_calls = ScriptCalls(self._client, script("acquire"))
        self._settle_calls = ScriptCalls(self._client, script("settle"))
        self._plans: dict[tuple[Scope, ...], tuple[Plan, float]] = {}
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._flusher: asyncio.Task[None] | None = None
        self._down_since: float | None = None
        self._last_error: str | None = None
        self._counts = {"fallbacks": 0, "refused_down": 0, "dropped_settles": 0, "rejoined": 0}
        self._timeouts = 0
        self._closed = False

    @property
    def shared(self) -> bool:
        """Whether Redis is answering (counters are shared right now)."""
        return self._down_since is None

    async def acquire(self, scopes: Sequence[Scope], ask: Ask) -> Grant:
        """Admit against every scope in one script call, or raise a 429 having
        counted nothing; while Redis is away, as ``on_error`` says."""
        if not scopes:
            return Grant(scopes, ask)
        if not self.shared:
            return await self._degraded(scopes, ask)
        p = self._plan(scopes)
        rid = f"{self._rid_prefix}{next(self._ids):x}"
        seeds: dict[int, float] = {}
        for _ in range(3):  # a counter can go missing once more at a period's end
            args = acquire_args(p, rid, ask.tokens, ask.cost_usd, int(self._resv_s * 1000), seeds)
            try:
                async with asyncio.timeout(self._timeout):
                    reply = await self._acquire_calls.call(p.keys, args)
            except TimeoutError as err:
                self._timeouts += 1
                if self._timeouts >= TIMEOUTS_TO_DOWN:
                    self._trouble(err)
                return await self._degraded(scopes, ask)
            except _TROUBLE as err:
                self._trouble(err)
                return await self._degraded(scopes, ask)
            self._timeouts = 0
            result = decode(reply)
            self._offset = result.now_ms / 1000 - self._clock()
            if isinstance(result, NeedSeed):
                try:
                    for i in result.scopes:
                        seeds[i] = await self._spend_since(scopes[i], p, i)
                except Exception:
                    log.exception("budget seed from the store failed; this request is not shared")
                    return await self._degraded(scopes, ask)
                continue
            if isinstance(result, Refused):
                raise _refusal(scopes, result)
            return Grant(scopes, ask, _headers(result), _Held(p, rid, ask.tokens))
        log.error("budget counters kept vanishing while seeded; this request is not shared")
        return await self._degraded(scopes, ask)

    def settle(self, grant: Grant, tokens: int, cost_usd: float) -> None:
        """Queue the reconciliation (sent within :data:`FLUSH_DELAY_S`, never awaited)."""
        held = grant.token
        if not isinstance(held, _Held):
            if self._fallback is not None and grant.scopes:
                self._fallback.settle(grant, tokens, cost_usd)
            return
        args = settle_args(held.plan, held.rid, held.tokens - tokens, cost_usd)
        self._pending.append((held.plan.keys, args))
        if len(self._pending) > MAX_PENDING:
            self._pending.popleft()
            self._counts["dropped_settles"] += 1
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_loop())
        self._wake.set()

    def state(self) -> dict[str, Any]:
        """``/health``'s view: whether counters are shared now, and since when not."""
        mode = "shared" if self.shared else self._on_error
        out: dict[str, Any] = {
            "backend": "redis",
            "redis": "ok" if self.shared else "down",
            "mode": mode,
            "down_since": self._down_since,
            "last_error": self._last_error,
            "pending_settles": len(self._pending),
            **self._counts,
        }
        if self._fallback is not None:
            out["fallback"] = self._fallback.state()
        return out

    async def drain(self) -> None:
        """Send every queued settle now (if Redis answers)."""
        await self._flush()

    async def aclose(self) -> None:
        """Send what is queued (if Redis answers) and stop the background tasks."""
        await self._flush()
        self._closed = True
        for task in [*self._tasks, *([self._flusher] if self._flusher else [])]:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._acquire_calls.aclose()
        await self._settle_calls.aclose()

    def _plan(self, scopes: Sequence[Scope]) -> Plan:
        now = self._clock() + self._offset
        key = tuple(scopes)
        found = self._plans.get(key)
        if found is not None and now < found[1]:
            return found[0]
        p = plan(self._namespace, scopes, now, self._resv_s)
        if len(self._plans) >= PLAN_CACHE:
            self._plans.clear()
        self._plans[key] = (p, min((w[2] for w in p.windows if w), default=float("inf")))
        return p

    async def _spend_since(self, scope: Scope, p: Plan, i: int) -> float:
        # One store query per (scope, period) at a time in this process, however many
        # requests found the counter missing together.
        window = p.windows[i]
        assert window is not None
        if self._seed is None:
            return 0.0
        key = (scope.kind, scope.id, window[0])
        fut = self._seeding.get(key)
        if fut is None:
            fut = asyncio.ensure_future(self._seed(scope.kind, scope.id, window[1]))
            self._seeding[key] = fut
            fut.add_done_callback(lambda _: self._seeding.pop(key, None))
        return await asyncio.shield(fut)

    async def _degraded(self, scopes: Sequence[Scope], ask: Ask) -> Grant:
        if self._on_error == "deny" or self._fallback is None:
            self._counts["refused_down"] += 1
            raise refusals.limiter_unavailable()
        self._counts["fallbacks"] += 1
        return await self._fallback.acquire(scopes, ask)

    def _trouble(self, err: BaseException) -> None:
        self._last_error = f"{type(err).__name__}: {err}"[:200]
        self._timeouts = 0
        if self._down_since is not None:
            return
        self._down_since = self._clock()
        log.warning(
            "Redis is not answering (%s): limits are %s until it is back",
            self._last_error,
            "per process" if self._on_error == "local" else "refusing limited keys",
        )
        self._spawn(self._rejoin())

    async def _rejoin(self) -> None:
        while not self._closed:
            await asyncio.sleep(self._reconnect_s)
            try:
                async with asyncio.timeout(SETTLE_TIMEOUT_S):
                    await self._client().ping()
            except _TROUBLE as err:
                self._last_error = f"{type(err).__name__}: {err}"[:200]
                continue
            log.warning("Redis answers again: limits are shared again")
            self._down_since = None
            self._counts["rejoined"] += 1
            if self._pending:
                self._spawn(self._flush())
            return

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _flush_loop(self) -> None:
        while not self._closed:
            await self._wake.wait()
            self._wake.clear()
            if len(self._pending) < FLUSH_BATCH:
                await asyncio.sleep(FLUSH_DELAY_S)
            await self._flush()

    async def _flush(self) -> None:
        while self._pending and self.shared:
            n = min(FLUSH_BATCH, len(self._pending))
            batch = [self._pending.popleft() for _ in range(n)]
            try:
                async with asyncio.timeout(SETTLE_TIMEOUT_S):
                    await self._send(batch)
            except _TROUBLE as err:
                # Sent again once Redis is back: settle is idempotent for budgets (the
                # reservation is removed and charged once) and a token refund is capped.
                self._pending.extendleft(reversed(batch))
                self._trouble(err)
                return

    async def _send(self, batch: list[tuple[Sequence[str], list[str]]]) -> None:
        for rep in await self._settle_calls.send(batch):
            if isinstance(rep, Exception):  # a bug, not trouble: sending again will not help
                log.error("settle script failed: %s", rep)


def _refusal(scopes: Sequence[Scope], r: Refused) -> RouterError:
    scope = scopes[r.scope]
    if r.reason == "budget":
        return refusals.over_budget(
            scope, r.spent_usd + r.reserved_usd, r.budget_usd, scope.limits.budget_period
        )
    kind: refusals.RateKind = "rpm" if r.reason == "rpm" else "tpm"
    limit = scope.limits.rpm if kind == "rpm" else scope.limits.tpm
    return refusals.rate_limited(scope, kind, limit or 0, r.wait_s)


def _headers(a: Admitted) -> dict[str, str]:
    return refusals.rate_headers(a.requests, a.tokens)
