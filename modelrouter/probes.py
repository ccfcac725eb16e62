"""Active health checks: one background task per model feeding the HealthTracker.

Probes keep testing models whose breaker is open, so recovery is found without
sacrificing user requests, and a dead model is known dead before anyone asks it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import traceback
from collections.abc import Awaitable, Callable, Mapping

from modelrouter.health import HealthTracker
from providers.base import Failure, ProviderError

log = logging.getLogger(__name__)

INTERVAL_JITTER = 0.1
"""Each wait is interval_s ± this fraction, so probes of many models drift apart
instead of hitting one upstream (and the event loop) in lockstep."""

ProbeTarget = Callable[[], Awaitable[None]]
"""One model's probe: returns on success, raises :class:`ProviderError` on failure."""


class ProbeLoop:
    """Probe every model in ``targets`` every ``interval_s`` (with jitter)."""

    def __init__(
        self,
        tracker: HealthTracker,
        targets: Mapping[str, ProbeTarget],
        *,
        interval_s: float,
        timeout_s: float,
        rng: random.Random,
        redact: Callable[[str], str] = str,
        on_probe: Callable[[str, str], None] | None = None,
        gate: Callable[[], bool] | None = None,
        due_in: Callable[[str], float] | None = None,
    ) -> None:
        self._tracker = tracker
        self._on_probe = on_probe
        """Told of every probe's outcome (model, ``ok`` or the failure's kind): the metrics."""
        self._redact = redact
        """Masks configured secrets in text that goes to the log."""
        self._targets = dict(targets)
        self._interval_s = interval_s
        self._timeout_s = timeout_s
        self._rng = rng
        self._tasks: list[asyncio.Task[None]] = []
        # Several replicas (modelrouter.cluster): ``gate`` says whether this process
        # probes now (it holds the probe lease); ``due_in`` how long until a model's
        # next probe is due by the last probe of any replica. None: always probe.
        self._gate = gate
        self._due_in = due_in
        self._wakes: dict[str, asyncio.Event] = {}

    @property
    def running(self) -> bool:
        """Whether the probe tasks are started."""
        return bool(self._tasks)

    async def start(self) -> None:
        """Start one task per model (no-op if already started)."""
        if self._tasks:
            return
        for model in self._targets:
            self._tracker.add_model(model)
            self._wakes[model] = asyncio.Event()
            self._tasks.append(asyncio.create_task(self._run(model), name=f"probe:{model}"))

    async def stop(self) -> None:
        """Cancel every probe task and wait until they have all finished."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def probe_now(self, model: str) -> bool:
        """Probe ``model`` once, record the outcome, and return whether it succeeded."""
        outcome = await self._probe(model)
        if self._on_probe is not None:
            self._on_probe(model, outcome)
        return outcome == "ok"

    async def _probe(self, model: str) -> str:
        target = self._targets[model]
        tracker = self._tracker
        tracker.on_attempt(model, probe=True)
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            async with asyncio.timeout(self._timeout_s):
                await target()
        except ProviderError as exc:
            tracker.record_failure(
                model,
                exc.failure,
                retry_after_s=exc.retry_after,
                status=exc.status,
                probe=True,
                error=exc.message,
            )
            return exc.failure.value
        except TimeoutError:
            tracker.record_failure(
                model,
                Failure.TIMEOUT,
                probe=True,
                error=f"probe timed out after {self._timeout_s:g}s",
            )
            return Failure.TIMEOUT.value
        except Exception:
            # A bug in the probe code, not something the upstream did: logged, and the
            # model's health is left as it was (the trial slot, if any, frees itself).
            trace = self._redact(traceback.format_exc())
            log.error("probe of %s raised an internal error:\n%s", model, trace)
            return "error"
        tracker.record_success(model, loop.time() - started, probe=True)
        return "ok"

    def wake(self) -> None:
        """Probe every model that is due now (this process just became the prober),
        instead of at each task's own next turn."""
        for event in self._wakes.values():
            event.set()

    async def _run(self, model: str) -> None:
        await self._pause(model, self._rng.uniform(0.0, self._interval_s))
        gate = self._gate
        while True:
            if gate is None or gate():
                try:
                    await self.probe_now(model)
                except Exception:
                    # probe_now records every probe failure itself; reaching this is a
                    # bug, and it must not silently end this model's probing.
                    log.exception("probe of %s crashed", model)
            jitter = self._rng.uniform(-INTERVAL_JITTER, INTERVAL_JITTER)
            await self._pause(model, self._interval_s * (1.0 + jitter))

    async def _pause(self, model: str, seconds: float) -> None:
        """Sleep ``seconds``; woken by :meth:`wake`, sleep until the model is due."""
        if self._gate is None:
            await asyncio.sleep(seconds)
            return
        event = self._wakes[model]
        while True:
            try:
                await asyncio.wait_for(event.wait(), seconds)
            except TimeoutError:
                return
            event.clear()
            seconds = self._due_in(model) if self._due_in is not None else 0.0
            if seconds <= 0:
                return
