"""The gate: permissions before limits, the metrics hook, settling exactly once."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from modelrouter.governance.gate import Gate, SettlingEvents, Ticket, make_limiter
from modelrouter.governance.limiter import LocalLimiter
from modelrouter.governance.types import Ask, Grant, Identity, Limits, Scope
from modelrouter.governance.wire import LimitExceeded
from modelrouter.settings import Settings
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


async def test_permissions_first_then_limits_and_the_hook_hears_both() -> None:
    gate = Gate(Counting())
    heard: list[tuple[str, str]] = []
    gate.on_limited = lambda scope, reason: heard.append((scope, reason))
    who = scoped(1, [("a",)])
    with pytest.raises(LimitExceeded) as denied:
        await gate.admit(who, ["b"], ask)
    assert denied.value.status == 403
    # A refusal by permission counts nothing and still tells the key its limits.
    assert denied.value.headers["x-ratelimit-remaining-requests"] == "1"
    ticket = await gate.admit(who, ["a"], ask)
    assert ticket is not None and ticket.headers["x-ratelimit-remaining-requests"] == "0"
    with pytest.raises(LimitExceeded):
        await gate.admit(who, ["a"], ask)
    assert heard == [("key", "models"), ("key", "rpm")]


async def test_allow_lists_alone_need_no_limiter() -> None:
    def never() -> Ask:
        raise AssertionError("no estimate without limits")

    gate = Gate(Counting())
    assert await gate.admit(Identity(key_id="k", models=(("a",),)), ["a"], never) is None


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
