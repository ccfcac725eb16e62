"""Targets from the issue, evaluated on a results dict, and the printed tables."""

from __future__ import annotations

from typing import Any


def _target(name: str, value: Any, limit: float, op: str, unit: str = "") -> dict[str, Any]:
    ok = value is not None and (value >= limit if op == ">=" else value <= limit)
    return {"target": name, "value": value, "limit": f"{op} {limit:g}{unit}", "pass": bool(ok)}


def _row(rows: list[dict[str, Any]], **match: Any) -> dict[str, Any]:
    return next((r for r in rows if all(r.get(k) == v for k, v in match.items())), {})


def targets(res: dict[str, Any]) -> list[dict[str, Any]]:
    """Every target of the issue with its measured value and pass/fail."""
    tp = res["throughput"]
    c16 = _row(tp["rows"], target="router", conns=16).get("rps")
    added1 = _row(tp["added_latency"], target="router", conns=1).get("p50_added_ms")
    st = res["streaming"]
    pr = res["prompts"]
    fo = res["failover"]["rows"]
    breaker = _row(fo, primary="breaker open").get("added_p50_ms")
    refused = _row(fo, primary="refused", retries_per_model=1).get("added_p50_ms")
    mem = res["memory"]
    return [
        _target("throughput, 1 worker, 16 connections", c16, 2500, ">=", " req/s"),
        _target("p50 added latency, 1 connection", added1, 0.5, "<=", " ms"),
        _target("streaming TTFT overhead (p50)", st["ttft_added_p50_ms"], 1.0, "<=", " ms"),
        _target("streaming inter-chunk p99 added", st["gap_added_p99_ms"], 0.2, "<=", " ms"),
        {
            "target": "streaming chunks passed through 1:1",
            "value": st["passthrough_identical"] and st["passthrough_one_event_per_chunk"],
            "limit": "identical bytes, one event per chunk",
            "pass": st["passthrough_identical"] and st["passthrough_one_event_per_chunk"],
        },
        _target("prompt overhead growth 100k/1k tokens", pr["growth_ratio"], 3, "<=", "x"),
        _target("failover, primary breaker open (p50 added)", breaker, 0.2, "<=", " ms"),
        _target("failover, primary refusing (p50 added)", refused, 2.0, "<=", " ms"),
        _target("RSS after all requests", mem["final_rss_mb"], 150, "<=", " MiB"),
        {
            "target": "RSS flat over the last half",
            "value": mem["last_half_growth_mb"],
            "limit": "growth <= 2 MiB or 2 %",
            "pass": mem["flat"],
        },
        _target("--workers 2 throughput ratio", tp["workers"]["best"], 1.6, ">=", "x"),
    ]


def table(rows: list[list[str]]) -> str:
    """Left-aligned text columns; the first row is the header."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def _f(v: Any, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def render(res: dict[str, Any]) -> str:
    """All result tables as text."""
    out: list[str] = []
    tp = res["throughput"]
    rows = [["target", "conns", "req/s", "p50 ms", "p99 ms", "added p50 ms", "errors"]]
    for r in tp["rows"]:
        add = _row(tp["added_latency"], target=r["target"], conns=r["conns"])
        rows.append(
            [
                r["target"],
                str(r["conns"]),
                f"{r['rps']:.0f}",
                _f(r["p50_ms"]),
                _f(r["p99_ms"]),
                _f(add.get("p50_added_ms")),
                str(r["errors"]),
            ]
        )
    out += ["Non-streaming throughput and latency", table(rows), ""]
    log = tp["access_log"]
    out.append(
        f"Access log (16 conns): to file {log['log_to_file']['rps']:.0f} req/s, off"
        f" {log['log_off']['rps']:.0f} req/s: {log['throughput_cost_pct']:+.1f}% throughput"
    )
    pc = tp["paced"]
    out.append(
        f"Paced (1 conn, {pc['pause_ms']:g} ms pause before each request): direct p50"
        f" {pc['direct_p50_ms']:.3f} ms, router {pc['router_p50_ms']:.3f} ms,"
        f" added {pc['added_p50_ms']:.3f} ms\n"
    )
    st = res["streaming"]
    rows = [
        [
            "target",
            "TTFT p50 ms",
            "TTFT p99 ms",
            "after idle p50",
            "gap p50 ms",
            "gap p99 ms",
            "events",
        ]
    ]
    for t in ("direct", "router"):
        d = st[t]
        rows.append(
            [
                t,
                _f(d["ttft_p50_ms"]),
                _f(d["ttft_p99_ms"]),
                _f(d["ttft_after_idle_p50_ms"]),
                _f(d["gap_p50_ms"]),
                _f(d["gap_p99_ms"]),
                str(d["events_per_stream"]),
            ]
        )
    out += [
        f"Streaming ({st['streams']} streams of {st['events_per_stream']} events,"
        f" {st['interval_ms']:g} ms apart)",
        table(rows),
        f"TTFT added p50 {_f(st['ttft_added_p50_ms'])} ms (after idle"
        f" {_f(st['ttft_added_after_idle_p50_ms'])} ms), gap p99 added"
        f" {_f(st['gap_added_p99_ms'])} ms, identical bytes {st['passthrough_identical']},"
        f" one event per chunk {st['passthrough_one_event_per_chunk']}\n",
    ]
    rows = [["prompt tokens", "body bytes", "direct p50 ms", "router p50 ms", "overhead ms"]]
    for r in res["prompts"]["rows"]:
        rows.append(
            [
                str(r["tokens"]),
                str(r["body_bytes"]),
                _f(r["direct"]["p50_ms"]),
                _f(r["router"]["p50_ms"]),
                _f(r["overhead_p50_ms"]),
            ]
        )
    out += [
        "Large prompts (1 connection)",
        table(rows),
        f"growth 100k/1k: {_f(res['prompts']['growth_ratio'], 2)}x\n",
    ]
    rows = [["primary", "retries", "served by", "attempts", "base p50", "p50", "added p50 ms"]]
    for r in res["failover"]["rows"]:
        rows.append(
            [
                r["primary"],
                str(r["retries_per_model"]),
                str(r["served_by"]),
                str(r["attempts"]),
                _f(r["baseline"]["p50_ms"]),
                _f(r["failover"]["p50_ms"]),
                _f(r["added_p50_ms"]),
            ]
        )
    out += ["Failover to the second model (1 connection)", table(rows), ""]
    m = res["memory"]
    samples = ", ".join(f"{s['requests'] // 1000}k:{s['rss_mb']:.0f}" for s in m["samples"])
    out += [
        f"Memory: idle {m['idle_rss_mb']} MiB, after {m['requests']} requests"
        f" {m['final_rss_mb']} MiB, peak {m['peak_rss_mb']} MiB,"
        f" last-half growth {m['last_half_growth_mb']:+} MiB",
        f"  samples (requests:MiB) {samples}\n",
    ]
    lit = res.get("litellm") or {}
    if lit.get("skipped"):
        out.append(f"LiteLLM: skipped ({lit['skipped']})\n")
    rows = [["target", "value", "limit", "pass"]]
    for t in res["targets"]:
        rows.append([t["target"], _f(t["value"]), t["limit"], "PASS" if t["pass"] else "FAIL"])
    out += [
        "Targets" + (" (smoke run: numbers not meaningful)" if res["meta"]["smoke"] else ""),
        table(rows),
    ]
    return "\n".join(out)
