"""``python -m bench.ab OLD NEW``: throughput of two checkouts of the router, A/B.

The question every change on the request path must answer: what did it cost? Both
checkouts (directories with a ``modelrouter`` package, e.g. ``git worktree add``
of the base commit) serve the same config against the same upstream (nginx when
installed, else the Python one), one worker each, and wrk (or the Python driver)
loads them in alternating rounds, so drift of the machine hits both alike. Prints
each round and the ratio of the medians (NEW / OLD).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from bench import nginx
from bench.env import chat_body
from bench.loadgen import pick
from bench.procs import Procs, free_port, wait_http, wait_port
from bench.router import RouterSpec, config_toml


def _serve(
    procs: Procs, workdir: Path, name: str, checkout: Path, upstream: int, store: str
) -> int:
    spec = RouterSpec(
        name=name,
        providers={"up": f"http://127.0.0.1:{upstream}/v1"},
        models={"m": "up"},
        routes={"default": ["m"]},
        store=store,
    )
    text = config_toml(spec)
    if not (checkout / "modelrouter" / "store").is_dir():
        # A checkout from before the store knows no [store] table (and refuses one).
        text = text.split("\n[store]\n", 1)[0] + "\n"
    cfg = workdir / f"{name}.toml"
    cfg.write_text(text)
    port = free_port()
    argv = [sys.executable, "-m", "modelrouter.cli", "serve", "--config", str(cfg)]
    argv += ["--port", str(port)]
    # PYTHONPATH first: the checkout's package wins over the installed one.
    proc = procs.start(
        name, argv, env={"PYTHONPATH": str(checkout)}, stderr_to=str(workdir / f"{name}.err")
    )
    wait_http(f"http://127.0.0.1:{port}/healthz", 60, proc)
    return port


def main() -> None:
    """Run the A/B and print the verdict."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("old", type=Path, help="checkout of the baseline")
    ap.add_argument("new", type=Path, help="checkout with the change")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--conns", type=int, default=16)
    ap.add_argument(
        "--store",
        default="none",
        help='[store] url for checkouts that have a store ("" = each its own SQLite file)',
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="mr-ab-") as tmp:
        workdir = Path(tmp)
        procs = Procs(workdir)
        try:
            binary = nginx.available()
            if binary is not None:
                upstream = nginx.start(procs, workdir, binary)
            else:
                upstream = free_port()
                procs.start(
                    "upstream",
                    [sys.executable, "-m", "bench.upstream", "--port", str(upstream)],
                    env={"PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
                )
                wait_port(upstream, 30)
            ports = {
                "old": _serve(procs, workdir, "old", args.old.resolve(), upstream, args.store),
                "new": _serve(procs, workdir, "new", args.new.resolve(), upstream, args.store),
            }
            driver = pick(False, workdir)
            body = workdir / "body.json"
            body.write_bytes(chat_body("default", "Hello! Say something short."))
            for port in ports.values():  # warm pools and caches
                driver.run(port, body, args.conns, 2, None)
            rps: dict[str, list[float]] = {"old": [], "new": []}
            for i in range(args.rounds):
                order = ("old", "new") if i % 2 == 0 else ("new", "old")
                for name in order:
                    res = driver.run(ports[name], body, args.conns, args.seconds, None)
                    rps[name].append(res.rps)
                    print(
                        f"round {i + 1} {name}: {res.rps:,.0f} req/s  p50 {res.p50_ms:.3f} ms"
                        f"  p99 {res.p99_ms:.3f} ms  errors {res.errors}",
                        flush=True,
                    )
            old, new = statistics.median(rps["old"]), statistics.median(rps["new"])
            print(f"median old {old:,.0f}  new {new:,.0f}  ratio new/old {new / old:.3f}")
        finally:
            procs.close()


if __name__ == "__main__":
    main()
