"""Carries health between this process and Redis, always in the background.

Out: every :data:`FLUSH_S` the tracker's outbox goes to Redis in one pipelined round
trip: each event through :data:`~modelrouter.cluster.scripts.PUT` (newest wins, the
winner is published), each model's outcome counts through
:data:`~modelrouter.cluster.scripts.SIGNAL` (merged; a crossed threshold opens the
breaker for every replica). While Redis is away the outbox is emptied unsent: counts
go stale, and the state they led to is re-published on rejoin.

In: one subscriber on the ``health`` channel applies every event as it arrives. On
every (re)subscription it first re-publishes this process's notable state, then reads
every model's state hash, so a replica that starts late or was cut off catches up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math

import orjson
from redis.exceptions import ResponseError

from modelrouter.cluster.link import ERRORS, RedisLink
from modelrouter.cluster.scripts import PUT, SIGNAL
from modelrouter.cluster.tracker import ClusterTracker
from modelrouter.settings import HealthSettings

log = logging.getLogger("modelrouter.cluster")

FLUSH_S = 0.1
"""How often outcomes and events go out: a transition reaches the other replicas
within this plus one Redis round trip and one pub/sub delivery."""
LISTEN_POLL_S = 1.0
"""The subscriber wakes at least this often to notice a rejoin (a new link epoch)."""
Arg = str | bytes | int | float
"""A script argument."""
WINDOW_BUCKETS = 10
"""The shared window is kept in this many time buckets (a bucket is at least 1 s)."""


class HealthSync:
    """The flusher and the subscriber of one process (see the module docstring)."""

    def __init__(self, link: RedisLink, tracker: ClusterTracker, health: HealthSettings) -> None:
        self._link = link
        self._tracker = tracker
        self._h = health
        self.channel = link.key("health")
        self._put = link.bg.register_script(PUT)
        self._signal = link.bg.register_script(SIGNAL)
        window_ms = int(health.window_s * 1000)
        self._bucket_ms = max(1000, math.ceil(window_ms / WINDOW_BUCKETS))
        self._buckets = max(1, math.ceil(window_ms / self._bucket_ms))
        self._tasks: list[asyncio.Task[None]] = []
        self.joined = asyncio.Event()
        """Set once the subscriber is listening and has read the snapshot."""
        self.flushes = 0

    def state_key(self, model: str) -> str:
        """The model's shared state hash."""
        return self._link.key("health", model)

    def counts_key(self, model: str) -> str:
        """The model's shared outcome counts."""
        return self._link.key("win", model)

    def start(self) -> None:
        """Start the flusher and the subscriber."""
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._flush_loop(), name="cluster:flush"),
                asyncio.create_task(self._listen_loop(), name="cluster:listen"),
            ]

    async def stop(self) -> None:
        """Stop both tasks, then send what is left in the outbox (one last try)."""
        tasks, self._tasks = self._tasks, []
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(*ERRORS):
            await self.flush()

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_S)
            try:
                await self.flush()
            except ResponseError as err:
                # Redis answered, and refused: a script error is a bug, never an outage.
                log.error("cluster: redis refused a health update: %s", err)
            except ERRORS as err:
                self._link.failed(err)
            except Exception:
                log.exception("cluster: sending health to redis failed")

    async def flush(self) -> None:
        """Send the outbox now (dropped unsent while the link is not ``ok``)."""
        counts, events = self._tracker.outbox.take()
        if not (counts or events) or not self._link.ok:
            return
        h = self._h
        async with self._link.bg.pipeline(transaction=False) as pipe:
            # Events first: a breaker this process just opened must be in the state hash
            # before its own counts are judged, or they would open it a second time.
            for e in events:
                keys = [self.state_key(e.model), self.counts_key(e.model)]
                put: list[Arg] = [self.channel, e.kind, e.order, e.message, e.expire_at]
                await self._put(keys=keys, args=[*put, *e.fields], client=pipe)
            for model, (ok, fail, trailing) in counts.items():
                keys = [self.counts_key(model), self.state_key(model)]
                args: list[Arg] = [self.channel, model, ok, fail, trailing]
                args += [self._bucket_ms, self._buckets, h.failure_threshold, h.min_requests]
                args += [h.error_rate_threshold, int(h.open_s * 1000), self._tracker.grace_ms]
                args.append(self._tracker.instance)
                await self._signal(keys=keys, args=args, client=pipe)
            results = await pipe.execute()
        self.flushes += 1
        # A breaker event that lost to a newer one: take the newer one instead.
        lost = {e.model for e, won in zip(events, results, strict=False) if not won}
        lost &= {e.model for e in events if e.kind in ("open", "close")}
        if lost:
            await self.read_snapshot(sorted(lost))

    async def read_snapshot(self, models: list[str] | None = None) -> None:
        """Read the state hash of ``models`` (default: every model) and apply it."""
        names = self._tracker.models if models is None else models
        async with self._link.bg.pipeline(transaction=False) as pipe:
            for m in names:
                pipe.hgetall(self.state_key(m))
            hashes = await pipe.execute()
        for model, raw in zip(names, hashes, strict=True):
            if raw:
                h = {k.decode(): v.decode() for k, v in raw.items()}
                self._tracker.adopt_snapshot(model, h)

    async def _listen_loop(self) -> None:
        while True:
            await self._link.wait_ok()
            try:
                await self._listen()
            except ERRORS as err:
                self._link.failed(err)
                self.joined.clear()
                # The supervisor marks the link down (or finds it fine): wait a tick
                # instead of spinning on a subscription that keeps failing.
                await asyncio.sleep(FLUSH_S)

    async def _listen(self) -> None:
        epoch = self._link.epoch
        pubsub = self._link.bg.pubsub()
        try:
            await pubsub.subscribe(self.channel)
            # Subscribed first, then catch up: nothing published meanwhile is missed.
            self._tracker.republish()
            await self.flush()
            await self.read_snapshot()
            self.joined.set()
            while self._link.epoch == epoch and self._link.ok:
                msg = await pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=LISTEN_POLL_S
                )
                if msg is not None and msg.get("type") == "message":
                    self._apply(msg["data"])
        finally:
            self.joined.clear()
            with contextlib.suppress(*ERRORS):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _apply(self, data: bytes) -> None:
        try:
            msg = orjson.loads(data)
            self._tracker.adopt(msg)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            # Another version's message, or a bug: never worth the subscriber.
            log.warning("cluster: ignored a health message that does not parse")
