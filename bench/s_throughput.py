"""Sections 1 and 2: throughput and latency at each concurrency, non-streaming, and the
latency the router adds over the direct baseline; plus ``--workers 2`` scaling and what
writing the access log costs.
"""

from __future__ import annotations

from typing import Any

from bench.env import Bench, chat_body
from bench.loadgen import LoadResult, paced_p50


def _row(target: str, res: LoadResult) -> dict[str, Any]:
    return {"target": target, **res.as_dict()}


def run(b: Bench, extra_targets: dict[str, int] | None = None) -> dict[str, Any]:
    """Same body to every target at each concurrency, targets back to back."""
    s = b.sizes
    body = b.body_file("chat", chat_body("bench", "Hello! Say something short."))
    targets = {
        "direct": b.fixed_port,
        "router": b.routers["main"].port,
        "router-2w": b.routers["workers2"].port,
        **(extra_targets or {}),
    }
    if s.max_requests is None:  # full run: fill connection pools first
        for port in targets.values():
            b.driver.run(port, body, max(s.concurrencies), 1, 2_000)
    rows: list[dict[str, Any]] = []
    for conns in s.concurrencies:
        for name, port in targets.items():
            res = b.driver.run(port, body, conns, s.duration_s, s.max_requests)
            rows.append(_row(name, res))
            print(
                f"  {name:<10} c={conns:<3} {res.rps:>9.0f} req/s  p50 {res.p50_ms:.3f} ms"
                f"  p99 {res.p99_ms:.3f} ms  errors {res.errors}",
                flush=True,
            )
    return {
        "body_bytes": body.stat().st_size,
        "rows": rows,
        "added_latency": added_latency(rows, [t for t in targets if t != "direct"]),
        "workers": workers_ratio(rows),
        "access_log": access_log_cost(b, body),
        "paced": paced(b, body),
    }


def paced(b: Bench, body: Any) -> dict[str, Any]:
    """Concurrency 1 with a pause before each request (as real clients do)."""
    s = b.sizes
    pause_s = 0.02
    count = 20 if s.max_requests else 250
    direct = paced_p50(b.fixed_port, body, count, pause_s)
    routed = paced_p50(b.routers["main"].port, body, count, pause_s)
    print(f"  paced ({pause_s * 1000:g} ms pauses): added p50 {routed - direct:.3f} ms", flush=True)
    return {
        "pause_ms": pause_s * 1000,
        "requests": count,
        "direct_p50_ms": round(direct, 4),
        "router_p50_ms": round(routed, 4),
        "added_p50_ms": round(routed - direct, 4),
    }


def _find(rows: list[dict[str, Any]], target: str, conns: int) -> dict[str, Any] | None:
    return next((r for r in rows if r["target"] == target and r["conns"] == conns), None)


def added_latency(rows: list[dict[str, Any]], targets: list[str]) -> list[dict[str, Any]]:
    """p50 and p99 of each target minus the direct baseline's, per concurrency."""
    out = []
    for target in targets:
        for d in (r for r in rows if r["target"] == "direct"):
            r = _find(rows, target, d["conns"])
            if r is not None:
                out.append(
                    {
                        "target": target,
                        "conns": d["conns"],
                        "p50_added_ms": round(r["p50_ms"] - d["p50_ms"], 4),
                        "p99_added_ms": round(r["p99_ms"] - d["p99_ms"], 4),
                    }
                )
    return out


def workers_ratio(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Throughput of ``--workers 2`` over one worker at each concurrency above 1."""
    ratios: dict[str, float] = {}
    for one in (r for r in rows if r["target"] == "router" and r["conns"] > 1):
        two = _find(rows, "router-2w", one["conns"])
        if two is not None and one["rps"]:
            ratios[str(one["conns"])] = round(two["rps"] / one["rps"], 3)
    return {"ratio_by_conns": ratios, "best": max(ratios.values(), default=0.0)}


def access_log_cost(b: Bench, body: Any) -> dict[str, Any]:
    """16 connections with the access log written to a file, then with it switched off."""
    s = b.sizes
    on = b.driver.run(b.routers["main"].port, body, 16, s.duration_s, s.max_requests)
    off = b.driver.run(b.routers["nolog"].port, body, 16, s.duration_s, s.max_requests)
    cost = (1 - on.rps / off.rps) * 100 if off.rps else 0.0
    print(f"  access log on {on.rps:.0f} req/s, off {off.rps:.0f} req/s ({cost:+.1f}% cost)")
    return {
        "conns": 16,
        "log_to_file": on.as_dict(),
        "log_off": off.as_dict(),
        "throughput_cost_pct": round(cost, 2),
    }
