"""nginx from Debian as the fixed upstream: our own config in a temp dir, loopback only.

``return 200 '<json>'`` answers every POST with the same bytes as
:data:`bench.upstream.FIXED_COMPLETION` (a static file would get 405 for POST), and
``/err/`` answers 500 for the failover runs.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from bench.procs import Procs, free_port, wait_port
from bench.upstream import ERROR_BODY, FIXED_COMPLETION, MODELS_BODY

HEAD = """\
worker_processes 1;
daemon off;
pid {d}/{name}.pid;
error_log {d}/{name}-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    keepalive_requests 10000000;
"""
"""Every benchmark nginx: one worker in the foreground, no access log, its files in its
own folder; the ``http`` block goes on after this."""
UPSTREAM = """\
    client_max_body_size 20m;
    client_body_buffer_size 1m;
    keepalive_timeout 300s;
    server {{
        listen 127.0.0.1:{port} backlog=1024;
        default_type application/json;
        location /err/ {{ return 500 '{err}'; }}
        location = /v1/models {{ return 200 '{models}'; }}
        location / {{ return 200 '{ok}'; }}
    }}
"""


def available() -> str | None:
    """Path of the nginx binary, or ``None``."""
    return shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )


def version(binary: str) -> str:
    """``nginx/1.22.1`` (nginx prints its version on stderr)."""
    out = subprocess.run([binary, "-v"], capture_output=True, text=True, timeout=10)
    return (out.stderr or out.stdout).strip().removeprefix("nginx version: ")


def start(procs: Procs, workdir: Path, binary: str) -> int:
    """Start nginx on a free loopback port and return the port."""
    port = free_port()
    http = UPSTREAM.format(
        port=port,
        ok=FIXED_COMPLETION.decode(),
        err=ERROR_BODY.decode(),
        models=MODELS_BODY.decode(),
    )
    proc = launch(procs, binary, workdir / "nginx", "nginx", http)
    wait_port(port, 10, proc)
    return port


def launch(procs: Procs, binary: str, d: Path, name: str, http: str) -> subprocess.Popen[bytes]:
    """Start an nginx named ``name`` whose config is :data:`HEAD` then ``http`` (the
    rest of the ``http`` block), with its files in ``d``; not waited for."""
    d.mkdir(parents=True, exist_ok=True)
    conf = d / f"{name}.conf"
    conf.write_text(HEAD.format(d=d, name=name) + http + "}\n")
    argv = [binary, "-p", str(d), "-c", str(conf), "-e", str(d / f"{name}-error.log")]
    return procs.start(name, argv)
