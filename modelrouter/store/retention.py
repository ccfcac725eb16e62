"""Retention: old call-log rows go, in small batches; hourly roll-ups stay.

Each batch is one short transaction (found through ``ix_calls_ts``), with a pause
between batches, so the writer is never held up for long, not even by SQLite's
single write lock.
"""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from modelrouter.store.rollup import MINUTE, MINUTE_KEEP_S
from modelrouter.store.schema import calls, usage_rollup

BATCH = 2000
"""Rows deleted per transaction."""
PAUSE_S = 0.05
"""Pause between two batches."""


async def sweep(engine: AsyncEngine, retention_days: float, *, now: float | None = None) -> int:
    """Delete call-log rows older than ``retention_days`` and per-minute roll-ups older
    than two days; return how many call-log rows went."""
    now = time.time() if now is None else now
    cutoff = int((now - retention_days * 86400) * 1_000_000)
    total = 0
    while True:
        oldest = select(calls.c.id).where(calls.c.ts < cutoff).order_by(calls.c.ts).limit(BATCH)
        async with engine.begin() as conn:
            result = await conn.execute(
                delete(calls).where(calls.c.id.in_(oldest.scalar_subquery()))
            )
        total += result.rowcount
        if result.rowcount < BATCH:
            break
        await asyncio.sleep(PAUSE_S)
    minute_cutoff = int(now) - MINUTE_KEEP_S
    async with engine.begin() as conn:
        await conn.execute(
            delete(usage_rollup).where(
                usage_rollup.c.bucket_s == MINUTE, usage_rollup.c.t < minute_cutoff
            )
        )
    return total
