"""``modelrouter logs``, ``modelrouter usage`` and ``modelrouter db upgrade``.

They read (or migrate) the store named by the config directly, not through a running
server: the same queries as ``/admin/logs`` and ``/admin/usage``
(:mod:`modelrouter.store.queries`).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from modelrouter.config import LoadedConfig
from modelrouter.store import USAGE_GROUPS, USAGE_INTERVALS
from modelrouter.store.timespec import parse_time

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from modelrouter.store.engine import StoreURL
    from modelrouter.store.queries import LogFilter

# SQLAlchemy and Alembic are imported by the commands that use them, not by every
# `modelrouter` command (they double the CLI's start-up time).

FOLLOW_EVERY_S = 1.0
"""``logs --follow`` polls this often."""
LOOKBACK_S = 60.0
"""How far behind the newest record seen ``--follow`` looks again: a record is stamped
when its request ends and lands a moment later (a batch, or a spool replay)."""

Loader = Callable[[str | None], LoadedConfig]


class CommandError(Exception):
    """Printed on stderr; the command exits 2."""


def _store(cfg: LoadedConfig) -> StoreURL:
    from modelrouter.store.engine import resolve

    store = resolve(cfg.settings.store, cfg.directory)
    if store is None:
        raise CommandError('[store] url = "none": there is no store to read')
    return store


async def _reader(store: StoreURL) -> AsyncEngine:
    from modelrouter.store import migrate
    from modelrouter.store.engine import make_engine

    if store.path is not None and not store.path.exists():
        raise CommandError(f"no call log yet: {store.path} does not exist")
    engine = make_engine(store, name="modelrouter-cli", pool_size=1)
    state = await migrate.state(engine)
    if state.status != "current":
        await engine.dispose()
        raise CommandError(migrate.behind_message(store, state.current))
    return engine


def _when(args: argparse.Namespace, name: str, now: float) -> float | None:
    raw = getattr(args, name)
    if raw is None:
        return None
    try:
        return parse_time(raw, now=now)
    except ValueError as err:
        raise CommandError(f"--{name}: {err}") from None


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


LOG_HEAD = ["TIME (UTC)", "STATUS", "SURFACE", "ROUTE", "MODEL", "PROVIDER", "MS", "TOKENS"]
LOG_HEAD += ["COST $", "FB", "ERROR", "REQUEST ID"]


def _log_row(r: dict[str, Any]) -> list[str]:
    tokens = "-" if r["input_tokens"] is None else f"{r['input_tokens']}/{r['output_tokens']}"
    cost = "-" if r["cost_usd"] is None else f"{r['cost_usd']:.6f}"
    return [
        r["ts"].replace("T", " ").rstrip("Z")[:23],
        str(r["status"]),
        r["surface"],
        r["route"] or "-",
        r["model"] or "-",
        r["provider"] or "-",
        f"{r['latency_ms']:.1f}",
        tokens,
        cost,
        str(r["fallbacks"]),
        r["error_code"] or "",
        r["request_id"],
    ]


def _print_logs(records: list[dict[str, Any]], as_json: bool, head: bool) -> None:
    if as_json:
        for r in records:
            sys.stdout.write(orjson.dumps(r).decode() + "\n")
    elif records:
        # The header sizes the columns even when it is not printed again.
        lines = _table([LOG_HEAD] + [_log_row(r) for r in records]).splitlines()
        print("\n".join(lines if head else lines[1:]))
    sys.stdout.flush()


async def _logs(args: argparse.Namespace, cfg: LoadedConfig) -> None:
    from modelrouter.store import queries

    engine = await _reader(_store(cfg))
    try:
        now = time.time()
        filt = queries.LogFilter(
            since=_when(args, "since", now),
            until=_when(args, "until", now),
            model=args.model,
            route=args.route,
            key=args.key,
            team=args.team,
            status=args.status,
        )
        records, _ = await queries.list_logs(engine, filt, limit=args.limit)
        records.reverse()  # oldest first, as a log reads
        _print_logs(records, args.json, head=True)
        if args.follow:
            await _follow(engine, filt, records, args.json)
    except queries.QueryError as err:
        raise CommandError(str(err)) from None
    finally:
        await engine.dispose()


async def _follow(
    engine: AsyncEngine, filt: LogFilter, shown: list[dict[str, Any]], as_json: bool
) -> None:
    from modelrouter.store import queries

    async def window(since: float) -> list[dict[str, Any]]:
        bounded = dataclasses.replace(filt, since=max(since, filt.since or since))
        records, _ = await queries.list_logs(engine, bounded, limit=queries.MAX_LIMIT)
        return records

    newest = max((parse_time(r["ts"]) for r in shown), default=time.time())
    # What the window already holds when following starts is not news, shown or not.
    seen = {r["id"]: parse_time(r["ts"]) for r in [*shown, *await window(newest - LOOKBACK_S)]}
    while True:
        await asyncio.sleep(FOLLOW_EVERY_S)
        since = newest - LOOKBACK_S
        fresh = [r for r in reversed(await window(since)) if r["id"] not in seen]
        for r in fresh:
            seen[r["id"]] = parse_time(r["ts"])
        newest = max(seen.values(), default=newest)
        for rid in [rid for rid, ts in seen.items() if ts < since]:
            del seen[rid]  # out of the window: cannot come again
        _print_logs(fresh, as_json, head=False)


def _fmt_ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


USAGE_HEAD = ["REQUESTS", "ERRORS", "FALLBACKS", "IN TOKENS", "OUT TOKENS", "COST $"]
USAGE_HEAD += ["P50 MS", "P95 MS"]


def _usage_row(name: str, t: dict[str, Any]) -> list[str]:
    return [
        name,
        str(t["requests"]),
        str(t["errors"]),
        str(t["fallbacks"]),
        str(t["input_tokens"]),
        str(t["output_tokens"]),
        f"{t['cost_usd']:.6f}",
        _fmt_ms(t["latency_p50_ms"]),
        _fmt_ms(t["latency_p95_ms"]),
    ]


async def _usage(args: argparse.Namespace, cfg: LoadedConfig) -> None:
    from modelrouter.store import queries

    engine = await _reader(_store(cfg))
    try:
        now = time.time()
        since = _when(args, "since", now)
        until = _when(args, "until", now)
        assert since is not None  # it has a default
        report = await queries.usage(
            engine,
            since=since,
            until=until if until is not None else now,
            now=now,
            interval=args.interval,
            group_by=args.by,
        )
    except queries.QueryError as err:
        raise CommandError(str(err)) from None
    finally:
        await engine.dispose()
    if args.json:
        print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
        return
    series = sorted(report["series"], key=lambda s: -s["totals"]["requests"])
    rows = [[args.by.upper(), *USAGE_HEAD]]
    rows += [_usage_row(s["group"] or "(none)", s["totals"]) for s in series]
    rows.append(_usage_row("TOTAL", report["totals"]))
    print(f"usage from {report['since']} to {report['until']}")
    print(_table(rows))


async def _upgrade(cfg: LoadedConfig) -> None:
    from modelrouter.store import migrate
    from modelrouter.store.engine import make_engine

    store = _store(cfg)
    engine = make_engine(store, name="modelrouter-migrate", pool_size=1, writer=True)
    try:
        before, after = await migrate.upgrade(engine)
    finally:
        await engine.dispose()
    if before == after:
        print(f"{store.safe()}: already at revision {after}")
    else:
        print(f"{store.safe()}: upgraded from {before or 'an empty store'} to revision {after}")


async def _preflight(cfg: LoadedConfig) -> None:
    from modelrouter.store import migrate
    from modelrouter.store.engine import StoreError, make_engine, resolve

    store = resolve(cfg.settings.store, cfg.directory)
    if store is None:
        return
    engine = make_engine(store, name="modelrouter-migrate", pool_size=1, writer=True)
    try:
        async with asyncio.timeout(10):
            await migrate.prepare(store, engine)
    except StoreError as err:
        raise CommandError(str(err)) from None
    except (Exception, TimeoutError) as err:
        if store.dialect == "sqlite":
            raise CommandError(f"cannot open the store {store.safe()}: {err}") from None
        warn = f"the store {store.safe()} does not answer ({type(err).__name__}): serving "
        print(f"modelrouter: {warn}anyway, records are spooled until it does", file=sys.stderr)
    finally:
        await engine.dispose()


def preflight(cfg: LoadedConfig) -> int | None:
    """Before ``serve`` starts: upgrade a SQLite store, check a PostgreSQL one's schema.

    Returns an exit code when the server must not start (the message is printed).
    """
    try:
        asyncio.run(_preflight(cfg))
    except CommandError as err:
        print(f"modelrouter: {err}", file=sys.stderr)
        return 2
    return None


def _run(load: Loader, args: argparse.Namespace, job: Callable[..., Any], *extra: Any) -> int:
    cfg = load(args.config)
    try:
        asyncio.run(job(*extra, cfg))
    except CommandError as err:
        print(f"modelrouter: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    except OSError as err:
        print(f"modelrouter: cannot reach the store: {err}", file=sys.stderr)
        return 1
    return 0


def add_commands(command: Callable[..., argparse.ArgumentParser], load: Loader) -> None:
    """Add ``logs``, ``usage`` and ``db`` to the CLI (``command`` as in :mod:`modelrouter.cli`)."""

    def cmd_logs(args: argparse.Namespace) -> int:
        """Print the call log, newest last; --follow keeps printing new records."""
        return _run(load, args, _logs, args)

    def cmd_usage(args: argparse.Namespace) -> int:
        """Print usage per model, route, provider, key or team (from the roll-ups)."""
        return _run(load, args, _usage, args)

    def cmd_db(args: argparse.Namespace) -> int:
        """Migrate the store's schema: `modelrouter db upgrade`."""
        return _run(load, args, _upgrade)

    logs = command("logs", "print the call log of the config's store", cmd_logs)
    logs.add_argument("--since", help="ISO time or age (15m, 24h, 7d)")
    logs.add_argument("--until", help="ISO time or age")
    for name in ("model", "route", "key", "team"):
        logs.add_argument(f"--{name}", help=f"only this {name}")
    logs.add_argument("--status", help="an HTTP status code, or 'error'")
    logs.add_argument("--limit", type=int, default=50, help="records to show (default 50)")
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing new records")
    logs.add_argument("--json", action="store_true", help="one JSON record per line")
    usage = command("usage", "print usage from the config's store", cmd_usage)
    usage.add_argument("--since", default="24h", help="ISO time or age (default 24h)")
    usage.add_argument("--until", help="ISO time or age (default now)")
    usage.add_argument("--by", default="model", choices=list(USAGE_GROUPS), help="group")
    usage.add_argument("--interval", default="1h", choices=list(USAGE_INTERVALS))
    usage.add_argument("--json", action="store_true", help="the /admin/usage JSON")
    db = command("db", "store schema migrations: db upgrade", cmd_db)
    db.add_argument("action", choices=["upgrade"], help="upgrade: migrate to this version's schema")
