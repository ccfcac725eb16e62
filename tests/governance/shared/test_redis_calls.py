"""Waiting for an answer within a bound (no Redis needed)."""

from __future__ import annotations

import asyncio
import time

import pytest

from modelrouter.governance.redis_calls import answer_by


async def test_an_answer_before_the_deadline_is_returned() -> None:
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[int] = loop.create_future()
    loop.call_later(0.01, fut.set_result, 7)
    assert await answer_by(fut, loop.time() + 1) == 7


async def test_no_answer_by_the_deadline_is_a_timeout_and_drops_the_answer() -> None:
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[int] = loop.create_future()
    started = loop.time()
    with pytest.raises(TimeoutError):
        await answer_by(fut, started + 0.05)
    assert 0.04 <= loop.time() - started < 0.5
    assert fut.cancelled()  # whoever answers later finds nobody waiting


async def test_an_answer_that_arrived_with_the_deadline_wins() -> None:
    # A busy loop (here: blocked for 50 ms) finds the answer and the deadline due in
    # the same turn: the answer, there first, is used.
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[int] = loop.create_future()
    deadline = loop.time() + 0.02
    waiter = asyncio.ensure_future(answer_by(fut, deadline))
    await asyncio.sleep(0)
    loop.call_at(deadline - 0.01, fut.set_result, 3)
    loop.call_soon(time.sleep, 0.05)
    assert await waiter == 3


async def test_a_cancelled_caller_is_cancelled_not_timed_out() -> None:
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[int] = loop.create_future()
    waiter = asyncio.ensure_future(answer_by(fut, loop.time() + 5))
    await asyncio.sleep(0.01)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
