"""``python -m bench``: the whole benchmark in one command.

Starts the upstreams (nginx or a Python fallback, and a Python streaming upstream),
modelrouter with one and two workers, optionally LiteLLM's proxy, drives them with wrk
(or a Python driver), prints the tables and writes ``bench/results/NAME.json`` and
``NAME.png``. Everything it starts it stops, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from bench import report, runner

RESULTS = Path(__file__).resolve().parent / "results"


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Parse options, run, print; exit 0 even when a target fails (it is a measurement)."""
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="tiny counts: checks it works (~20 s)")
    p.add_argument(
        "--python-only",
        action="store_true",
        help="use the Python upstream and load driver even if nginx and wrk are installed",
    )
    p.add_argument(
        "--with-litellm",
        action="store_true",
        help="also measure LiteLLM's proxy (pinned, installed into bench/.litellm-venv)",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="also sample the router with py-spy under load (flamegraph SVG next to the JSON)",
    )
    p.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    p.add_argument("--name", help="results file name (default: a timestamp)")
    a = p.parse_args(argv)
    # SIGTERM (and a closed terminal) unwind like Ctrl-C, so every child is stopped.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    try:
        res, path = runner.run(
            smoke=a.smoke,
            force_python=a.python_only,
            with_litellm=a.with_litellm,
            out_dir=a.out,
            name=a.name,
            profile=a.profile,
        )
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr)
        return 130
    print()
    print(report.render(res))
    print(f"\nresults: {path}" + (f" and {res['meta']['chart']}" if res["meta"]["chart"] else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
