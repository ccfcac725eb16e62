"""Optional: LiteLLM's proxy against the same fixed upstream (``--with-litellm``).

LiteLLM is pinned and lives in its own virtual environment, ``bench/.litellm-venv``
(gitignored), created on first use. The pin predates the compromised 1.107.0 release.
Anything that goes wrong (no registry, install failure, proxy that will not start)
skips LiteLLM with a message; the rest of the benchmark does not depend on it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.procs import Procs, free_port, wait_http

PIN = "litellm[proxy]==1.106.12"
VENV = Path(__file__).resolve().parent / ".litellm-venv"
CONFIG = """\
model_list:
  - model_name: bench
    litellm_params:
      model: openai/bench-model
      api_base: http://127.0.0.1:{port}/v1
      api_key: bench
litellm_settings:
  telemetry: false
general_settings:
  # No key, like the modelrouter instances under test; the proxy listens on loopback only.
  dangerously_permit_weak_or_unset_master_key: true
"""
ENV = {
    # Use the bundled model price map instead of downloading one at start.
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_TELEMETRY": "False",
    "LITELLM_LOG": "ERROR",
}


def ensure() -> Path | str:
    """The ``litellm`` executable, installing the pinned version if needed; or why not."""
    exe = VENV / "bin" / "litellm"
    marker = VENV / "pinned.txt"
    if exe.exists() and marker.exists() and marker.read_text().strip() == PIN:
        return exe
    print(f"  installing {PIN} into {VENV} (once)...", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, timeout=120)
        pip = [str(VENV / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", PIN]
        out = subprocess.run(pip, capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.SubprocessError) as err:
        return f"cannot create {VENV}: {err}"
    if out.returncode != 0 or not exe.exists():
        return f"pip install {PIN} failed: {(out.stderr or out.stdout).strip()[-300:]}"
    marker.write_text(PIN + "\n")
    return exe


def start(procs: Procs, workdir: Path, upstream_port: int) -> int | str:
    """Start the proxy (one worker) on a free port; return the port, or why it failed."""
    exe = ensure()
    if isinstance(exe, str):
        return exe
    cfg = workdir / "litellm.yaml"
    cfg.write_text(CONFIG.format(port=upstream_port))
    port = free_port()
    argv = [str(exe), "--config", str(cfg), "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--num_workers", "1"]
    proc = procs.start("litellm", argv, env=ENV, stderr_to=str(workdir / "litellm.stderr"))
    try:
        wait_http(f"http://127.0.0.1:{port}/health/liveliness", 180, proc)
    except (RuntimeError, TimeoutError) as err:
        procs.stop(proc)
        return f"proxy did not start: {err}"
    return port
