"""The values shared by keys, permissions, limits and budgets, and the limiter protocol.

An :class:`Identity` is what a presented key resolves to (from a cache, never from
the store on the request path). Its :attr:`Identity.scopes` are the limit holders a
request counts against: the key's own, then its team's; the stricter wins because a
request must pass every scope. A :class:`Limiter` counts requests, tokens and spend
per scope: :meth:`Limiter.acquire` at admission with an estimate (:class:`Ask`),
:meth:`Limiter.settle` when the request ends with what it really used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Period = Literal["day", "week", "month", "total"]
ScopeKind = Literal["key", "team"]


@dataclass(frozen=True, slots=True)
class Limits:
    """A scope's limits; ``None`` = no limit of that kind."""

    rpm: int | None = None
    tpm: int | None = None
    budget_usd: float | None = None
    budget_period: Period = "month"

    @property
    def any(self) -> bool:
        """Whether anything is limited (a scope without limits is never counted)."""
        return self.rpm is not None or self.tpm is not None or self.budget_usd is not None


@dataclass(frozen=True, slots=True)
class Scope:
    """One holder of limits: a key (by id) or a team (by name)."""

    kind: ScopeKind
    id: str
    limits: Limits

    @property
    def label(self) -> str:
        """``key:ID`` or ``team:NAME``: how counters and messages name the scope."""
        return f"{self.kind}:{self.id}"


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a request's key says the caller is.

    ``key_id`` is ``None`` for the unrestricted ``server.api_keys`` (and for an open
    router); such an identity has no scopes and no model list.
    """

    key_id: str | None = None
    name: str | None = None
    team: str | None = None
    models: tuple[tuple[str, ...], ...] = ()
    """Allow-lists that all apply (the key's, its team's), each of names or globs."""
    scopes: tuple[Scope, ...] = ()
    expires_at: float | None = None
    """Epoch seconds after which the key is refused."""
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def limited(self) -> bool:
        """Whether any limit applies (its answers carry ``x-ratelimit-*`` headers)."""
        return any(s.limits.any for s in self.scopes)


UNRESTRICTED = Identity()
"""The identity of a ``server.api_keys`` key, or of anyone when no key is configured."""


@dataclass(frozen=True, slots=True)
class Ask:
    """What a request is expected to use, reserved at admission."""

    tokens: int
    """Input tokens (estimated from the body) plus the output it may produce."""
    cost_usd: float
    """The dearest candidate model's price for ``tokens``."""


@dataclass(slots=True)
class Grant:
    """An admitted request's reservation, handed back to :meth:`Limiter.settle`."""

    scopes: Sequence[Scope]
    ask: Ask
    headers: dict[str, str] = field(default_factory=dict)
    """``x-ratelimit-*`` headers for the answer (empty when nothing is limited)."""
    token: Any = None
    """Whatever the limiter needs to undo or reconcile the reservation."""


class Limiter(Protocol):
    """Counts requests, tokens and spend per scope (per process, or in Redis)."""

    async def acquire(self, scopes: Sequence[Scope], ask: Ask) -> Grant:
        """Count a request in against every scope, or raise a 429
        :class:`~modelrouter.governance.wire.LimitExceeded` (``rate_limit_exceeded``
        with ``Retry-After``, or ``insufficient_quota``) having counted nothing."""
        ...

    def settle(self, grant: Grant, tokens: int, cost_usd: float) -> None:
        """Replace the reservation with what the request really used (never blocks)."""
        ...

    def peek(self, scopes: Sequence[Scope]) -> dict[str, str]:
        """The ``x-ratelimit-*`` headers as last known, counting nothing and without
        I/O (for answers refused before admission, and ``/v1/models``)."""
        ...

    def state(self) -> dict[str, Any]:
        """What ``/health`` shows about the limiter."""
        ...

    async def start(self) -> None:
        """Start background work (budget refresh, connections); serving starts after."""
        ...

    async def aclose(self) -> None:
        """Stop background work and close connections."""
        ...
