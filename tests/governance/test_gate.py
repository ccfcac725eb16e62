"""The gate: permissions before limits, the metrics hook, settling exactly once."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from modelrouter.governance.gate import Gate, SettlingEvents, Ticket, make_limiter
from modelrouter.governance.limiter import LocalLimiter
from modelrouter.governance.types import Ask, Grant, Identity, Limits, Scope
from modelrouter.governance.wire import LimitExceeded
from modelrouter.recording import Call
from modelrouter.registry import Plan
from modelrouter.settings import Settings
from providers.base import ChatRequest
from tests.fakes.clock import FakeClock


class Counting(LocalLimiter):
    """The real limiter, recording every settle."""

    def __init__(self) -> None:
        super().__init__(clock=FakeClock())
        self.settled: list[tuple[int, float]] = []

    def settle(self, grant: Grant, tokens: int, cost_usd: float) -> None:
        self.settled.append((tokens, cost_usd))
        super().settle(grant, tokens, cost_usd)


def scoped(rpm: int, models: Sequence[tuple[str, ...]] = ()) -> Identity:
    return Identity(key_id="k", scopes=(Scope("key", "k", Limits(rpm=rpm)),), models=tuple(models))


def ask() -> Ask:
    return Ask(10, 0.0)


def estimate(request: ChatRequest, candidates: list[Any]) -> Ask:
    return ask()


class Doorman:
    """A gate as the front door builds it, with what it logs and tells the metrics."""

    def __init__(self, default_route: str | None = "a") -> None:
        self.limiter = Counting()
        self.logged: list[tuple[str, int, bool]] = []
        self.heard: list[tuple[str, str]] = []
        self.gate = Gate(
            self.limiter,
            lambda: default_route,
            lambda call, plan, err, stream: self.logged.append((plan.route, err.status, stream)),
        )
        self.gate.on_limited = lambda scope, reason: self.heard.append((scope, reason))

    async def admit(self, who: Identity, model: str | None, **body: Any) -> Ticket | None:
        call = Call(surface="http", request_id="r", started=0.0, identity=who)
        request = ChatRequest.from_body({"messages": [{"role": "user", "content": "x"}], **body})
        call.requested_model = model
        if model is not None:
            request = ChatRequest.from_body({"model": model, **request.body})
        return await self.gate.admit(call, request, Plan(model or "default", []), estimate)


async def test_permissions_first_then_limits_and_every_refusal_is_heard_and_logged() -> None:
    door = Doorman()
    who = scoped(1, [("a",)])
    with pytest.raises(LimitExceeded) as denied:
        await door.admit(who, "b")
    assert denied.value.status == 403
    # A refusal by permission counts nothing and still tells the key its limits.
    assert denied.value.headers["x-ratelimit-remaining-requests"] == "1"
    ticket = await door.admit(who, "a")
    assert ticket is not None and ticket.headers["x-ratelimit-remaining-requests"] == "0"
    with pytest.raises(LimitExceeded):
        await door.admit(who, "a", stream=True)
    assert door.heard == [("key", "models"), ("key", "rpm")]
    assert door.logged == [("b", 403, False), ("a", 429, True)]


async def test_no_model_is_checked_as_the_default_route() -> None:
    who = Identity(key_id="k", models=(("a",),))
    assert await Doorman(default_route="a").admit(who, None) is None
    with pytest.raises(LimitExceeded, match="'elsewhere' is not allowed"):
        await Doorman(default_route="elsewhere").admit(who, None)
    with pytest.raises(LimitExceeded, match="'c' is not allowed"):
        await Doorman().admit(who, None, models=["a", "c"])


async def test_allow_lists_alone_need_no_limiter() -> None:
    door = Doorman()
    assert await door.admit(Identity(key_id="k", models=(("a",),)), "a") is None
    assert door.limiter.state()["scopes"] == 0


async def test_a_ticket_settles_once() -> None:
    limiter = Counting()
    grant = await limiter.acquire([Scope("key", "k", Limits(rpm=5))], ask())
    ticket = Ticket(limiter, grant)
    ticket.settle(3, 0.5)
    ticket.settle(0, 0.0)
    assert limiter.settled == [(3, 0.5)]


async def events(ticket: Ticket, log: list[str]) -> AsyncIterator[bytes]:
    try:
        yield b"one"
        yield b"two"
    finally:
        log.append("relay ended")
        ticket.settle(7, 0.1)  # as the relay's end callback does


async def test_a_stream_never_started_is_settled_with_nothing_when_closed() -> None:
    limiter = Counting()
    grant = await limiter.acquire([Scope("key", "k", Limits(rpm=5))], ask())
    ticket = Ticket(limiter, grant)
    log: list[str] = []
    stream = SettlingEvents(events(ticket, log), ticket)
    await stream.aclose()
    assert log == []  # the relay never ran, so it could not settle
    assert limiter.settled == [(0, 0.0)]


async def test_a_started_stream_settles_through_its_relay_only() -> None:
    limiter = Counting()
    grant = await limiter.acquire([Scope("key", "k", Limits(rpm=5))], ask())
    ticket = Ticket(limiter, grant)
    log: list[str] = []
    stream = SettlingEvents(events(ticket, log), ticket)
    got: list[Any] = [chunk async for chunk in stream]
    assert got == [b"one", b"two"]
    await stream.aclose()
    assert log == ["relay ended"]
    assert limiter.settled == [(7, 0.1)]


def test_make_limiter_is_per_process_without_redis() -> None:
    assert isinstance(make_limiter(Settings(), None), LocalLimiter)
