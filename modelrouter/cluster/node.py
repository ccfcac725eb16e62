"""A process's membership of the cluster: the Redis link, shared health, the probe lease.

:class:`Cluster` is built by the runtime when ``cluster.redis_url`` is set; it starts
before the probes and stops after them. The rate limiter shares its :attr:`Cluster.link`
(:meth:`RedisLimiter.on_link <modelrouter.governance.redis_limiter.RedisLimiter.on_link>`:
acquires go through :attr:`RedisLink.hot <modelrouter.cluster.link.RedisLink.hot>`) and
applies ``on_redis_error`` itself; its state shows in :meth:`Cluster.report`.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from typing import Any

from modelrouter.cluster.lease import ProbeLease
from modelrouter.cluster.link import RedisLink
from modelrouter.cluster.sync import HealthSync
from modelrouter.cluster.tracker import ClusterTracker
from modelrouter.settings import ClusterSettings, HealthSettings


class Cluster:
    """Everything this process shares through Redis (see the module docstring)."""

    def __init__(
        self,
        settings: ClusterSettings,
        health: HealthSettings,
        tracker: ClusterTracker,
        *,
        instance: str,
    ) -> None:
        assert settings.redis_url, "a Cluster needs cluster.redis_url"
        self.settings = settings
        self.instance = instance
        self.token = f"{instance}/{os.getpid()}/{secrets.token_hex(4)}"
        """This process, uniquely (several workers share one instance name)."""
        self.link = RedisLink(settings.redis_url, namespace=settings.namespace, instance=instance)
        tracker.attach(self.link.now, self.token, instance)
        self.tracker = tracker
        self.sync = HealthSync(self.link, tracker, health)
        self.probing = health.probe != "none"
        self.lease = ProbeLease(self.link, self.token, health.interval_s)
        self.limits: Callable[[], dict[str, Any]] | None = None
        """The rate limiter's state for ``/health`` (set by the front door)."""

    def may_probe(self) -> bool:
        """Whether this process should probe now: it holds the lease, or Redis is away
        and every replica probes for itself."""
        return not self.link.ok or self.lease.held()

    def on_lease_gained(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` each time this process takes the probe lease."""
        self.lease.on_gain = callback

    async def start(self) -> None:
        """Connect (waiting at most the background timeout), then run in the background."""
        await self.link.start()
        self.sync.start()
        if self.probing:
            self.lease.start()

    async def stop(self) -> None:
        """Give the lease back, send what is still unsent, close the connections."""
        await self.lease.stop()
        await self.sync.stop()
        await self.link.stop()

    def report(self) -> dict[str, Any]:
        """``cluster`` in ``/health``: Redis's state, the mode, whether this process runs
        the probes, and the rate limiter's state (``limits``)."""
        prober = self.probing and self.may_probe()
        out = {**self.link.report(), "prober": prober, "prefix": self.link.prefix}
        if self.limits is not None:
            out["limits"] = self.limits()
        return out
