"""Section 4: large prompts. Overhead (router p50 minus direct p50, one connection) for
bodies of about 1k, 10k and 100k tokens, and how it grows.
"""

from __future__ import annotations

from typing import Any

from bench.env import Bench, chat_body, prompt_text


def run(b: Bench) -> dict[str, Any]:
    """Direct then routed, one size at a time, at concurrency 1."""
    s = b.sizes
    rows: list[dict[str, Any]] = []
    for tokens in s.prompt_tokens:
        body = b.body_file(f"prompt-{tokens}", chat_body("bench", prompt_text(tokens)))
        d = b.driver.run(b.fixed_port, body, 1, s.prompt_duration_s, s.max_requests)
        r = b.driver.run(b.routers["main"].port, body, 1, s.prompt_duration_s, s.max_requests)
        row = {
            "tokens": tokens,
            "body_bytes": body.stat().st_size,
            "direct": d.as_dict(),
            "router": r.as_dict(),
            "overhead_p50_ms": round(r.p50_ms - d.p50_ms, 4),
        }
        rows.append(row)
        print(
            f"  {tokens:>7} tokens ({row['body_bytes']:>7} B): direct p50 {d.p50_ms:.3f} ms,"
            f" router p50 {r.p50_ms:.3f} ms, overhead {row['overhead_p50_ms']:.3f} ms",
            flush=True,
        )
    first, last = rows[0]["overhead_p50_ms"], rows[-1]["overhead_p50_ms"]
    return {
        "conns": 1,
        "rows": rows,
        "growth_ratio": round(last / first, 3) if first > 0 else None,
    }
