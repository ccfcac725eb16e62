"""Spend Redis missed: what requests admitted without it used, added when it is back.

While Redis is away (or when one request's acquire timed out) the per-process
fallback admits requests, and their cost is not in Redis's budget counters: a replica
cut off from Redis for a while would otherwise hand its keys their budget a second
time once it rejoins. :class:`Owed` sums that cost per counter (each budget scope's
``spend`` hash for the period the request was admitted in), and :meth:`Owed.pay` adds
it (``lua/charge.lua``) to the counters that exist when Redis answers again.

Nothing is counted twice on purpose: a counter that does not exist is seeded from the
store on its next use, and the store holds those calls; a Redis that restarted (its
``run_id`` changed, or this process never saw the old one) had every counter seeded
anew from the store, so what is owed is dropped then. The one known gap: a payment
whose reply is lost after Redis applied it is paid again (it errs towards refusing).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from redis.asyncio import Redis

from modelrouter.governance.redis_calls import ScriptCalls
from modelrouter.governance.redis_counters import NANO, Plan, script

log = logging.getLogger("modelrouter.limits")

MAX_COUNTERS = 100_000
"""Counters owed at most; past that the largest debts are kept."""


class Owed:
    """Budget spend per Redis counter that Redis has not seen yet."""

    def __init__(self, client: Callable[[], Redis]) -> None:
        self._client = client
        self._calls = ScriptCalls(client, script("charge"))
        self._due: dict[str, int] = {}
        """Spend hash key → nano-USD owed."""
        self.paid_usd = 0.0
        """Added to Redis's counters so far."""
        self.dropped_usd = 0.0
        """Dropped because Redis restarted (its counters came from the store again)."""

    def __len__(self) -> int:
        return len(self._due)

    @property
    def due_usd(self) -> float:
        """What is owed now, in USD."""
        return sum(self._due.values()) / NANO

    def add(self, p: Plan, cost_usd: float) -> None:
        """Owe ``cost_usd`` to every budget counter of the scope set planned as ``p``."""
        nano = round(cost_usd * NANO)
        if nano <= 0:
            return
        for i, window in enumerate(p.windows):
            if window is not None:
                key = p.keys[i * 3 + 1]
                self._due[key] = self._due.get(key, 0) + nano
        if len(self._due) > MAX_COUNTERS:
            keep = sorted(self._due.items(), key=lambda kv: kv[1])[-MAX_COUNTERS:]
            self._due = dict(keep)

    async def pay(self, known_run_id: str | None) -> str:
        """Add what is owed to Redis's counters, if Redis is still the server it was
        when the debts were taken (``known_run_id``); return its ``run_id`` now.
        Raises when Redis cannot be reached (what is owed stays owed)."""
        info = await self._client().info("server")
        run_id = str(info.get("run_id", ""))
        if not self._due:
            return run_id
        due, self._due = self._due, {}
        if known_run_id is None or run_id != known_run_id:
            dropped = sum(due.values()) / NANO
            self.dropped_usd += dropped
            log.warning(
                "Redis restarted while %.6f USD of spend was counted per process: its "
                "budget counters are seeded from the store, which holds those calls",
                dropped,
            )
            return run_id
        try:
            replies = await self._calls.send([((k,), (str(v),)) for k, v in due.items()])
        except BaseException:
            for k, v in due.items():
                self._due[k] = self._due.get(k, 0) + v
            raise
        for nano, reply in zip(due.values(), replies, strict=True):
            if isinstance(reply, Exception):
                log.error("charge script failed for a budget counter: %s", reply)
            elif reply:
                self.paid_usd += nano / NANO
        return run_id
