"""Rate limits and budgets exact across replicas: the counters live in Redis.

:class:`RedisLimiter` implements :class:`~modelrouter.governance.types.Limiter` with
one ``EVALSHA`` per admitted request (``lua/acquire.lua``: every scope's buckets and
budget in one atomic step, on Redis's clock) and a settle that never waits: it joins a
queue that a background task sends as pipelined ``EVALSHA`` of ``lua/settle.lua``.
The rules are the per-process limiter's (:mod:`~modelrouter.governance.limiter`,
:mod:`~modelrouter.governance.budget`), so N replicas count as one process would, and
the answers are the same (:mod:`~modelrouter.governance.wire`).

A budget's spend for the period is read from the store once, when Redis has no counter
for it (first use, a new period, a Redis restart), and from then on counted in Redis.

In a router the limiter rides on the process's cluster link (:meth:`RedisLimiter.on_link`):
the link's request-path and background clients, its key prefix (``cluster.namespace``
included), and its view of Redis: the link's supervisor finding Redis down takes the
limiter down too, and a limiter call that fails makes the supervisor check at once.

When Redis fails, or times out a few times in a row (each wait bounded by
:data:`ACQUIRE_TIMEOUT_S`; :mod:`~modelrouter.governance.redis_watch` keeps that
state and rejoins), the limiter stops asking it and serves by
``cluster.on_redis_error``: ``"local"`` hands requests to the fallback limiter it was
built with, ``"deny"`` refuses limited keys with 503. Once Redis answers again, what
the fallback's requests spent meanwhile is added to Redis's budget counters
(:mod:`~modelrouter.governance.redis_owed`), so an outage never gives a key its budget
a second time.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from redis.asyncio import Redis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry

from modelrouter.errors import RouterError
from modelrouter.governance.budget import SEED_TIMEOUT_S, SpendSource
from modelrouter.governance.redis_calls import TROUBLE, ScriptCalls, SettleQueue, answer_by
from modelrouter.governance.redis_counters import (
    NeedSeed,
    Plan,
    Refused,
    acquire_args,
    decode,
    headers_of,
    plan,
    script,
    settle_item,
)
from modelrouter.governance.redis_owed import Owed
from modelrouter.governance.redis_watch import RECONNECT_S, RedisWatch
from modelrouter.governance.types import Ask, Grant, Limiter, Scope
from modelrouter.governance.wire import LimitExceeded, quota_spent, rate_limited

if TYPE_CHECKING:
    from modelrouter.cluster.link import RedisLink

log = logging.getLogger("modelrouter.limits")

KEY_PREFIX = "modelrouter:v1:"
"""The router's Redis key prefix (``cluster.namespace`` goes after it)."""
ACQUIRE_TIMEOUT_S = 0.05
"""Longest wait for Redis on a request's path: a healthy Redis answers in well under a
millisecond (loopback or the same zone), so 50 ms means trouble, and a request should
not pay more than that to find out."""
SETTLE_TIMEOUT_S = 1.0
"""Longest wait for Redis off the request path (scripts loaded, a ping)."""
RESERVATION_SLACK_S = 60.0
"""A reservation outlives its request's deadline by this much before it is dropped."""
CACHE = 10_000
"""Scope sets whose plans (keys, arguments) and last headers are kept."""

RedisSource = Redis | Callable[[], Redis]
"""A client, or a callable returning the current one (a shared connection manager)."""


class _Held:
    """A Redis grant's reservation: what its settle must name."""

    __slots__ = ("plan", "rid", "tokens")

    def __init__(self, plan: Plan, rid: str, tokens: int) -> None:
        self.plan = plan
        self.rid = rid
        self.tokens = tokens


class RedisLimiter:
    """The :class:`Limiter` whose counters are shared by every replica through Redis."""

    def __init__(
        self,
        redis: RedisSource,
        *,
        background: RedisSource | None = None,
        on_error: Literal["local", "deny"] = "local",
        fallback: Limiter | None = None,
        source: SpendSource | None = None,
        request_timeout_s: float = 600.0,
        reservation_slack_s: float = RESERVATION_SLACK_S,
        prefix: str = KEY_PREFIX,
        timeout_s: float = ACQUIRE_TIMEOUT_S,
        reconnect_s: float = RECONNECT_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if on_error == "local" and fallback is None:
            raise ValueError('on_error = "local" needs a fallback limiter')
        self._client = _source(redis)
        """The client a request waits on (acquires)."""
        self._bg = _source(background) if background is not None else self._client
        """The client for work nobody waits on (settles, script loads, pings)."""
        self._on_error = on_error
        self._fallback = fallback
        self._source = source
        self._resv_s = request_timeout_s + reservation_slack_s
        self._prefix = prefix
        self._timeout = timeout_s
        self._clock = clock
        self._offset = 0.0
        """Redis's clock minus ours, from the last answer: budget periods follow Redis."""
        self._ids = itertools.count(1)
        self._rid_prefix = os.urandom(5).hex()
        self._seeding: dict[tuple[str, str, str], asyncio.Future[float]] = {}
        self._acquires = ScriptCalls(self._client, script("acquire"))
        self._settles = SettleQueue(
            ScriptCalls(self._bg, script("settle")), lambda: self.shared, self._trouble
        )
        serving = "per process" if on_error == "local" else "refusing limited keys"
        self._watch = RedisWatch(
            self._ping, serving=serving, on_rejoin=self._rejoined, reconnect_s=reconnect_s
        )
        self._plans: dict[tuple[Scope, ...], tuple[Plan, float]] = {}
        self._last: dict[tuple[Scope, ...], dict[str, str]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._counts = {"fallbacks": 0, "refused_down": 0}
        self._owned: Redis | None = None
        """A client made by :meth:`from_url`, closed with the limiter."""
        self._link = False
        """Built by :meth:`on_link`: the clients are the link's."""
        self._owed = Owed(self._bg)
        self._run_id: str | None = None
        """The Redis server (``run_id``) the counters were last seen on."""
        self._paying = False

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisLimiter:
        """A limiter with a client of its own for ``url`` (closed by :meth:`aclose`):
        no retries (a retry would stretch the bound a request relies on, and could run
        a script twice) and :data:`ACQUIRE_TIMEOUT_S` to connect."""
        client = Redis.from_url(
            url,
            socket_connect_timeout=options.get("timeout_s", ACQUIRE_TIMEOUT_S),
            retry=Retry(NoBackoff(), 0),
            retry_on_timeout=False,
        )
        limiter = cls(client, **options)
        limiter._owned = client
        return limiter

    @classmethod
    def on_link(cls, link: RedisLink, **options: Any) -> RedisLimiter:
        """A limiter on the process's cluster link: the link's request-path client for
        acquires, its background client for the rest, its key prefix; the link finding
        Redis down takes the limiter down at once, and a limiter call that fails makes
        the link check Redis now. The link's clients stay the link's to close."""
        limiter = cls(link.hot, background=link.bg, prefix=link.prefix, **options)
        limiter._link = True
        limiter._watch.follow(link)
        # A join after a Redis restart the limiter did not notice still moves it to the
        # new server (what is owed to the old one's counters is dropped, as it must be).
        link.on_join(limiter._pay)
        return limiter

    @property
    def shared(self) -> bool:
        """Whether Redis is answering (counters are shared right now)."""
        return self._watch.shared

    async def start(self) -> None:
        """Start the fallback's background work; if Redis answers, load the scripts and
        open the request path's first connection (the first requests find it ready)."""
        if self._fallback is not None:
            await self._fallback.start()
        try:
            async with asyncio.timeout(SETTLE_TIMEOUT_S):
                for s in (script("acquire"), script("settle"), script("charge")):
                    await self._bg().script_load(s.source)
                await self._client().ping()
                self._run_id = str((await self._bg().info("server")).get("run_id", ""))
        except TROUBLE as err:
            self._trouble(err)

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
                reply = await self._answer(p.keys, args)
            except TimeoutError as err:
                self._watch.timed_out(err)
                return await self._degraded(scopes, ask)
            except TROUBLE as err:
                self._trouble(err)
                return await self._degraded(scopes, ask)
            self._watch.answered()
            result = decode(reply)
            self._offset = result.now_ms / 1000 - self._clock()
            if isinstance(result, NeedSeed):
                try:
                    for i in result.scopes:
                        seeds[i] = await self._spend_since(scopes[i], p, i)
                except Exception:
                    # A store that fails or is slower than SEED_TIMEOUT_S: this request
                    # goes as Redis's absence would; the next one asks the store again.
                    log.exception("budget seed from the store failed; this request is not shared")
                    return await self._degraded(scopes, ask)
                continue
            if isinstance(result, Refused):
                raise self._refusal(scopes, ask, p, result)
            headers = headers_of(result.requests, result.tokens)
            self._remember(scopes, headers)
            return Grant(scopes, ask, headers, _Held(p, rid, ask.tokens))
        log.error("budget counters kept vanishing while seeded; this request is not shared")
        return await self._degraded(scopes, ask)

    def settle(self, grant: Grant, tokens: int, cost_usd: float) -> None:
        """Queue the reconciliation (sent within a few ms, never awaited)."""
        held = grant.token
        if not isinstance(held, _Held):
            if self._fallback is not None and grant.scopes:
                self._fallback.settle(grant, tokens, cost_usd)
                # Admitted without Redis: its spend is owed to Redis's budget counters.
                self._owed.add(self._plan(grant.scopes), cost_usd)
                if self.shared and len(self._owed):
                    self._spawn(self._pay())
            return
        back = held.tokens - tokens
        if not held.plan.budgets and not (held.plan.tpm and back):
            return  # rpm alone, or tokens as estimated: nothing to reconcile
        own = settle_item(held.rid, back, cost_usd)
        self._settles.put((held.plan.keys, held.plan.specs, own))

    def peek(self, scopes: Sequence[Scope]) -> dict[str, str]:
        """The headers of this scope set's last answer here (no I/O); full limits if
        none yet; the fallback's view while Redis is away."""
        if not self.shared and self._fallback is not None:
            return self._fallback.peek(scopes)
        found = self._last.get(tuple(scopes))
        if found is not None:
            return dict(found)
        req = [(s.limits.rpm, s.limits.rpm, 0.0) for s in scopes if s.limits.rpm is not None]
        tok = [(s.limits.tpm, s.limits.tpm, 0.0) for s in scopes if s.limits.tpm is not None]
        return headers_of(min(req, default=None), min(tok, default=None))

    def state(self) -> dict[str, Any]:
        """``/health``'s view: whether counters are shared now, and since when not."""
        out: dict[str, Any] = {
            "backend": "redis",
            **self._watch.state(),
            "mode": "shared" if self.shared else self._on_error,
            "pending_settles": len(self._settles),
            "dropped_settles": self._settles.dropped,
            "owed_usd": round(self._owed.due_usd, 9),
            "owed_paid_usd": round(self._owed.paid_usd, 9),
            "owed_dropped_usd": round(self._owed.dropped_usd, 9),
            **self._counts,
        }
        if self._fallback is not None:
            out["fallback"] = self._fallback.state()
        return out

    async def drain(self) -> None:
        """Send every queued settle now, and wait for those already sent (if Redis
        answers)."""
        await self._settles.drain()

    async def aclose(self) -> None:
        """Send what is queued (if Redis answers) and stop the background tasks."""
        await self.drain()
        await self._watch.aclose()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._acquires.aclose()
        await self._settles.aclose()
        if self._fallback is not None:
            await self._fallback.aclose()
        if self._owned is not None:
            await self._owned.aclose()

    async def _answer(self, keys: Sequence[str], args: Sequence[str]) -> Any:
        deadline = asyncio.get_running_loop().time() + self._timeout
        try:
            return await answer_by(self._acquires.call(keys, args), deadline)
        except RedisConnectionError:
            # A connection that died with a restarted Redis fails once and is dropped;
            # a fresh one says whether Redis is really away.
            return await answer_by(self._acquires.call(keys, args), deadline)

    def _plan(self, scopes: Sequence[Scope]) -> Plan:
        now = self._clock() + self._offset
        key = tuple(scopes)
        found = self._plans.get(key)
        if found is not None and now < found[1]:
            return found[0]
        p = plan(self._prefix, scopes, now, self._resv_s)
        if len(self._plans) >= CACHE:
            self._plans.clear()
        self._plans[key] = (p, min((w[2] for w in p.windows if w), default=float("inf")))
        return p

    def _remember(self, scopes: Sequence[Scope], headers: dict[str, str]) -> None:
        if len(self._last) >= CACHE:
            self._last.clear()
        self._last[tuple(scopes)] = headers

    def _refusal(self, scopes: Sequence[Scope], ask: Ask, p: Plan, r: Refused) -> LimitExceeded:
        scope = scopes[r.scope]
        if r.reason == "budget":
            window = p.windows[r.scope]
            renews = None if window is None or window[2] == float("inf") else window[2]
            return quota_spent(scope, r.spent_usd, r.reserved_usd, r.budget_usd, renews)
        headers = headers_of(r.requests, r.tokens)
        self._remember(scopes, headers)
        rpm = r.reason == "rpm"
        return rate_limited(
            scope,
            "rpm" if rpm else "tpm",
            r.wait_s,
            limit=(scope.limits.rpm if rpm else scope.limits.tpm) or 0,
            remaining=float(r.level),
            requested=1 if rpm else ask.tokens,
            headers=headers,
        )

    async def _spend_since(self, scope: Scope, p: Plan, i: int) -> float:
        # One store query per (scope, period) at a time in this process, however many
        # requests found the counter missing together.
        window = p.windows[i]
        assert window is not None
        if self._source is None:
            return 0.0
        key = (scope.kind, scope.id, window[0])
        fut = self._seeding.get(key)
        if fut is None:
            fut = asyncio.ensure_future(self._source.one(scope.kind, scope.id, window[1]))
            self._seeding[key] = fut
            fut.add_done_callback(lambda _: self._seeding.pop(key, None))
        return await asyncio.wait_for(asyncio.shield(fut), SEED_TIMEOUT_S)

    async def _degraded(self, scopes: Sequence[Scope], ask: Ask) -> Grant:
        if self._on_error == "deny" or self._fallback is None:
            self._counts["refused_down"] += 1
            raise limiter_unavailable()
        self._counts["fallbacks"] += 1
        return await self._fallback.acquire(scopes, ask)

    def _trouble(self, err: BaseException) -> None:
        self._watch.trouble(err)

    async def _ping(self) -> None:
        """The watch's check that Redis is back."""
        await self._bg().ping()
        if not self._link:
            # Connections opened before the outage are dead: start from fresh ones (a
            # link drops its idle ones itself, and other parts are using its clients).
            for client in {id(c): c for c in (self._client(), self._bg())}.values():
                await client.connection_pool.disconnect()

    async def _rejoined(self) -> None:
        """Redis is back: send the settles that waited, and what the fallback owes."""
        if len(self._settles):
            self._spawn(self._settles.flush())
        await self._pay()

    async def _pay(self) -> None:
        """Add what the fallback's requests spent to Redis's budget counters (one
        payment at a time; what cannot be paid now is paid at the next rejoin)."""
        if self._paying:
            return
        self._paying = True
        try:
            async with asyncio.timeout(SETTLE_TIMEOUT_S):
                self._run_id = await self._owed.pay(self._run_id)
        except TROUBLE as err:
            log.warning("owed spend not added to Redis yet: %s", err)
        finally:
            self._paying = False

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _source(redis: RedisSource) -> Callable[[], Redis]:
    return (lambda: redis) if isinstance(redis, Redis) else redis


def limiter_unavailable() -> RouterError:
    """503 while Redis is away and ``cluster.on_redis_error = "deny"``."""
    return RouterError(
        503,
        "Rate limits and budgets are shared through Redis, which is not answering; "
        'with cluster.on_redis_error = "deny" limited keys are refused until it is back.',
        type="api_error",
        code="limiter_unavailable",
        headers={"retry-after": "1"},
    )
