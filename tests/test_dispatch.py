"""Dispatcher rules that need no HTTP: attempts, deadlines, retry order, streams."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from modelrouter.dispatch import CLIENT_GONE, SHUTDOWN_CUT, Outcome
from modelrouter.errors import RouterError
from modelrouter.runtime import Runtime
from tests.router import router_config

BODY: dict[str, Any] = {"messages": [{"role": "user", "content": "hi"}]}


def runtime(providers: dict[str, Any], route: list[str], **router: Any) -> Runtime:
    cfg = router_config(
        providers=providers,
        models={name: {"provider": name} for name in providers},
        routes={"default": {"models": route}},
        router=router,
    )
    return Runtime(cfg)


async def run(rt: Runtime, body: dict[str, Any] | None = None) -> Any:
    request, plan = rt.prepare(dict(body or BODY))
    return await rt.dispatcher.complete(request, plan)


async def test_max_attempts_caps_the_whole_request() -> None:
    failing = {"kind": "simulated", "failure_rate": 1.0}
    rt = runtime(
        {"a": failing, "b": failing, "c": failing},
        ["a", "b", "c"],
        max_attempts=2,
        retries_per_model=3,
    )
    with pytest.raises(RouterError) as info:
        await run(rt)
    assert info.value.status == 502
    assert [a.model for a in info.value.attempts] == ["a", "b"]


async def test_same_model_retry_comes_after_other_candidates() -> None:
    rt = runtime(
        {
            "a": {"kind": "simulated", "failure_rate": 1.0},
            "b": {"kind": "simulated", "failure_rate": 1.0},
        },
        ["a", "b"],
        retries_per_model=1,
        backoff_base_s=0.02,
        backoff_max_s=0.02,
    )
    with pytest.raises(RouterError) as info:
        await run(rt)
    names = [a.model for a in info.value.attempts]
    assert names[:2] == ["a", "b"] and sorted(names[2:]) == ["a", "b"]


async def test_single_model_route_retries_after_backoff() -> None:
    rt = runtime(
        {"a": {"kind": "simulated", "failure_rate": 1.0}},
        ["a"],
        retries_per_model=2,
        backoff_base_s=0.05,
        backoff_max_s=0.05,
    )
    t0 = time.perf_counter()
    with pytest.raises(RouterError) as info:
        await run(rt)
    took = time.perf_counter() - t0
    assert len(info.value.attempts) == 3
    assert took >= 2 * 0.025  # two backoffs of at least half the base (equal jitter)


async def test_deadline_ends_a_hanging_request() -> None:
    rt = runtime(
        {"a": {"kind": "simulated", "failure_rate": 1.0, "failure_kind": "hang"}},
        ["a"],
        request_timeout_s=0.2,
        first_token_timeout_s=10,
    )
    t0 = time.perf_counter()
    with pytest.raises(RouterError) as info:
        await run(rt)
    assert time.perf_counter() - t0 < 1.0
    assert "deadline" in info.value.message
    assert info.value.attempts[0].outcome == "timeout"


async def test_short_retry_after_429_is_retried_on_same_model() -> None:
    rt = runtime(
        {
            "a": {
                "kind": "simulated",
                "failure_rate": 1.0,
                "failure_status": 429,
                "retry_after_s": 0.05,
            }
        },
        ["a"],
        retries_per_model=1,
    )
    with pytest.raises(RouterError) as info:
        await run(rt)
    assert info.value.status == 429
    assert [a.outcome for a in info.value.attempts] == ["rate_limit", "rate_limit"]
    assert info.value.headers["Retry-After"] == "1"


async def test_stream_cut_after_first_event_ends_with_error_event() -> None:
    rt = runtime(
        {
            "a": {"kind": "simulated", "failure_rate": 1.0, "failure_kind": "cut"},
            "b": {"kind": "simulated"},
        },
        ["a", "b"],
    )
    request, plan = rt.prepare({**BODY, "stream": True})
    out = await rt.dispatcher.open_stream(request, plan)
    assert out.entry.name == "a"  # committed to the first model after its first event
    ended: list[str | None] = []
    events = [e async for e in rt.dispatcher.relay(request, out, lambda o, e: ended.append(e))]
    assert events[-1].startswith(b'data: {"error"')
    assert b"[DONE]" not in b"".join(events)
    assert ended and ended[0] is not None
    assert rt.tracker.snapshot("a")["last_error"]["failure"] == "stream_cut"


async def test_simulated_provider_is_deterministic_for_a_seed() -> None:
    flaky = {"kind": "simulated", "failure_rate": 0.5, "seed": 42}
    results = []
    for _ in range(2):
        rt = runtime({"a": flaky, "b": {"kind": "simulated"}}, ["a", "b"], retries_per_model=0)
        seq = []
        for _ in range(30):
            out = await run(rt)
            seq.append(out.entry.name)
        results.append(seq)
    assert results[0] == results[1]
    assert "a" in results[0] and "b" in results[0]


async def test_stream_records_time_to_first_token_and_total_latency() -> None:
    rt = runtime({"a": {"kind": "simulated", "latency_ms": 30, "chunk_ms": 20}}, ["a"])
    request, plan = rt.prepare({**BODY, "stream": True})
    out = await rt.dispatcher.open_stream(request, plan)
    events = [e async for e in rt.dispatcher.relay(request, out, lambda o, e: None)]
    assert events[-1] == b"data: [DONE]\n\n"
    snap = rt.tracker.snapshot("a")
    ttft, total = snap["ttft_ms"]["p50"], snap["latency_ms"]["p50"]
    assert 25 <= ttft < 100
    assert total >= ttft + 20 * (len(events) - 4)  # every gap after the first event


@pytest.mark.parametrize(("client_gone", "cut"), [(True, CLIENT_GONE), (False, SHUTDOWN_CUT)])
async def test_a_stream_abandoned_by_our_side_is_logged_as_such_and_leaves_health_alone(
    client_gone: bool, cut: str
) -> None:
    rt = runtime({"a": {"kind": "simulated", "chunk_ms": 50}}, ["a"])
    request, plan = rt.prepare({**BODY, "stream": True})
    out = await rt.dispatcher.open_stream(request, plan)
    ended: list[Outcome] = []
    relay = rt.dispatcher.relay(request, out, lambda o, e: ended.append(o))

    async def consume() -> None:
        async for _ in relay:
            pass

    task = asyncio.ensure_future(consume())
    await asyncio.sleep(0.08)  # the first event and one more are through
    # The HTTP surface marks a leaving client; a shutdown past the drain window cancels.
    out.client_gone = client_gone
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert ended == [out] and out.cut == cut
    snap = rt.tracker.snapshot("a")
    assert snap["totals"] == {"requests": 0, "failures": 0}
    assert snap["latency_ms"]["p50"] is None and snap["last_error"] is None
