"""What the shared counters look like in Redis: key names, scripts, arguments, answers.

Pure functions and values, no I/O: :mod:`modelrouter.governance.redis_limiter` sends
what these build. Every key starts with the router's prefix (``modelrouter:v1:``, plus
``cluster.namespace``) and ``lim1:`` (:data:`SCHEMA`); three keys per scope:

``…lim1:{TAG}:KIND:ID:rate``
    both token buckets of the scope in one string, ``"<rpm level> <µs> <tpm level>
    <µs>"`` (Redis time of the last write); missing = full; it expires once it would be
    full again.
``…lim1:{TAG}:KIND:ID:spend:PERIOD``
    a hash: ``spent`` and ``rsum`` (reserved by requests in flight) in nano-USD, and
    ``r:<reservation id>`` per request in flight; expires after its period.
``…lim1:{TAG}:KIND:ID:resv:PERIOD``
    a sorted set, reservation id → the time (ms) after which it is dropped, so a
    replica that dies mid-request cannot hold budget forever.

``TAG`` is a Redis Cluster hash tag: the request's team when a team scope is counted,
else its key, so that one script call only ever names keys of one slot. Money is
counted in integer nano-USD so that reservations add and subtract exactly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib import resources

from modelrouter.governance.periods import period_end, period_start
from modelrouter.governance.types import Period, Scope
from modelrouter.governance.wire import Gauge, put_headers

SCHEMA = 1
"""Bump with any change to the scripts or the layout: keys carry it (``v1``), so
replicas of two versions during a rolling upgrade never share a counter."""
NANO = 1_000_000_000
"""Counting unit of money: 1e-9 USD."""
IDLE_TTL_S = 35 * 86_400
"""Lifetime of a ``total`` budget's counter after its last use (then re-seeded)."""


@dataclass(frozen=True, slots=True)
class Script:
    """A Lua script and the SHA-1 that ``EVALSHA`` names it by."""

    name: str
    source: str
    sha: str
    """The SHA-1 Redis files the script under."""


@cache
def script(name: str) -> Script:
    """``acquire`` or ``settle``, read from the package."""
    text = resources.files("modelrouter.governance").joinpath(f"lua/{name}.lua").read_text()
    return Script(name, text, hashlib.sha1(text.encode()).hexdigest())


def base(prefix: str) -> str:
    """The prefix of every counter: the router's key prefix, then ``lim1:`` (the
    schema), e.g. ``modelrouter:v1:lim1:``."""
    return f"{prefix}lim{SCHEMA}:"


def period_window(period: Period, now: float) -> tuple[str, float, float]:
    """(label, start, end) of the UTC budget period holding ``now`` (epoch seconds, on
    Redis's clock); ``total`` runs from 0 to infinity. Weeks (from Monday) are labelled
    by ISO week (``2026-W49``), months ``2026-12``, days ``2026-12-01``."""
    start = period_start(period, now)
    end = period_end(period, now)
    if end is None:
        return "total", start, float("inf")
    moment = datetime.fromtimestamp(start, UTC)
    if period == "day":
        label = moment.strftime("%Y-%m-%d")
    elif period == "week":
        year, week, _ = moment.isocalendar()
        label = f"{year}-W{week:02d}"
    else:
        label = moment.strftime("%Y-%m")
    return label, start, end


def hash_tag(scopes: Sequence[Scope]) -> str:
    """The Cluster hash tag of a request's keys: its team if counted, else its key."""
    for s in scopes:
        if s.kind == "team":
            return s.label
    return scopes[0].label


def _keys(prefix: str, tag: str, label: str, period: str) -> tuple[str, str, str]:
    head = f"{prefix}{{{tag}}}:{label}"
    return f"{head}:rate", f"{head}:spend:{period}", f"{head}:resv:{period}"


def _opt(value: float | None, scale: int = 1) -> str:
    return "-" if value is None else str(round(value * scale))


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything a request's two script calls name: keys, and one spec per scope."""

    keys: tuple[str, ...]
    specs: tuple[str, ...]
    """Per scope ``"<rpm> <tpm> <budget nano-USD> <spend expires at>"`` (``-``: none)."""
    windows: tuple[tuple[str, float, float] | None, ...]
    """Each scope's budget period (``None`` = no budget): what seeds are asked for."""
    tpm: bool
    """Some scope limits tokens (a settle gives back or charges the difference)."""

    @property
    def budgets(self) -> bool:
        """Some scope has a budget (a settle moves the reservation to the spend)."""
        return any(w is not None for w in self.windows)


def plan(prefix: str, scopes: Sequence[Scope], now: float, slack_s: float) -> Plan:
    """The keys and arguments for ``scopes`` at ``now``; a budget's counter expires
    ``slack_s`` after its period ends (requests admitted at the end still settle)."""
    head, tag = base(prefix), hash_tag(scopes)
    keys: list[str] = []
    specs: list[str] = []
    windows: list[tuple[str, float, float] | None] = []
    for s in scopes:
        lim = s.limits
        window = None if lim.budget_usd is None else period_window(lim.budget_period, now)
        keys += _keys(head, tag, s.label, window[0] if window else "-")
        end = "0" if window is None or window[2] == float("inf") else str(int(window[2] + slack_s))
        specs.append(f"{_opt(lim.rpm)} {_opt(lim.tpm)} {_opt(lim.budget_usd, NANO)} {end}")
        windows.append(window)
    tpm = any(s.limits.tpm is not None for s in scopes)
    return Plan(tuple(keys), tuple(specs), tuple(windows), tpm)


def acquire_args(
    p: Plan, rid: str, tokens: int, cost_usd: float, resv_ms: int, seeds: dict[int, float]
) -> list[str]:
    """``acquire``'s ARGV; ``seeds``: scope index (0-based) → spend known from the store
    (given only on the call after the script asked for them)."""
    out = [rid, str(max(0, tokens)), str(max(0, round(cost_usd * NANO))), str(resv_ms)]
    out += [str(IDLE_TTL_S), *p.specs]
    if seeds:
        for i in range(len(p.specs)):
            seed = seeds.get(i)
            out.append("-" if seed is None else str(max(0, round(seed * NANO))))
    return out


def settle_item(rid: str, tokens_back: int, cost_usd: float) -> tuple[str, str, str]:
    """One request's part of ``settle``'s ARGV (after its scope set's specs): give back
    ``tokens_back`` (negative: take more), charge ``cost_usd``."""
    return rid, str(tokens_back), str(max(0, round(cost_usd * NANO)))


Gauge3 = tuple[int, int, float]
"""(limit, remaining, seconds until full) of the stricter scope for one kind."""


def _gauges(values: Sequence[int]) -> tuple[Gauge3 | None, Gauge3 | None]:
    r = [int(x) for x in values]
    req = None if r[0] < 0 else (r[0], r[1], r[2] / 1000)
    tok = None if r[3] < 0 else (r[3], r[4], r[5] / 1000)
    return req, tok


@dataclass(frozen=True, slots=True)
class Admitted:
    """The script admitted the request; the stricter scope's gauges after the take."""

    now_ms: int
    requests: Gauge3 | None
    tokens: Gauge3 | None


@dataclass(frozen=True, slots=True)
class Refused:
    """The script refused; nothing was taken."""

    now_ms: int
    reason: str
    """``rpm``, ``tpm`` or ``budget``."""
    scope: int
    """0-based index into the request's scopes."""
    wait_s: float
    level: int
    """The refusing bucket's level (rpm, tpm)."""
    spent_usd: float
    reserved_usd: float
    budget_usd: float
    requests: Gauge3 | None
    """The gauges now (rpm, tpm refusals), for the answer's headers."""
    tokens: Gauge3 | None


@dataclass(frozen=True, slots=True)
class NeedSeed:
    """These scopes' spend for the period is not in Redis (first use, or a restart)."""

    now_ms: int
    scopes: list[int]


def decode(reply: Sequence[int]) -> Admitted | Refused | NeedSeed:
    """The typed form of ``acquire``'s answer."""
    kind, now_ms = int(reply[0]), int(reply[1])
    if kind == 2:
        return NeedSeed(now_ms, [int(i) - 1 for i in reply[2:]])
    if kind == 0:
        reason, scope, wait, a, b, c = (int(x) for x in reply[2:8])
        if reason == 3:
            return Refused(
                now_ms, "budget", scope - 1, 0.0, 0, a / NANO, b / NANO, c / NANO, None, None
            )
        req, tok = _gauges(reply[8:14])
        kind_name = "rpm" if reason == 1 else "tpm"
        return Refused(now_ms, kind_name, scope - 1, wait / 1000, a, 0.0, 0.0, 0.0, req, tok)
    req, tok = _gauges(reply[2:8])
    return Admitted(now_ms, req, tok)


def headers_of(requests: Gauge3 | None, tokens: Gauge3 | None) -> dict[str, str]:
    """The ``x-ratelimit-*`` headers of the stricter scope's gauges (as ``wire`` writes
    them for the per-process limiter)."""
    headers: dict[str, str] = {}
    for kind, g in (("requests", requests), ("tokens", tokens)):
        if g is not None:
            put_headers(headers, kind, [Gauge(g[0], float(g[1]), g[2])])
    return headers
