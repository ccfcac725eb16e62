"""One Redis connection manager per process: clients, health state, reconnects, time.

Every part that shares state through Redis (health, the probe lease, the rate
limiter) uses the one :class:`RedisLink` of its process:

* :attr:`RedisLink.hot` is the client for calls a request waits on (the limiter's):
  :data:`HOT_TIMEOUT_S` to connect and to read, no retries. So a request waits on
  Redis at most ``2 * HOT_TIMEOUT_S`` (a connection opened, then one answer read),
  and not at all while :attr:`RedisLink.ok` is false (callers check it first).
* :attr:`RedisLink.bg` is the client for background work (pub/sub, flushes,
  snapshots, the lease): :data:`BG_TIMEOUT_S`, no retries. Nothing on a request's
  path awaits it.

A supervisor asks Redis for its ``TIME`` every :data:`PING_EVERY_S`; the answer keeps
the state (``connecting`` until the first answer, then ``ok`` or ``down``) and the
offset between this machine's clock and Redis's, so :meth:`RedisLink.now` gives every
replica the same time base without a round trip. Each transition is logged once. A
*join* (the first answer, an answer after ``down``, or a Redis whose ``run_id``
changed because it restarted) runs the ``on_join`` callbacks: that is where the
shared parts re-publish what they know and re-read what they missed.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

log = logging.getLogger("modelrouter.cluster")

KEY_ROOT = "modelrouter:v1:"
"""Every key and channel starts with this; the version changes when their layout does."""
HOT_TIMEOUT_S = 0.05
"""Connect and read timeout of :attr:`RedisLink.hot`: the longest one request-path
call may wait for Redis to answer (loopback or same-zone Redis answers in < 1 ms)."""
BG_TIMEOUT_S = 1.0
"""Connect and read timeout of the background client."""
PING_EVERY_S = 0.5
"""How often the supervisor checks Redis: ``down`` shows within this plus
:data:`BG_TIMEOUT_S`, and a Redis that is back is rejoined within this."""

ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)
"""What a Redis call raises when Redis is unreachable, slow or restarting."""


class LinkState(enum.StrEnum):
    """Where this process stands with Redis (``cluster.redis`` in ``/health``)."""

    CONNECTING = "connecting"
    """Started, no answer yet: serving on per-process state meanwhile."""
    OK = "ok"
    DOWN = "down"


def redis_target(url: str) -> str:
    """``host:port/db`` of a Redis URL, for messages: never the password."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return parts.path
    host = parts.hostname or "localhost"
    db = parts.path.lstrip("/") or "0"
    return f"{host}:{parts.port or 6379}/{db}"


def key_prefix(namespace: str = "") -> str:
    """The prefix of every key: :data:`KEY_ROOT`, then ``namespace:`` when one is given."""
    return KEY_ROOT + (f"{namespace}:" if namespace else "")


def _client(url: str, timeout: float) -> Redis:
    return Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        # A retry would multiply the bound a caller relies on; the supervisor reconnects.
        retry=Retry(NoBackoff(), 0),
        retry_on_timeout=False,
        health_check_interval=0,
    )


class RedisLink:
    """Clients, state and clock offset for one Redis; see the module docstring."""

    def __init__(
        self,
        url: str,
        *,
        namespace: str = "",
        instance: str = "",
        ping_every_s: float = PING_EVERY_S,
        hot_timeout_s: float = HOT_TIMEOUT_S,
        bg_timeout_s: float = BG_TIMEOUT_S,
    ) -> None:
        self.url = url
        self.target = redis_target(url)
        """Where Redis is, for messages (no password)."""
        self.prefix = key_prefix(namespace)
        """Prefix of every key and channel this router uses (tests isolate runs by it)."""
        self.instance = instance
        self.hot = _client(url, hot_timeout_s)
        """The request-path client (see :data:`HOT_TIMEOUT_S`)."""
        self.bg = _client(url, bg_timeout_s)
        """The background client (see :data:`BG_TIMEOUT_S`)."""
        self.state = LinkState.CONNECTING
        self.since = time.time()
        """Wall time of the last state change."""
        self.last_error: str | None = None
        self.epoch = 0
        """Incremented on every join: a loop that saw another epoch must start over."""
        self._ping_every = ping_every_s
        self._offset = 0.0
        self._run_id: str | None = None
        self._on_join: list[Callable[[], Awaitable[None]]] = []
        self._on_state: list[Callable[[LinkState], None]] = []
        self._task: asyncio.Task[None] | None = None
        self._poke = asyncio.Event()
        self._ok = asyncio.Event()
        self._jobs: set[asyncio.Task[None]] = set()

    @property
    def ok(self) -> bool:
        """Whether Redis answered the last check (shared mode)."""
        return self.state is LinkState.OK

    def key(self, *parts: str) -> str:
        """``prefix`` + ``parts`` joined by ``:``."""
        return self.prefix + ":".join(parts)

    def now(self) -> float:
        """Redis's clock (epoch seconds), estimated locally from the last ``TIME``."""
        return time.time() + self._offset

    def on_join(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Run ``callback`` (as a task) every time this process (re)joins Redis."""
        self._on_join.append(callback)

    def on_state(self, callback: Callable[[LinkState], None]) -> None:
        """Call ``callback`` on every state change (on the event loop, never blocking)."""
        self._on_state.append(callback)

    async def wait_ok(self) -> None:
        """Return once the link is ``ok``."""
        await self._ok.wait()

    async def start(self) -> None:
        """Check Redis once (a start never waits longer than :data:`BG_TIMEOUT_S`),
        then keep checking in the background."""
        if self._task is None:
            await self._check()
            self._task = asyncio.create_task(self._supervise(), name="cluster:redis")

    async def stop(self) -> None:
        """Stop checking and close both clients' connections."""
        task, self._task = self._task, None
        jobs, self._jobs = set(self._jobs), set()
        for t in (task, *jobs):
            if t is not None:
                t.cancel()
        await asyncio.gather(*(t for t in (task, *jobs) if t is not None), return_exceptions=True)
        for client in (self.hot, self.bg):
            try:
                await client.aclose()
            except ERRORS:
                pass

    def failed(self, err: BaseException) -> None:
        """A Redis call failed: check now rather than at the next tick."""
        self.last_error = _describe(err)
        self._poke.set()

    async def _supervise(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._poke.wait(), self._ping_every)
            except TimeoutError:
                pass
            self._poke.clear()
            await self._check()

    async def _check(self) -> None:
        sent = time.time()
        try:
            async with self.bg.pipeline(transaction=False) as pipe:
                pipe.time()
                pipe.info("server")
                (secs, micros), info = await pipe.execute()
        except ERRORS as err:
            self.last_error = _describe(err)
            self._set(LinkState.DOWN)
            return
        got = time.time()
        self._offset = secs + micros / 1e6 - (sent + got) / 2
        run_id = str(info.get("run_id", ""))
        restarted = self._run_id is not None and run_id != self._run_id
        self._run_id = run_id
        joined = self.state is not LinkState.OK or restarted
        if restarted and self.state is LinkState.OK:
            log.warning(
                "cluster [%s]: redis at %s restarted; rejoining", self.instance, self.target
            )
        self._set(LinkState.OK)
        if joined:
            self.epoch += 1
            if self.epoch > 1:
                # Idle pooled connections may be to the Redis that went away: drop them
                # rather than fail one call each (connections in use finish first).
                for client in (self.hot, self.bg):
                    await client.connection_pool.disconnect(inuse_connections=False)
            for callback in self._on_join:
                self._spawn(callback())

    def _set(self, state: LinkState) -> None:
        if state is self.state:
            return
        before, self.state, self.since = self.state, state, time.time()
        if state is LinkState.OK:
            self._ok.set()
            self.last_error = None
            how = "connected to" if before is LinkState.CONNECTING else "redis is back at"
            log.warning(
                "cluster [%s]: %s %s; health, probes and limits are shared",
                self.instance,
                how,
                self.target,
            )
        else:
            self._ok.clear()
            log.warning(
                "cluster [%s]: redis at %s is unreachable (%s); serving on per-process "
                "state until it answers",
                self.instance,
                self.target,
                self.last_error,
            )
        for callback in self._on_state:
            callback(state)

    def _spawn(self, job: Awaitable[None]) -> None:
        async def run() -> None:
            try:
                await job
            except ERRORS as err:
                self.failed(err)
            except Exception:
                log.exception("cluster [%s]: rejoin step failed", self.instance)

        task = asyncio.create_task(run())
        self._jobs.add(task)
        task.add_done_callback(self._jobs.discard)

    def report(self) -> dict[str, Any]:
        """``{redis, mode, since, last_error}`` for ``/health`` (no URL, no password)."""
        return {
            "redis": self.state.value,
            "mode": "shared" if self.ok else "local",
            "since": _iso(self.since),
            "last_error": self.last_error,
        }


def _describe(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
