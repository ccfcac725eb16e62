"""Nothing lost: the store stops or loses its connections under load, the spool cannot be
written, the server is told to stop. Every request is still answered, and every record
ends up in the store exactly once, counted once in the roll-ups.

The store "goes down" through a TCP proxy in front of the machine's PostgreSQL, or by
``pg_terminate_backend`` on the writer's connections; PostgreSQL itself keeps running.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx2
import pytest

from tests.router import RunningRouter, router_config, run_router
from tests.store.helpers import count, sql, upgrade, wait_until
from tests.store.load import KEY as LOAD_KEY
from tests.store.load import Load
from tests.store.proxy import TcpProxy
from tests.store.services import PG_HOST, PG_PORT, require_pg, reset_pg


@pytest.fixture
def pg() -> str:
    url = require_pg()
    asyncio.run(reset_pg(url))
    upgrade(url)
    return url


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    with TcpProxy((PG_HOST, PG_PORT)) as p:
        yield p


def through(url: str, proxy: TcpProxy) -> str:
    return url.replace(f"{PG_HOST}:{PG_PORT}", f"127.0.0.1:{proxy.port}")


def sim_config(url: str, spool: Path, **store: Any) -> Any:
    return router_config(
        providers={"sim": {"kind": "simulated", "latency_ms": 1}},
        models={"m": {"provider": "sim", "input_cost_per_mtok": 1, "output_cost_per_mtok": 2}},
        routes={"default": {"models": ["m"]}},
        store={"url": url, "spool_dir": str(spool), **store},
        server={"api_keys": [LOAD_KEY]},
    )


def store_health(r: RunningRouter) -> dict[str, Any]:
    auth = {"authorization": f"Bearer {LOAD_KEY}"}  # the store's detail: for key holders
    health: dict[str, Any] = httpx2.get(r.url + "/health", headers=auth, timeout=10).json()["store"]
    return health


def assert_exactly_once(url: str, load: Load) -> None:
    """Every answered request has its record, once, and the roll-ups count each once."""
    stored = [row["id"] for row in sql(url, "SELECT id FROM calls")]
    assert len(stored) == len(set(stored))
    assert set(load.answered) <= set(stored)
    assert len(stored) == len(load.answered)  # and nothing the clients did not see
    rolled = sql(
        url, "SELECT sum(requests) AS n FROM usage_rollup WHERE bucket_s = 3600 AND dim = 'team'"
    )
    assert int(rolled[0]["n"]) == len(stored)
    minute = sql(
        url, "SELECT sum(requests) AS n FROM usage_rollup WHERE bucket_s = 60 AND dim = 'key'"
    )
    assert int(minute[0]["n"]) == len(stored)


def test_store_down_under_load_spools_then_replays_exactly_once(
    pg: str, proxy: TcpProxy, tmp_path: Path
) -> None:
    with run_router(sim_config(through(pg, proxy), tmp_path / "spool")) as r:
        load = Load(r.url).start()
        wait_until(lambda: load.count >= 100, what="load before the cut")
        proxy.stop()
        before = load.count
        deepest = 0

        def spooling() -> bool:
            nonlocal deepest
            health = store_health(r)
            deepest = max(deepest, health["spool_depth"])
            return health["state"] == "down" and deepest > 50 and load.count > before + 300

        wait_until(spooling, what="records spooled while the store is down")
        assert store_health(r)["last_error"]
        proxy.start()
        wait_until(lambda: load.count > before + 600, what="load after the store is back")
        load.stop()

        def drained() -> bool:
            h = store_health(r)
            return h["state"] == "ok" and h["spool_depth"] == 0 and h["queue_depth"] == 0

        wait_until(drained, timeout=30, what="the spool replayed")
        health = store_health(r)
    assert load.failures == []
    assert set(load.answered.values()) == {200}
    assert health["dropped"] == 0 and health["spooled"] >= deepest
    assert_exactly_once(pg, load)
    assert not list((tmp_path / "spool").glob("*.jsonl"))  # replayed segments are deleted


def test_writer_connections_killed_under_load(pg: str, tmp_path: Path) -> None:
    async def kill() -> int:
        conn = await asyncpg.connect(pg)
        try:
            return len(
                await conn.fetch(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = 'modelrouter-writer'"
                    " AND datname = current_database()"
                )
            )
        finally:
            await conn.close()

    with run_router(sim_config(pg, tmp_path / "spool")) as r:
        load = Load(r.url).start()
        killed = 0
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            killed += asyncio.run(kill())
            time.sleep(0.15)
        load.stop()
        wait_until(
            lambda: store_health(r)["state"] == "ok" and store_health(r)["spool_depth"] == 0,
            timeout=30,
            what="the writer recovering",
        )
        wait_until(lambda: count(pg) >= len(load.answered), what="every record stored")
    assert killed >= 3
    assert load.failures == [] and len(load.answered) > 200
    assert_exactly_once(pg, load)


def test_a_spool_that_cannot_be_written_is_reported_and_nothing_is_lost(
    pg: str, proxy: TcpProxy, tmp_path: Path
) -> None:
    # The spool's directory cannot be made (a file stands where it would go): every
    # spool write fails, as on a full or read-only disk.
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    proxy.stop()
    with run_router(sim_config(through(pg, proxy), blocker / "spool")) as r:
        load = Load(r.url, threads=4).start()

        def reported() -> bool:
            h = store_health(r)
            return bool(h["spool_error"]) and h["queue_depth"] > 100

        wait_until(reported, what="the spool failure reported")
        health = store_health(r)
        assert health["state"] == "down" and "NotADirectoryError" in health["spool_error"]
        proxy.start()
        load.stop()
        wait_until(
            lambda: store_health(r)["queue_depth"] == 0 and store_health(r)["state"] == "ok",
            timeout=30,
            what="the queue written once the store is back",
        )
        assert store_health(r)["dropped"] == 0
    assert load.failures == [] and set(load.answered.values()) == {200}
    assert_exactly_once(pg, load)
