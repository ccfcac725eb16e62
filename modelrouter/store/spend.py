"""Spend since a moment, per key or per team, read from the usage roll-ups.

Budgets (CONTRACT.md section 5) are counted from the start of a UTC calendar period
(:mod:`modelrouter.governance.periods`). The call log is never scanned: the roll-ups
already hold ``cost_usd`` per hour (kept for good) and per minute (kept two days) for
the ``key`` and ``team`` dimensions, written in the same transaction as the records.

A span is read as whole hours from the hourly roll-ups, plus, when ``since`` falls
inside an hour, that hour's remaining minutes from the per-minute roll-ups (``since``
rounded down to its minute). Period starts are whole hours, so a budget's spend is one
range of hourly rows. Minute rows older than two days are gone: a ``since`` that old
and not on the hour is read from the start of its hour.
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from modelrouter.store.rollup import HOUR, MINUTE
from modelrouter.store.schema import VALUE_LEN, usage_rollup

SpendKind = Literal["key", "team"]
"""Whose spend: a key (by id; config keys are ``cfg:NAME``) or a team (by name)."""


def _window(since: float) -> ColumnElement[bool]:
    """Roll-up rows that together cover ``[since, now)`` once (see the module docstring)."""
    u = usage_rollup.c
    start = int(since) - int(since) % MINUTE
    first_hour = -(-start // HOUR) * HOUR  # the first whole hour at or after start
    hours = and_(u.bucket_s == HOUR, u.t >= first_hour)
    if first_hour == start:
        return hours
    minutes = and_(u.bucket_s == MINUTE, u.t >= start, u.t < first_hour)
    return or_(hours, minutes)


async def spend_since(engine: AsyncEngine, kind: SpendKind, id: str, since: float) -> float:
    """USD spent by key ``id`` or team ``id`` from ``since`` (epoch seconds) until now."""
    u = usage_rollup.c
    stmt = select(func.coalesce(func.sum(u.cost_usd), 0.0)).where(
        u.dim == kind, u.value == id[:VALUE_LEN], _window(since)
    )
    async with engine.connect() as conn:
        total = (await conn.execute(stmt)).scalar_one()
    return float(total)


async def spend_all(engine: AsyncEngine, kind: SpendKind, since: float) -> dict[str, float]:
    """USD spent from ``since`` by every key (or team) that spent anything, by id (or
    name): one query for a whole list."""
    u = usage_rollup.c
    stmt = (
        select(u.value, func.sum(u.cost_usd))
        .where(u.dim == kind, u.value != "", _window(since))
        .group_by(u.value)
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(stmt)).all()
    return {str(value): float(total) for value, total in rows}
