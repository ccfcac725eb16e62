"""The call log's writer measured on its own: paced rates, bulk loading, and the
PostgreSQL driver comparison that chose asyncpg."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.store_data import records
from modelrouter.store.engine import StoreURL, make_engine
from modelrouter.store.record import COLUMNS, row_of
from modelrouter.store.sink import Sink
from modelrouter.store.spool import Spool
from modelrouter.store.writer import OK, Writer


async def _noop() -> None:
    pass


async def paced(store: StoreURL, rate: int, seconds: float) -> dict[str, Any]:
    """Feed the writer ``rate`` records/s for ``seconds``; how it kept up.

    The queue is flat when its deepest point stays about one flush's worth of records
    (the writer takes everything every 50 ms) and nothing had to be spooled.
    """
    engine = make_engine(store, name="modelrouter-writer", writer=True)
    with tempfile.TemporaryDirectory() as spool_dir:
        w = Writer(Sink(engine), Spool(Path(spool_dir)), queue_size=10**7, verify=_noop)
        w.state, w.verified = OK, True
        stop = asyncio.Event()
        task = asyncio.create_task(w.run(stop))
        now = time.time()
        feed = records(int(rate * seconds), start=now - seconds, end=now, seed=rate % 97)
        depths: list[int] = []
        cpu0, t0 = time.process_time(), time.perf_counter()
        i = 0
        while i < len(feed):
            due = min(len(feed), int((time.perf_counter() - t0) * rate))
            while i < due:
                w.put(feed[i])
                i += 1
            depths.append(len(w.queue))
            await asyncio.sleep(0.005)
        fed = time.perf_counter() - t0
        # Polling the writer's counters: it has no event to wait on, and needs none.
        while w.queue or (w.written < len(feed) and w.spooled == 0):  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        stop.set()
        await task
        await w.finish(5)
    await engine.dispose()
    return {
        "engine": store.dialect,
        "rate": rate,
        "records": len(feed),
        "achieved_per_s": round(w.written / elapsed),
        "feed_s": round(fed, 2),
        "drain_after_feed_s": round(elapsed - fed, 3),
        "max_queue": max(depths),
        "queue_at_half_time": depths[len(depths) // 2],
        "spooled": w.spooled,
        "cpu_us_per_record": round(cpu / len(feed) * 1e6, 2),
    }


async def bulk_load(store: StoreURL, n: int, *, days: float, batch: int = 5000) -> dict[str, Any]:
    """Write ``n`` records spread over the last ``days`` straight through the sink
    (the writer's own batches, roll-ups included); the rate it reached."""
    engine = make_engine(store, name="modelrouter-writer", writer=True)
    sink = Sink(engine)
    now = time.time()
    written = 0
    spent = 0.0
    chunk = 100_000  # generated in slices: a million records at once is a lot of memory
    for part in range(0, n, chunk):
        size = min(chunk, n - part)
        span = days * 86400 / n
        start = now - days * 86400 + part * span
        rows = [row_of(r) for r in records(size, start=start, end=start + size * span, seed=part)]
        t0 = time.perf_counter()
        for i in range(0, size, batch):
            written += await sink.write(rows[i : i + batch])
        spent += time.perf_counter() - t0
    await sink.drop()
    await engine.dispose()
    return {"engine": store.dialect, "records": written, "per_s": round(written / spent)}


async def drivers(store: StoreURL, batches: int = 40, size: int = 1000) -> list[dict[str, Any]]:
    """asyncpg's binary COPY against psycopg 3's COPY into the real ``calls`` table:
    records/s and the CPU the client process spends per record."""
    dsn = store.url.set(drivername="postgresql").render_as_string(hide_password=False)
    rows = [row_of(r) for r in records(batches * size, start=0, end=1)]
    out: list[dict[str, Any]] = []

    async def asyncpg_copy() -> None:
        import asyncpg

        conn = await asyncpg.connect(dsn)
        for i in range(0, len(rows), size):
            async with conn.transaction():
                await conn.copy_records_to_table(
                    "calls", records=rows[i : i + size], columns=list(COLUMNS)
                )
        await conn.close()

    async def psycopg_copy() -> None:
        import psycopg

        cols = ", ".join(f'"{c}"' for c in COLUMNS)
        conn = await psycopg.AsyncConnection.connect(dsn)
        for i in range(0, len(rows), size):
            async with conn.cursor() as cur, cur.copy(f"COPY calls ({cols}) FROM STDIN") as cp:
                for row in rows[i : i + size]:
                    await cp.write_row(row)
            await conn.commit()
        await conn.close()

    import asyncpg

    for rep in range(3):
        for name, job in (("asyncpg COPY", asyncpg_copy), ("psycopg COPY", psycopg_copy)):
            if name.startswith("psycopg"):
                try:
                    import psycopg  # noqa: F401
                except ImportError:
                    out.append({"driver": name, "error": "psycopg not installed (.[bench])"})
                    continue
            conn = await asyncpg.connect(dsn)
            await conn.execute("TRUNCATE calls")
            await conn.close()
            cpu0, t0 = time.process_time(), time.perf_counter()
            await job()
            wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            out.append(
                {
                    "driver": name,
                    "round": rep + 1,
                    "per_s": round(len(rows) / wall),
                    "client_cpu_us_per_record": round(cpu / len(rows) * 1e6, 2),
                }
            )
    conn = await asyncpg.connect(dsn)
    await conn.execute("TRUNCATE calls")
    await conn.close()
    return out
