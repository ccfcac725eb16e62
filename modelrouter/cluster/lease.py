"""The probe lease: one replica at a time runs the probe loop.

One lease for the whole loop, not one per model: probing costs the same either way
(each model once per interval), and one key keeps the hand-over simple to reason
about. The lease is a key holding the holder's token, taken with ``SET NX PX`` and
renewed by the holder (compare-and-``PEXPIRE``) every third of its time to live.

``ttl = interval_s / 2`` (:data:`TTL_SHARE`): when the holder dies without a word
(SIGKILL, a lost machine) the key expires within half an interval, another replica
takes it within a sixth more and probes every model that is due at once, so probing
resumes within one interval. A holder counts itself the holder only until the time
it sent its last successful renewal plus ``ttl`` (less a margin for clock rate):
the key cannot have expired before then, so two replicas never probe at once. A
holder that stops (SIGTERM) deletes the key, and another takes over within a sixth
of an interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from modelrouter.cluster.link import ERRORS, RedisLink
from modelrouter.cluster.scripts import RELEASE, RENEW

log = logging.getLogger("modelrouter.cluster")

TTL_SHARE = 0.5
"""The lease's time to live as a share of ``health.interval_s``."""
TTL_MIN_S = 0.1
"""Floor of the time to live (and so of the renewal period, a third of it)."""
SAFETY = 0.9
"""A holder trusts its lease for this share of the time to live after renewing."""


class ProbeLease:
    """Take, keep and give back the probe lease (see the module docstring)."""

    def __init__(
        self,
        link: RedisLink,
        token: str,
        interval_s: float,
        *,
        on_gain: Callable[[], None] | None = None,
    ) -> None:
        self._link = link
        self.key = link.key("probe", "lease")
        self.token = token
        self.ttl_s = max(TTL_MIN_S, interval_s * TTL_SHARE)
        self._ttl_ms = int(self.ttl_s * 1000)
        self._until = 0.0
        self.on_gain = on_gain
        """Called each time this process takes the lease (probe what is due now)."""
        self._renew = link.bg.register_script(RENEW)
        self._release = link.bg.register_script(RELEASE)
        self._task: asyncio.Task[None] | None = None
        self.gained = 0
        """How many times this process took the lease."""

    def held(self) -> bool:
        """Whether this process holds the lease right now."""
        return self._link.ok and time.monotonic() < self._until

    def start(self) -> None:
        """Keep trying to take (or keep) the lease in the background."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="cluster:lease")

    async def stop(self) -> None:
        """Stop, and give the lease back if this process holds it."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._until > time.monotonic() and self._link.ok:
            self._until = 0.0
            with contextlib.suppress(*ERRORS):
                await self._release(keys=[self.key], args=[self.token])

    async def _run(self) -> None:
        while True:
            if self._link.ok:
                try:
                    await self.step()
                except ERRORS as err:
                    self._until = 0.0
                    self._link.failed(err)
            await asyncio.sleep(self.ttl_s / 3)

    async def step(self) -> bool:
        """Renew the lease if held, else try to take it; return whether it is held."""
        sent = time.monotonic()
        had = sent < self._until
        # Renewal first, also when this process thinks it lost the lease: a late renewal
        # (a busy event loop) finds the key still holding its token.
        held = bool(await self._renew(keys=[self.key], args=[self.token, self._ttl_ms]))
        if not held:
            held = bool(await self._link.bg.set(self.key, self.token, nx=True, px=self._ttl_ms))
        if not held:
            self._until = 0.0
            return False
        self._until = sent + self.ttl_s * SAFETY
        if not had:
            self.gained += 1
            if self.on_gain is not None:
                self.on_gain()
        return True
