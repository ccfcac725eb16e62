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
import logging
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError, RedisError

from modelrouter.governance.redis_counters import Script

log = logging.getLogger("modelrouter.limits")

Call = tuple[Sequence[str], Sequence[str]]
"""(KEYS, ARGV) of one script call."""

BATCH_TIMEOUT_S = 1.0
"""Longest wait for one pipeline: a sender never outlives a hung Redis for long (each
caller has its own, shorter bound)."""
FLUSH_DELAY_S = 0.002
"""Settles wait this long for company before they are sent together."""
FLUSH_BATCH = 256
"""A batch this full is sent at once; also the most settles in one pipeline."""
MAX_PENDING = 100_000
"""Settles kept while Redis is away; beyond that the oldest are dropped (their
reservations then expire, and their spend is in the store for the next seed)."""
TROUBLE: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)
"""What a call raises when Redis is unreachable, slow or restarting."""


class ScriptCalls:
    """``EVALSHA`` of one script, with ``NOSCRIPT`` answered by loading it once."""

    def __init__(self, client: Callable[[], Redis], script: Script) -> None:
        self._client = client
        self._script = script
        self._waiting: list[tuple[Call, asyncio.Future[Any]]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._busy = 0
        """Sends in flight: while one is, new calls wait for the next pipeline."""

    def call(self, keys: Sequence[str], args: Sequence[str]) -> asyncio.Future[Any]:
        """The script's answer, to come: sent at once when nothing else is in flight,
        else with the other calls of this loop turn. A caller that stops waiting
        cancels the future; the call still goes (or went), its answer is dropped."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._waiting.append(((keys, args), fut))
        if not self._busy:
            self._go()
        elif len(self._waiting) == 1:
            loop.call_soon(self._go)
        return fut

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
        if not batch:
            return
        self._busy += 1
        task = asyncio.get_running_loop().create_task(self._answer(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, batch: list[tuple[Call, asyncio.Future[Any]]]) -> None:
        live = [(c, f) for c, f in batch if not f.done()]  # a caller may have given up
        try:
            if not live:
                return
            async with asyncio.timeout(BATCH_TIMEOUT_S):
                replies = await self.send([c for c, _ in live])
        except TROUBLE as err:
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


async def answer_by(fut: asyncio.Future[Any], deadline: float) -> Any:
    """``fut``'s result, or :class:`TimeoutError` at ``deadline`` (loop time).

    Waits on the answer's future, not inside the client: an answer that arrived before
    the deadline is used even when a busy event loop sees both together (cancelling a
    done future does nothing), and a late one costs no connection.
    """
    expired: list[bool] = []
    timer = asyncio.get_running_loop().call_at(deadline, _expire, fut, expired)
    try:
        return await fut
    except asyncio.CancelledError:
        if expired:  # our deadline, not the caller being cancelled
            raise TimeoutError("Redis did not answer within the bound") from None
        raise
    finally:
        timer.cancel()


def _expire(fut: asyncio.Future[Any], expired: list[bool]) -> None:
    if not fut.done():
        expired.append(True)
        fut.cancel()


Settle = tuple[tuple[str, ...], tuple[str, ...], tuple[str, str, str]]
"""One request's settle: its scope set's keys and specs, and its own three arguments."""


class SettleQueue:
    """Settles waiting to be sent: a background task sends them within
    :data:`FLUSH_DELAY_S`, while ``ready()`` says Redis answers, as one pipeline with one
    script call per scope set (every request of that set in it); a batch that fails
    goes back to the front and ``trouble`` is told."""

    def __init__(
        self,
        calls: ScriptCalls,
        ready: Callable[[], bool],
        trouble: Callable[[BaseException], None],
    ) -> None:
        self._calls = calls
        self._ready = ready
        self._trouble = trouble
        self._pending: deque[Settle] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._sending = asyncio.Lock()
        """Held by the flush under way: batches leave one at a time, in order."""
        self.dropped = 0
        """Settles dropped because too many waited (see :data:`MAX_PENDING`)."""

    def __len__(self) -> int:
        return len(self._pending)

    def put(self, item: Settle) -> None:
        """Queue one settle (never blocks)."""
        self._pending.append(item)
        if len(self._pending) > MAX_PENDING:
            self._pending.popleft()
            self.dropped += 1
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        self._wake.set()

    async def flush(self) -> None:
        """Send what is queued now (while Redis answers); what arrives meanwhile waits
        for the next flush, so that it is sent with its company, not one by one."""
        async with self._sending:
            await self._flush()

    async def drain(self) -> None:
        """Send everything queued, after the flush under way (if any) has ended: on
        return, every settle queued before the call has had its answer (or Redis is
        away and they wait)."""
        async with self._sending:
            while self._pending and self._ready():
                await self._flush()

    async def _flush(self) -> None:
        todo = len(self._pending)
        while todo and self._pending and self._ready():
            n = min(FLUSH_BATCH, todo, len(self._pending))
            todo -= n
            batch = [self._pending.popleft() for _ in range(n)]
            groups: dict[tuple[tuple[str, ...], tuple[str, ...]], list[str]] = {}
            for keys, specs, own in batch:
                groups.setdefault((keys, specs), [*specs]).extend(own)
            try:
                async with asyncio.timeout(BATCH_TIMEOUT_S):
                    replies = await self._calls.send([(k, a) for (k, _), a in groups.items()])
            except TROUBLE as err:
                # Sent again once Redis is back: a settle is idempotent for budgets (the
                # reservation is removed and charged once) and a token refund is capped.
                self._pending.extendleft(reversed(batch))
                self._trouble(err)
                return
            for rep in replies:
                if isinstance(rep, Exception):  # a bug, not trouble: sending again won't help
                    log.error("settle script failed: %s", rep)

    async def aclose(self) -> None:
        """Stop the background task (what is still queued stays queued)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if len(self._pending) < FLUSH_BATCH:
                await asyncio.sleep(FLUSH_DELAY_S)
            await self.flush()


def _noscript(reply: object) -> bool:
    return isinstance(reply, NoScriptError) or (
        isinstance(reply, RedisError) and str(reply).startswith("NOSCRIPT")
    )
