"""The one place where fallback, retries and deadlines happen.

HTTP and MCP both call :class:`Dispatcher`. For each request it walks the ranked
candidates, applies the failure policy (:mod:`modelrouter.policy`) to every failed
attempt, records every outcome in the health tracker, and either returns the first
good answer or raises a :class:`RouterError` that carries the whole attempt trail.

A stream may fall back until its first event is in hand; from then on it is
committed to that model, and a later upstream failure ends it with an SSE error
event (see :meth:`Dispatcher.relay`).
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import random
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from modelrouter.attempts import (
    Attempt,
    Observer,
    client_error,
    exhausted,
    internal_error,
    skipped_attempts,
    stream_error_event,
    stream_failure,
)
from modelrouter.health import HealthTracker
from modelrouter.policy import Again, rule
from modelrouter.redact import Redactor
from modelrouter.registry import ModelEntry, Plan
from modelrouter.retry import backoff
from modelrouter.settings import RouterSettings
from modelrouter.usage import UsageTap, completion_usage
from providers.base import ChatRequest, Completion, Failure, InvalidBody, ProviderError
from providers.embeddings import Embedder, EmbedRequest
from providers.sse import StreamShape

T = TypeVar("T")
log = logging.getLogger(__name__)

CLIENT_GONE = "client disconnected"
SHUTDOWN_CUT = "cut by the server (shutdown)"


@dataclass(slots=True)
class Outcome:
    """What a dispatch produced: the result, who served it, and every attempt."""

    entry: ModelEntry
    attempts: list[Attempt]
    completion: Completion | None = None
    first: bytes = b""
    rest: AsyncIterator[bytes] | None = None
    started: float = 0.0
    """When the serving attempt started (``Dispatcher.now`` clock)."""
    deadline: float = 0.0
    """The request's deadline, shared by every attempt and by a relayed stream."""
    ttft: float | None = None
    """Streams: seconds from the serving attempt's start to its first event."""
    usage: dict[str, Any] | None = field(default=None)
    """The served answer's OpenAI-shaped usage: the upstream's, else estimated. A
    relayed stream has it once the relay ended (before ``on_end`` runs)."""
    usage_estimated: bool = False
    """The upstream reported no usage: ``usage`` is the router's estimate."""
    client_gone: bool = False
    """Set by the surface when the client left a relayed stream (see :meth:`Dispatcher.relay`)."""
    cut: str | None = None
    """Why a relayed stream stopped before its end although the upstream did not fail."""
    events: list[bytes] | None = None
    """Set to a list to keep every relayed event (body logging only)."""


class Dispatcher:
    """Runs requests against a plan with the router's retry and deadline policy."""

    def __init__(
        self,
        settings: RouterSettings,
        tracker: HealthTracker,
        *,
        rng: random.Random | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        redactor: Redactor | None = None,
    ) -> None:
        self.settings = settings
        self.tracker = tracker
        self.redactor = redactor or Redactor(())
        self.rng = rng or random.Random()
        self._clock = clock
        self._sleep = sleep

    def now(self) -> float:
        """Monotonic seconds: ``time.perf_counter`` unless a clock was injected.

        Not the loop's clock: uvloop's ``loop.time()`` ticks in whole milliseconds,
        too coarse for the sub-millisecond attempts this router measures.
        """
        return self._clock() if self._clock else time.perf_counter()

    async def complete(
        self, request: ChatRequest, plan: Plan, observer: Observer | None = None
    ) -> Outcome:
        """Run a non-streaming request; return the first good completion."""
        connect = self.settings.connect_timeout_s

        def call(entry: ModelEntry) -> Awaitable[Completion]:
            return entry.provider.chat(request, entry.target, connect)

        done, entry, attempts, started, deadline = await self._run(plan, call, observer)
        usage, estimated = completion_usage(request, done.body, done.usage)
        return Outcome(
            entry,
            attempts,
            completion=done,
            started=started,
            deadline=deadline,
            usage=usage,
            usage_estimated=estimated,
        )

    async def embed(
        self, request: EmbedRequest, plan: Plan, observer: Observer | None = None
    ) -> Outcome:
        """Run an embeddings request; return the first good answer."""
        connect = self.settings.connect_timeout_s

        def call(entry: ModelEntry) -> Awaitable[Completion]:
            # The config lets only providers that embed serve mode = "embedding".
            embedder = cast(Embedder, entry.provider)
            return embedder.embed(request, entry.target, connect)

        done, entry, attempts, started, deadline = await self._run(plan, call, observer)
        return Outcome(
            entry,
            attempts,
            completion=done,
            started=started,
            deadline=deadline,
            usage=done.usage,
            usage_estimated=done.usage_estimated,
        )

    async def open_stream(
        self, request: ChatRequest, plan: Plan, observer: Observer | None = None
    ) -> Outcome:
        """Start a streaming request: fall back until some model yields its first event."""
        connect = self.settings.connect_timeout_s

        async def call(entry: ModelEntry) -> tuple[bytes, AsyncIterator[bytes]]:
            agen = entry.provider.stream(request, entry.target, connect)
            try:
                first = await anext(agen)
            except StopAsyncIteration:
                raise ProviderError(Failure.MALFORMED, "stream ended before any event") from None
            except BaseException:
                await _aclose(agen)
                raise
            return first, agen

        (first, rest), entry, attempts, started, deadline = await self._run(
            plan, call, observer, stream=True
        )
        ttft = self.now() - started
        return Outcome(
            entry, attempts, first=first, rest=rest, started=started, deadline=deadline, ttft=ttft
        )

    async def _run(
        self,
        plan: Plan,
        call: Callable[[ModelEntry], Awaitable[T]],
        observer: Observer | None,
        *,
        stream: bool = False,
    ) -> tuple[T, ModelEntry, list[Attempt], float, float]:
        s = self.settings
        tracker = self.tracker
        deadline = self.now() + s.request_timeout_s
        attempts = skipped_attempts(plan) if plan.skipped else []
        # First every candidate once, in rank order; same-model retries wait in a
        # heap keyed by their earliest time, so a healthy next model never waits
        # behind a backoff that only the failed model needed.
        first_pass = iter(plan.candidates)
        retry_heap: list[tuple[float, int, ModelEntry, int]] = []
        tried = 0
        while tried < s.max_attempts:
            entry = next(first_pass, None)
            retries = 0
            if entry is None:
                if not retry_heap:
                    break
                not_before, _, entry, retries = heapq.heappop(retry_heap)
                wait = not_before - self.now()
                if wait > 0:
                    if self.now() + wait >= deadline:
                        break
                    await self._sleep(wait)
            remaining = deadline - self.now()
            if remaining <= 0:
                break
            tried += 1
            if observer is not None:
                await observer.attempt_started(entry.name, tried)
            tracker.on_attempt(entry.name)
            t0 = self.now()
            limit = min(s.first_token_timeout_s, remaining)
            try:
                async with asyncio.timeout(limit):
                    result = await call(entry)
            except ProviderError as exc:
                err = self.redactor.error(exc)
            except TimeoutError:
                what = "first token" if stream else "answer"
                err = ProviderError(Failure.TIMEOUT, f"no {what} within {limit:.3g}s")
            except InvalidBody as exc:
                # An adapter decoded the whole body for the first time and it failed
                # (e.g. a string that is not UTF-8): the client's fault, not the model's.
                err = ProviderError(Failure.CLIENT, str(exc), status=400)
            except Exception:
                # A bug in the router or an adapter, not something the upstream did:
                # a 500 with the traceback in the log, and the model's health untouched.
                trace = self.redactor.text(traceback.format_exc())
                log.error("internal error calling %s:\n%s", entry.name, trace)
                raise internal_error(attempts) from None
            else:
                took = self.now() - t0
                if not stream:
                    tracker.record_success(entry.name, took)
                attempts.append(
                    Attempt(entry.name, entry.provider.name, 200, None, took * 1000, "ok")
                )
                return result, entry, attempts, t0, deadline
            now = self.now()
            attempt = Attempt(
                entry.name,
                entry.provider.name,
                err.status,
                err.message,
                (now - t0) * 1000,
                err.failure.value,
                err.retry_after,
            )
            attempts.append(attempt)
            policy = rule(err.failure)
            if policy.to_client:
                raise client_error(err, entry, attempts)
            tracker.record_failure(
                entry.name,
                err.failure,
                retry_after_s=err.retry_after,
                status=err.status,
                error=err.message,
            )
            if observer is not None:
                await observer.attempt_failed(attempt)
            if not policy.next_model:
                break
            delay = self._retry_wait(err, retries, deadline - now)
            if delay is not None:
                heapq.heappush(retry_heap, (now + delay, tried, entry, retries + 1))
        raise exhausted(plan, attempts, deadline_hit=self.now() >= deadline)

    def _retry_wait(self, err: ProviderError, retries: int, remaining: float) -> float | None:
        """Seconds to wait before trying the same model again, or ``None`` to move on."""
        s = self.settings
        again = rule(err.failure).again
        if retries >= s.retries_per_model or again is Again.NO:
            return None
        if again is Again.AFTER_RETRY_AFTER:
            ra = err.retry_after
            if ra is None or ra > s.retry_after_max_s:
                return None
            wait = ra
        else:
            wait = backoff(retries + 1, base=s.backoff_base_s, cap=s.backoff_max_s, rand=self.rng)
            if err.retry_after is not None and err.retry_after <= s.retry_after_max_s:
                wait = max(wait, err.retry_after)
        return wait if wait < remaining else None

    async def relay(
        self,
        request: ChatRequest,
        out: Outcome,
        on_end: Callable[[Outcome, str | None], None],
        shape: StreamShape | None = None,
    ) -> AsyncIterator[bytes]:
        """Forward a committed stream: the first event, then the rest under the idle timeout.

        An upstream failure after the first event ends the stream with a
        ``data: {"error": ...}`` event and no ``[DONE]``, so no client mistakes a cut
        stream for a finished one. ``on_end(out, error)`` runs once at the end, with
        ``out.usage`` set (see :class:`~modelrouter.usage.UsageTap`: the usage-only
        chunk reaches only a client that asked for it).

        A door of another API gives a ``shape``: each event then goes out as the shape
        turns it, a failure ends the stream with the shape's own error event, and the
        usage for the log is the shape's.

        A stream abandoned before its end by our side (the client left: the surface
        sets ``out.client_gone``; or the server cancelled it at shutdown) says so in
        ``out.cut`` and leaves the model's health alone: the upstream did nothing wrong,
        and it did not finish either.
        """
        assert out.rest is not None
        s = self.settings
        idle = s.idle_timeout_s
        deadline = out.deadline
        error: str | None = None
        failure: Failure | None = None
        tap = UsageTap(
            client_asked=request.include_usage,
            expected=request.include_usage or getattr(out.entry.provider, "stream_usage", False),
        )
        rest = out.rest
        finished = False
        # Chat's own events go out untouched: no call per event on that path.
        feed = shape.feed if shape is not None else None
        kept = out.events  # the events themselves, only when bodies are logged
        try:
            if kept is not None:
                kept.append(out.first)
            if feed is None:
                if tap.passes(out.first):
                    yield out.first
            else:
                for translated in feed(out.first):
                    yield translated
            while True:
                wait = min(idle, deadline - self.now())
                try:
                    async with asyncio.timeout(wait):
                        event = await anext(rest)
                except StopAsyncIteration:
                    finished = True
                    break
                if kept is not None:
                    kept.append(event)
                if feed is not None:
                    for translated in feed(event):
                        yield translated
                    continue
                if tap.passes(event):
                    yield event
        except ProviderError as exc:
            error, failure = self.redactor.error(exc).message, Failure.STREAM_CUT
        except TimeoutError:
            error, failure = f"upstream went silent for {idle:g}s", Failure.TIMEOUT
            if self.now() >= deadline:
                error = "request deadline reached"
        except Exception:
            # Our bug, not the upstream's: end the stream as failed, keep health as is.
            trace = self.redactor.text(traceback.format_exc())
            log.error("internal error relaying %s:\n%s", out.entry.name, trace)
            error = "internal error in modelrouter"
        finally:
            await _aclose(rest)
            if shape is not None and shape.usage is not None:
                out.usage, out.usage_estimated = shape.usage, False
            else:
                out.usage, out.usage_estimated = tap.result(request)
            name = out.entry.name
            if failure is not None:
                self.tracker.record_failure(name, failure, error=error)
            elif error is not None:
                pass
            elif finished:
                self.tracker.record_success(name, self.now() - out.started, out.ttft)
            else:
                out.cut = CLIENT_GONE if out.client_gone else SHUTDOWN_CUT
            on_end(out, error)
        if error is not None:
            if shape is None:
                yield stream_error_event(error, out.entry)
            else:
                yield shape.fail(stream_failure(error, out.entry))


async def _aclose(agen: AsyncIterator[bytes]) -> None:
    aclose = getattr(agen, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception:
            pass
