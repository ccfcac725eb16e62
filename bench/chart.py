"""The PNG chart of one results dict (matplotlib, optional: ``pip install '.[bench]'``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

COLORS = {"direct": "#999999", "router": "#1f77b4", "router-2w": "#2ca02c", "litellm": "#d62728"}


def _bars(ax: Any, groups: list[str], series: dict[str, list[float]], fmt: str) -> None:
    n = len(series)
    width = 0.8 / max(n, 1)
    for i, (name, values) in enumerate(series.items()):
        xs = [g + (i - (n - 1) / 2) * width for g in range(len(groups))]
        bars = ax.bar(xs, values, width, label=name, color=COLORS.get(name))
        ax.bar_label(
            bars, labels=[fmt.format(v) for v in values], fontsize=7, rotation=90, padding=2
        )
    ax.set_xticks(range(len(groups)), groups)
    ax.margins(y=0.18)
    ax.legend(fontsize=7)


def write(res: dict[str, Any], path: Path) -> str | None:
    """Draw the chart to ``path``; return why not if matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib not installed (pip install '.[bench]')"
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    tp = res["throughput"]
    conns = sorted({r["conns"] for r in tp["rows"]})
    targets = list(dict.fromkeys(r["target"] for r in tp["rows"]))
    groups = [f"c={c}" for c in conns]

    def val(rows: list[dict[str, Any]], t: str, c: int, key: str) -> float:
        r = next((x for x in rows if x["target"] == t and x["conns"] == c), None)
        return float(r[key]) if r else 0.0

    ax = axes[0][0]
    _bars(ax, groups, {t: [val(tp["rows"], t, c, "rps") for c in conns] for t in targets}, "{:.0f}")
    ax.set_yscale("log")
    ax.set_title("Throughput, non-streaming (req/s, log)")
    ax = axes[0][1]
    routed = [t for t in targets if t != "direct"]
    added = {t: [val(tp["added_latency"], t, c, "p50_added_ms") for c in conns] for t in routed}
    _bars(ax, groups, added, "{:.2f}")
    if "litellm" in added:
        ax.set_yscale("symlog", linthresh=1)
    ax.set_title("Added p50 latency over direct (ms" + (", symlog)" if "litellm" in added else ")"))
    ax = axes[0][2]
    st = res["streaming"]
    _bars(
        ax,
        ["TTFT p50", "TTFT p99", "gap p50", "gap p99"],
        {
            t: [st[t][k] for k in ("ttft_p50_ms", "ttft_p99_ms", "gap_p50_ms", "gap_p99_ms")]
            for t in ("direct", "router")
        },
        "{:.2f}",
    )
    ax.set_title(f"Streaming (ms; {st['interval_ms']:g} ms between events)")
    ax = axes[1][0]
    pr = res["prompts"]["rows"]
    _bars(
        ax,
        [f"{r['tokens'] // 1000}k tok" for r in pr],
        {"router": [r["overhead_p50_ms"] for r in pr]},
        "{:.2f}",
    )
    ax.set_title("Large prompts: p50 overhead (ms, 1 conn)")
    ax = axes[1][1]
    fo = res["failover"]["rows"]
    _bars(
        ax,
        [f"{r['primary']}\nretries={r['retries_per_model']}" for r in fo],
        {"router": [r["added_p50_ms"] for r in fo]},
        "{:.2f}",
    )
    ax.tick_params(axis="x", labelsize=7)
    ax.set_title("Failover: p50 added vs healthy-only route (ms)")
    ax = axes[1][2]
    mem = res["memory"]["samples"]
    ax.plot([s["requests"] for s in mem], [s["rss_mb"] for s in mem], marker="o")
    ax.set_ylim(bottom=0)
    ax.set_xlabel("requests")
    ax.set_title("Router RSS (MiB) under load")
    meta = res["meta"]
    tools = meta["environment"]["tools"]
    fig.suptitle(
        f"modelrouter {meta['environment']['modelrouter']} — {meta['environment']['cpus']} CPUs,"
        f" load: {str(tools.get('load')).split(' (')[0]}, upstream: {tools.get('upstream')}"
        + (" — SMOKE RUN" if meta["smoke"] else "")
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None
