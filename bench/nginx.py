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

CONF = """\
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    client_max_body_size 20m;
    client_body_buffer_size 1m;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    server {{
        listen 127.0.0.1:{port} backlog=1024;
        default_type application/json;
        location /err/ {{ return 500 '{err}'; }}
        location = /v1/models {{ return 200 '{models}'; }}
        location / {{ return 200 '{ok}'; }}
    }}
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
    d = workdir / "nginx"
    d.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = CONF.format(
        d=d,
        port=port,
        ok=FIXED_COMPLETION.decode(),
        err=ERROR_BODY.decode(),
        models=MODELS_BODY.decode(),
    )
    (d / "nginx.conf").write_text(conf)
    argv = [binary, "-p", str(d), "-c", str(d / "nginx.conf"), "-e", str(d / "nginx-error.log")]
    proc = procs.start("nginx", argv)
    wait_port(port, 10, proc)
    return port
