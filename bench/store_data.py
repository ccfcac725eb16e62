"""Synthetic call-log records and store set-up for ``python -m bench.store``.

Records look like a real gateway's traffic: several models, routes, providers, keys and
teams, mostly successes with some failures and fallbacks, latencies spread over
orders of magnitude, timestamps spread over the window asked for.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import asyncpg

from modelrouter.errors import Attempt
from modelrouter.settings import StoreSettings
from modelrouter.store import migrate
from modelrouter.store.engine import StoreURL, make_engine, resolve
from modelrouter.store.record import CallRecord

MODELS = [f"model-{i}" for i in range(8)]
ROUTES = ["default", "fast", "smart", "cheap"]
PROVIDERS = ["openai", "anthropic", "gemini"]
KEYS = [f"key-{i:02d}" for i in range(20)]
TEAMS = ["research", "product", "infra", "sales", "support"]
PG_BENCH_DB = "modelrouter_bench"


def records(n: int, *, start: float, end: float, seed: int = 7) -> list[CallRecord]:
    """``n`` records with timestamps spread evenly over ``[start, end)``, oldest first."""
    rng = random.Random(seed)
    out = []
    step = (end - start) / n
    for i in range(n):
        model = rng.choice(MODELS)
        provider = PROVIDERS[MODELS.index(model) % len(PROVIDERS)]
        roll = rng.random()
        status, code = (200, None) if roll < 0.97 else ((502, "all_models_failed"))
        if roll >= 0.99:
            status, code = 429, "rate_limit_exceeded"
        fallback = rng.random() < 0.05
        attempts = [Attempt(model, provider, 200 if status == 200 else 503, None, 5.0, "ok")]
        if fallback:
            attempts.insert(0, Attempt("model-x", "openai", 500, "upstream 500", 3.0, "server"))
        out.append(
            CallRecord(
                id=f"bench{seed:02d}{i:014x}",
                request_id=f"bench{seed:02d}{i:014x}",
                ts=start + i * step,
                surface="http" if rng.random() < 0.9 else "mcp",
                endpoint="/v1/chat/completions",
                route=rng.choice(ROUTES),
                requested_model="default",
                model=model if status == 200 else None,
                provider=provider if status == 200 else None,
                status=status,
                error_code=code,
                stream=rng.random() < 0.3,
                latency_ms=rng.lognormvariate(6, 1.2),
                ttft_ms=None,
                input_tokens=rng.randint(10, 4000),
                output_tokens=rng.randint(1, 800),
                cached_tokens=None,
                cost_usd=rng.random() / 100,
                price_unknown=False,
                usage_estimated=False,
                fallbacks=1 if fallback else 0,
                attempts=attempts,
                user=None,
                tags=(),
                key_id=rng.choice(KEYS),
                key_name=None,
                team=rng.choice(TEAMS),
            )
        )
    return out


async def pg_url(base: str) -> str:
    """The benchmark's own PostgreSQL database (created if missing), emptied."""
    conn = await asyncpg.connect(base, timeout=5)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", PG_BENCH_DB):
            await conn.execute(f"CREATE DATABASE {PG_BENCH_DB}")
    finally:
        await conn.close()
    url = base.rsplit("/", 1)[0] + "/" + PG_BENCH_DB
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("DROP TABLE IF EXISTS calls, usage_rollup, alembic_version CASCADE")
    finally:
        await conn.close()
    return url


async def fresh_store(url: str) -> StoreURL:
    """``url`` resolved and upgraded to the current schema."""
    store = resolve(StoreSettings(url=url), None)
    assert store is not None
    engine = make_engine(store, name="bench-migrate", writer=True)
    try:
        await migrate.upgrade(engine)
    finally:
        await engine.dispose()
    return store


def now() -> float:
    """Wall-clock seconds."""
    return time.time()


def run(coro: Any) -> Any:
    """``asyncio.run`` (the store code runs on any loop)."""
    return asyncio.run(coro)
