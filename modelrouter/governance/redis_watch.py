"""Whether the Redis limiter may ask Redis now: outages found, waited out, rejoined.

:class:`RedisWatch` holds the limiter's view of Redis. Redis counts as down after a
call fails, after :data:`TIMEOUTS_TO_DOWN` acquires in a row outlived their bound, or
as soon as the process's cluster link finds it gone (:meth:`RedisWatch.follow`); it
counts as back once a ping answers, tried every :data:`RECONNECT_S`. Each change is
logged once, and the limiter is told of a rejoin (to send its queued settles and the
spend it owes).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from redis.exceptions import ConnectionError as RedisConnectionError

from modelrouter.governance.redis_calls import TROUBLE

if TYPE_CHECKING:
    from modelrouter.cluster.link import LinkState, RedisLink

log = logging.getLogger("modelrouter.limits")

TIMEOUTS_TO_DOWN = 3
"""Consecutive acquires that time out before Redis counts as down: one slow answer (a
pause of this process, a burst) sends only its own request to the fallback."""
RECONNECT_S = 1.0
"""How often a limiter that lost Redis checks whether it is back."""
PING_TIMEOUT_S = 1.0
"""Longest wait for one of those checks."""


class RedisWatch:
    """Redis's state as the limiter sees it (see the module docstring)."""

    def __init__(
        self,
        ping: Callable[[], Awaitable[object]],
        *,
        serving: str,
        on_rejoin: Callable[[], Awaitable[None]],
        reconnect_s: float = RECONNECT_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ping = ping
        self._serving = serving
        """How limits are served while Redis is away, for the log."""
        self._on_rejoin = on_rejoin
        self._reconnect_s = reconnect_s
        self._clock = clock
        self.down_since: float | None = None
        self.last_error: str | None = None
        self.rejoined = 0
        self._timeouts = 0
        self._task: asyncio.Task[None] | None = None
        self._link: RedisLink | None = None

    @property
    def shared(self) -> bool:
        """Whether Redis is answering (counters are shared right now)."""
        return self.down_since is None

    def follow(self, link: RedisLink) -> None:
        """Go down as soon as ``link``'s supervisor finds Redis gone, and make it check
        Redis at once when a limiter call fails."""
        from modelrouter.cluster.link import LinkState

        self._link = link

        def changed(state: LinkState) -> None:
            if state is LinkState.DOWN:
                self.trouble(RedisConnectionError(link.last_error or "Redis is down"))

        link.on_state(changed)

    def answered(self) -> None:
        """An acquire had its answer in time."""
        self._timeouts = 0

    def timed_out(self, err: TimeoutError) -> None:
        """An acquire outlived its bound (down after a few in a row)."""
        self._timeouts += 1
        if self._timeouts >= TIMEOUTS_TO_DOWN:
            self.trouble(err)

    def trouble(self, err: BaseException) -> None:
        """A call failed: Redis counts as down until a ping answers."""
        self.last_error = f"{type(err).__name__}: {err}"[:200]
        self._timeouts = 0
        if self.down_since is not None:
            return
        if self._link is not None:
            self._link.failed(err)
        self.down_since = self._clock()
        log.warning(
            "Redis is not answering (%s): limits are %s until it is back",
            self.last_error,
            self._serving,
        )
        self._task = asyncio.get_running_loop().create_task(self._rejoin())

    def state(self) -> dict[str, Any]:
        """The part of the limiter's ``/health`` state that is about Redis."""
        return {
            "redis": "ok" if self.shared else "down",
            "down_since": self.down_since,
            "last_error": self.last_error,
            "rejoined": self.rejoined,
        }

    async def aclose(self) -> None:
        """Stop checking."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _rejoin(self) -> None:
        while True:
            await asyncio.sleep(self._reconnect_s)
            try:
                async with asyncio.timeout(PING_TIMEOUT_S):
                    await self._ping()
            except TROUBLE as err:
                self.last_error = f"{type(err).__name__}: {err}"[:200]
                continue
            log.warning("Redis answers again: limits are shared again")
            self.down_since = None
            self.rejoined += 1
            await self._on_rejoin()
            return
