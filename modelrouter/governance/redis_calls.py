"""How the Redis limiter talks to Redis: ``EVALSHA``, pipelined, scripts reloaded.

:class:`ScriptCalls` sends one script's calls. A call made while none is in flight
goes at once; calls made while one is wait for the end of the event loop's turn and
leave together as one pipeline on one connection (auto-pipelining, as ioredis and
go-redis do). Each request still costs one round trip, but a burst of N concurrent
requests costs one write and one read instead of N connections' worth, and a cold
start does not open a connection per request in flight.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError, RedisError

from modelrouter.governance.redis_counters import Script

Call = tuple[Sequence[str], Sequence[str]]
"""(KEYS, ARGV) of one script call."""

BATCH_TIMEOUT_S = 1.0
"""Longest wait for one pipeline: a sender never outlives a hung Redis for long (each
caller has its own, shorter bound)."""


class ScriptCalls:
    """``EVALSHA`` of one script, with ``NOSCRIPT`` answered by loading it once."""

    def __init__(self, client: Callable[[], Redis], script: Script) -> None:
        self._client = client
        self._script = script
        self._waiting: list[tuple[Call, asyncio.Future[Any]]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._busy = 0
        """Sends in flight: while one is, new calls wait for the next pipeline."""

    async def call(self, keys: Sequence[str], args: Sequence[str]) -> Any:
        """The script's answer: sent at once when nothing else is in flight, else with
        the other calls of this loop turn."""
        if not self._busy:
            self._busy += 1
            try:
                return (await self.send([(keys, args)]))[0]
            finally:
                self._busy -= 1
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        if not self._waiting:
            loop.call_soon(self._go)
        self._waiting.append(((keys, args), fut))
        return await fut

    async def send(self, calls: Sequence[Call]) -> list[Any]:
        """Send ``calls`` as one pipeline now; answers in order (a failed script's
        answer is its exception). Raises when Redis cannot be reached."""
        r = self._client()
        if len(calls) == 1:
            keys, args = calls[0]
            try:
                return [await r.evalsha(self._script.sha, len(keys), *keys, *args)]
            except NoScriptError:  # Redis restarted or was flushed: load, and go on
                await r.script_load(self._script.source)
                return [await r.evalsha(self._script.sha, len(keys), *keys, *args)]
        replies = await self._pipeline(r, calls)
        again = [i for i, rep in enumerate(replies) if _noscript(rep)]
        if again:
            await r.script_load(self._script.source)
            for i, rep in zip(
                again, await self._pipeline(r, [calls[i] for i in again]), strict=True
            ):
                replies[i] = rep
        return replies

    async def aclose(self) -> None:
        """Stop the senders still running."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _pipeline(self, r: Redis, calls: Sequence[Call]) -> list[Any]:
        pipe = r.pipeline(transaction=False)
        for keys, args in calls:
            pipe.evalsha(self._script.sha, len(keys), *keys, *args)
        return list(await pipe.execute(raise_on_error=False))

    def _go(self) -> None:
        batch, self._waiting = self._waiting, []
        task = asyncio.get_running_loop().create_task(self._answer(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, batch: list[tuple[Call, asyncio.Future[Any]]]) -> None:
        live = [(c, f) for c, f in batch if not f.done()]  # a caller may have given up
        if not live:
            return
        self._busy += 1
        try:
            async with asyncio.timeout(BATCH_TIMEOUT_S):
                replies = await self.send([c for c, _ in live])
        except (RedisError, OSError, TimeoutError) as err:
            for _, fut in live:
                if not fut.done():
                    fut.set_exception(err)
            return
        finally:
            self._busy -= 1
        for (_, fut), rep in zip(live, replies, strict=True):
            if fut.done():
                continue
            if isinstance(rep, Exception):
                fut.set_exception(rep)
            else:
                fut.set_result(rep)


def _noscript(reply: object) -> bool:
    return isinstance(reply, NoScriptError) or (
        isinstance(reply, RedisError) and str(reply).startswith("NOSCRIPT")
    )
