"""Health-ranked routing end to end: real router, real upstream fakes, the openai SDK."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter
from typing import Any

import httpx2
import openai
import pytest

from tests.fakes.clock import FakeClock
from tests.fakes.upstream import FakeUpstream, ok, rate_limited, status
from tests.router import RunningRouter, router_config, run_router

MESSAGES: list[Any] = [{"role": "user", "content": "hi"}]


def config(primary: FakeUpstream, backup: FakeUpstream, **health: Any) -> Any:
    return router_config(
        providers={
            "a": {"kind": "openai", "base_url": primary.base_url},
            "b": {"kind": "openai", "base_url": backup.base_url},
        },
        models={"primary": {"provider": "a"}, "backup": {"provider": "b"}},
        routes={"default": {"models": ["primary", "backup"]}},
        router={"retries_per_model": 0},
        health={"failure_threshold": 3, "open_s": 60, "slow_start_s": 0, **health},
    )


def served(client: openai.OpenAI) -> tuple[str, int]:
    raw = client.chat.completions.with_raw_response.create(model="default", messages=MESSAGES)
    return raw.headers["x-modelrouter-model"], int(raw.headers["x-modelrouter-attempts"])


def health_of(r: RunningRouter, model: str) -> dict[str, Any]:
    report: dict[str, Any] = httpx2.get(r.url + "/health", timeout=5).json()
    return dict(report["models"][model])


def test_breaker_opens_after_threshold_then_skips_dead_primary(
    primary: FakeUpstream, backup: FakeUpstream
) -> None:
    clock = FakeClock()
    with run_router(config(primary, backup, open_s=0.5), health_clock=clock) as r:
        client = openai.OpenAI(base_url=r.base_url, api_key="x", max_retries=0)
        assert served(client) == ("primary", 1)
        primary.default = status(503)
        # Three consecutive failures open the breaker; each request is still answered.
        for _ in range(3):
            assert served(client) == ("backup", 2)
        h = health_of(r, "primary")
        assert h["breaker"] == "open" and h["state"] == "open"
        assert "breaker open until" in (h["reason"] or "")
        calls_before = primary.calls
        for _ in range(20):
            assert served(client) == ("backup", 1)
        assert primary.calls == calls_before  # not one more request spent on the dead model
        # When everything fails, the error explains why the open model went last.
        backup.default = status(500)
        with pytest.raises(openai.APIStatusError) as info:
            client.chat.completions.create(model="default", messages=MESSAGES)
        body: Any = info.value.body
        assert "breaker open until" in body["ranking"]["primary"]
        assert [a["model"] for a in body["attempts"]][:2] == ["backup", "primary"]
        backup.default = ok()
        routes = httpx2.get(r.url + "/health", timeout=5).json()["routes"]
        assert routes["default"]["order"] == ["backup", "primary"]
        assert "breaker open" in routes["default"]["notes"]["primary"]
        assert httpx2.get(r.url + "/readyz", timeout=5).status_code == 200
        # Without probes, after open_s one real request is the half-open trial.
        primary.default = ok()
        clock.advance(0.6)
        assert served(client) == ("primary", 1)
        assert health_of(r, "primary")["breaker"] == "closed"


def test_dead_primary_found_by_probes_and_traffic_returns_gradually(
    primary: FakeUpstream, backup: FakeUpstream
) -> None:
    cfg = config(primary, backup, probe="models", interval_s=0.1, slow_start_s=3)
    clock = FakeClock()
    with run_router(cfg, health_clock=clock) as r:
        r.runtime.registry.rng.seed(7)
        client = openai.OpenAI(base_url=r.base_url, api_key="x", max_retries=0)
        assert served(client) == ("primary", 1)
        primary.stop_sync()  # connections refused: real calls and probes fail alike
        deadline = time.monotonic() + 5
        while health_of(r, "primary")["breaker"] != "open":
            assert time.monotonic() < deadline, "breaker did not open"
            assert served(client)[0] == "backup"
        for _ in range(20):
            assert served(client) == ("backup", 1)
        assert health_of(r, "primary")["last_probe"]["ok"] is False

        primary.start_sync()  # same port, answering again
        deadline = time.monotonic() + 5
        while health_of(r, "primary")["breaker"] != "closed":
            assert time.monotonic() < deadline, "probe did not close the breaker"
            time.sleep(0.05)
        early = Counter(served(client)[0] for _ in range(40))
        assert 0 < early["primary"] < 30, early  # slow start: a share, not everything
        clock.advance(3.2)
        late = Counter(served(client)[0] for _ in range(20))
        assert late["primary"] == 20, late


def test_429_retry_after_cools_model_without_waiting(
    primary: FakeUpstream, backup: FakeUpstream
) -> None:
    with run_router(config(primary, backup)) as r:
        client = openai.OpenAI(base_url=r.base_url, api_key="x", max_retries=0)
        primary.script(rate_limited(retry_after=30))
        t0 = time.monotonic()
        assert served(client) == ("backup", 2)
        assert time.monotonic() - t0 < 1.0  # did not wait the 30 s
        h = health_of(r, "primary")
        assert h["state"] == "cooling_down"
        assert h["breaker"] == "closed"  # a rate limit is not an outage
        cooling = r.runtime.tracker.status("primary").cooling_until
        assert cooling is not None and 29 < cooling - time.monotonic() <= 30
        calls = primary.calls
        for _ in range(5):
            assert served(client) == ("backup", 1)
        assert primary.calls == calls


def test_thousand_concurrent_requests_while_primary_flips(
    primary: FakeUpstream, backup: FakeUpstream
) -> None:
    cfg = config(primary, backup, failure_threshold=2, open_s=0.05)
    stop = threading.Event()

    def flip() -> None:
        rng = random.Random(3)
        while not stop.is_set():
            primary.default = status(503) if rng.random() < 0.5 else ok()
            time.sleep(0.01)

    with run_router(cfg) as r:
        thread = threading.Thread(target=flip, daemon=True)
        thread.start()

        async def run() -> list[Any]:
            client = openai.AsyncOpenAI(base_url=r.base_url, api_key="x", max_retries=0, timeout=30)
            sem = asyncio.Semaphore(200)

            async def one(i: int) -> Any:
                async with sem:
                    if i % 2:
                        raw = await client.chat.completions.with_raw_response.create(
                            model="default", messages=MESSAGES
                        )
                        c = raw.parse().choices[0].message.content
                        return raw.headers["x-modelrouter-model"], c
                    stream = await client.chat.completions.create(
                        model="default", messages=MESSAGES, stream=True
                    )
                    text = "".join(
                        [ch.choices[0].delta.content or "" async for ch in stream if ch.choices]
                    )
                    return "stream", text

            try:
                return await asyncio.wait_for(
                    asyncio.gather(*(one(i) for i in range(1000))), timeout=120
                )
            finally:
                await client.close()

        results = asyncio.run(run())
        stop.set()
        thread.join()
        tracker = r.runtime.tracker
        snap = tracker.snapshot("primary")
    assert len(results) == 1000
    for who, text in results:
        assert text in ("hello from primary", "hello from backup"), (who, text)
        if who != "stream":
            assert text == f"hello from {who}"
    # Consistent state: the breaker is in a legal position and counts add up.
    assert snap["breaker"] in ("closed", "open", "half_open")
    assert snap["totals"]["failures"] <= snap["totals"]["requests"]
    assert tracker.snapshot("backup")["totals"]["failures"] == 0
