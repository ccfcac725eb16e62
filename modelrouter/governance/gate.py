"""The front door's governance step: permissions, then limits, and the settling after.

:class:`Gate` runs between planning (the candidates are known, so the estimate can
price them) and dispatch, for identities that have something to check (an allow-list
or a limited scope); an unrestricted key never gets here and costs nothing extra.
An admitted request holds a :class:`Ticket` that must be settled exactly once however
the request ends: the front door settles it from the request's record (complete,
stream end, stream cut, client gone) or with nothing used (failed, never started).

:func:`make_limiter` is the one place a limiter is chosen from the settings.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from modelrouter.errors import RouterError
from modelrouter.governance.budget import SpendSource
from modelrouter.governance.limiter import LocalLimiter
from modelrouter.governance.permissions import Permissions, requested_names
from modelrouter.governance.types import Ask, Grant, Identity, Limiter
from modelrouter.governance.wire import LimitExceeded
from modelrouter.recording import Call
from modelrouter.registry import ModelEntry, Plan
from modelrouter.settings import Settings
from modelrouter.store.record import CallRecord
from providers.base import ChatRequest

if TYPE_CHECKING:
    from modelrouter.cluster.link import RedisLink

Estimate = Callable[[ChatRequest, list[ModelEntry]], Ask]
"""How a door's requests are estimated (:mod:`modelrouter.governance.estimate`)."""
OnLimited = Callable[[str, str], None]
"""Called as ``on_limited(scope_kind, reason)`` for every refusal (the metrics hook:
``modelrouter_limited_total{scope,reason}``; reason ``rpm``, ``tpm``, ``budget`` or
``models``)."""


def make_limiter(
    settings: Settings, source: SpendSource | None, link: RedisLink | None = None
) -> Limiter:
    """The limiter for this config: per process (spend read from ``source``), or, with
    ``cluster.redis_url``, shared by every replica through Redis (over the process's
    cluster ``link`` when there is one), falling back to a per-process one while Redis
    is away when ``cluster.on_redis_error = "local"``."""
    local = LocalLimiter(source=source)
    cluster = settings.cluster
    if not cluster.redis_url:
        return local
    # Imported only here: a lone router never loads the Redis client.
    from modelrouter.governance.redis_limiter import RedisLimiter

    options: dict[str, Any] = {
        "on_error": cluster.on_redis_error,
        "fallback": local if cluster.on_redis_error == "local" else None,
        "source": source,
        "request_timeout_s": settings.router.request_timeout_s,
    }
    if link is not None:
        return RedisLimiter.on_link(link, **options)
    return RedisLimiter.from_url(cluster.redis_url, **options)


class Ticket:
    """An admitted request's reservation, settled exactly once."""

    __slots__ = ("_limiter", "done", "grant", "headers")

    def __init__(self, limiter: Limiter, grant: Grant) -> None:
        self._limiter = limiter
        self.grant = grant
        self.done = False
        self.headers = grant.headers
        """The ``x-ratelimit-*`` headers for the answer."""

    def settle(self, tokens: int, cost_usd: float) -> None:
        """Hand the real use to the limiter (later calls do nothing)."""
        if not self.done:
            self.done = True
            self._limiter.settle(self.grant, tokens, cost_usd)

    def settle_record(self, record: CallRecord) -> None:
        """Settle with the tokens and cost of the request's record."""
        if not self.done:
            self.done = True
            tokens = (record.input_tokens or 0) + (record.output_tokens or 0)
            self._limiter.settle(self.grant, tokens, record.cost_usd or 0.0)


class SettlingEvents:
    """A stream's events that settle their ticket when closed, even if never iterated.

    The relay settles through its end callback, which runs only if the relay started;
    a response closed before its first event (the client gone at once) closes a relay
    that never ran. Closing settles with nothing used, after the relay had its say.
    """

    __slots__ = ("_events", "_ticket")

    def __init__(self, events: AsyncIterator[bytes], ticket: Ticket) -> None:
        self._events = events
        self._ticket = ticket

    def __aiter__(self) -> SettlingEvents:
        return self

    def __anext__(self) -> Awaitable[bytes]:
        # The relay's own awaitable, returned as is: no extra frame per event.
        return self._events.__anext__()

    async def aclose(self) -> None:
        """Close the relay, then settle if it did not."""
        try:
            aclose = getattr(self._events, "aclose", None)
            if aclose is not None:
                await aclose()
        finally:
            self._ticket.settle(0, 0.0)


class Gate:
    """Permissions and limits for one front door, over one :class:`Limiter`."""

    def __init__(
        self,
        limiter: Limiter,
        default_route: Callable[[], str | None],
        log_refusal: Callable[[Call, Plan, RouterError, bool], None],
    ) -> None:
        self.limiter = limiter
        self.permissions = Permissions()
        self.on_limited: OnLimited | None = None
        """The metrics hook (see :data:`OnLimited`); the app sets it."""
        self._default_route = default_route
        self._log_refusal = log_refusal

    async def admit(
        self, call: Call, request: ChatRequest, plan: Plan, estimate: Estimate
    ) -> Ticket | None:
        """Check the names ``request`` asks for against the caller's allow-lists, then
        count it in with its ``estimate`` over the plan's candidates.

        A refusal (:class:`LimitExceeded`, 403 or 429, with the ``x-ratelimit-*``
        headers) is logged (``log_refusal``) and raised. Returns ``None`` when no scope
        limits anything (allow-lists only). Written for few calls: it runs for every
        limited request.
        """
        identity = call.identity
        try:
            if identity.models:
                model = call.requested_model
                default = None if model else self._default_route()
                names = requested_names(model, request, call.models_header, default)
                self.permissions.check(identity, names)
            if not identity.scopes:
                return None
            ask = estimate(request, plan.candidates)
            grant = await self.limiter.acquire(identity.scopes, ask)
        except LimitExceeded as err:
            self.refused(identity, err)
            self._log_refusal(call, plan, err, request.stream)
            raise
        return Ticket(self.limiter, grant)

    def refused(self, identity: Identity, err: LimitExceeded) -> None:
        """A refusal is being answered: complete its headers, tell the metrics hook."""
        if err.reason in ("models", "budget"):
            # Rate-limit refusals carry their headers already.
            err.headers.update(self.headers(identity))
        if self.on_limited is not None:
            self.on_limited(err.scope_kind, err.reason)

    def headers(self, identity: Identity) -> dict[str, str]:
        """The ``x-ratelimit-*`` headers of ``identity`` now, counting nothing."""
        return self.limiter.peek(identity.scopes) if identity.scopes else {}

    def may_use(self, identity: Identity, name: str) -> bool:
        """Whether ``identity`` may use route or model ``name``."""
        return not identity.models or self.permissions.may_use(identity, name)
