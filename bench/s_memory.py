"""Section 6: memory. RSS of a fresh one-worker router when idle, every ``step``
requests up to ``total``, and its peak (VmHWM); flat means the last half of the
samples grew by at most 2 MiB (or 2 %).
"""

from __future__ import annotations

from typing import Any

from bench.env import Bench, chat_body
from bench.loadgen import Wrk
from bench.procs import tree_rss

FLAT_MB = 2.0
FLAT_SHARE = 0.02


def run(b: Bench, rate: float) -> dict[str, Any]:
    """Load the dedicated ``memory`` router in steps and sample its RSS after each.

    ``rate`` is the router's measured requests/s at this concurrency (sizes timed steps).
    """
    s = b.sizes
    r = b.routers["memory"]
    body = b.body_file("memory", chat_body("bench", "Hello! Say something short."))
    idle = tree_rss(r.proc.pid)
    samples = [{"requests": 0, "rss_mb": idle.rss_mb}]
    done = errors = 0
    # wrk runs are timed: size each step from the measured rate to land near `step`.
    timed = isinstance(b.driver, Wrk) and s.max_requests is None and rate > 0
    step_s = max(1, round(s.memory_step / rate)) if timed else 120
    limit = None if timed else s.memory_step
    for _ in range(4 * s.memory_total // s.memory_step):
        if done >= s.memory_total:
            break
        res = b.driver.run(r.port, body, s.memory_conns, step_s, limit)
        if res.requests == 0:
            break
        done += res.requests
        errors += res.errors
        samples.append({"requests": done, "rss_mb": tree_rss(r.proc.pid).rss_mb})
    end = tree_rss(r.proc.pid)
    mid = samples[len(samples) // 2]["rss_mb"]
    growth = samples[-1]["rss_mb"] - mid
    flat = growth <= max(FLAT_MB, FLAT_SHARE * mid)
    print(
        f"  idle {idle.rss_mb} MiB, after {done} requests {end.rss_mb} MiB, peak {end.hwm_mb}"
        f" MiB, last-half growth {growth:+.1f} MiB ({'flat' if flat else 'GROWING'})",
        flush=True,
    )
    return {
        "requests": done,
        "errors": errors,
        "conns": s.memory_conns,
        "step": s.memory_step if limit else f"{step_s} s of wrk",
        "idle_rss_mb": idle.rss_mb,
        "final_rss_mb": end.rss_mb,
        "peak_rss_mb": end.hwm_mb,
        "samples": samples,
        "last_half_growth_mb": round(growth, 2),
        "flat": flat,
        "idle_rss_by_router_mb": dict(b.idle_rss),
    }
