"""Optional (``--profile``): py-spy samples the one-worker router under 16 connections.

Samples only threads holding the GIL (Python CPU time). Writes a flamegraph SVG and the
raw collapsed stacks next to the results, and puts
the top functions by inclusive and by self time (share of samples) into the JSON.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.env import Bench, chat_body

SECONDS = 10
RATE = 200


def py_spy() -> str | None:
    """The py-spy executable (PATH or next to this Python), or ``None``."""
    here = Path(sys.executable).parent / "py-spy"
    return shutil.which("py-spy") or (str(here) if here.exists() else None)


def _record(b: Bench, exe: str, fmt: str, out: Path, body: Path) -> float:
    """Sample the main router in format ``fmt`` while 16 connections load it."""
    pid = b.routers["main"].proc.pid
    argv = [exe, "record", "--pid", str(pid), "--duration", str(SECONDS), "--rate", str(RATE)]
    argv += ["--gil", "--format", fmt, "-o", str(out)]
    spy = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.5)
    res = b.driver.run(b.routers["main"].port, body, 16, SECONDS - 1)
    _, err = spy.communicate(timeout=SECONDS + 30)
    if spy.returncode != 0:
        raise RuntimeError(err.decode(errors="replace")[-300:])
    return res.rps


def summarize(raw: str, top: int = 25) -> dict[str, Any]:
    """Top frames by inclusive and by self share of all samples in collapsed stacks."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        for f in set(frames):
            inclusive[f] += n
        own[frames[-1]] += n

    def share(c: Counter[str]) -> list[dict[str, Any]]:
        return [{"frame": f, "pct": round(100 * v / total, 1)} for f, v in c.most_common(top)]

    return {"samples": total, "inclusive": share(inclusive), "self": share(own)}


def run(b: Bench, out_dir: Path, stem: str) -> dict[str, Any]:
    """Record SVG and raw profiles; return the summary (or why it was skipped)."""
    exe = py_spy()
    if exe is None:
        return {"skipped": "py-spy not installed (pip install py-spy)"}
    body = b.body_file("profile", chat_body("bench", "Hello! Say something short."))
    svg, raw = out_dir / f"{stem}-profile.svg", out_dir / f"{stem}-profile.txt"
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        rps = _record(b, exe, "flamegraph", svg, body)
        _record(b, exe, "raw", raw, body)
    except (RuntimeError, OSError, subprocess.SubprocessError) as err:
        return {"skipped": f"py-spy failed: {err}"}
    summary = summarize(raw.read_text())
    for row in summary["self"][:12]:
        print(f"  {row['pct']:5.1f}% self  {row['frame']}")
    return {"rps_under_profiler": round(rps), "svg": svg.name, "raw": raw.name, **summary}
