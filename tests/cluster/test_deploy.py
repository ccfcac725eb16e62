"""The deploy shape of ``deploy/compose.yaml`` without Docker: what can run here, runs.

No Docker daemon or registry is needed: the package is built from exactly the files
the Dockerfile copies and installed apart (as its build stage does), two replicas of
``deploy/modelrouter.toml`` run from that install on loopback, with their own Redis,
the test PostgreSQL and nginx with ``deploy/nginx.conf`` in front. What cannot run
here (the images themselves) is checked as text: the compose file's services and,
when a compose tool is installed, its own validation.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import openai
import pytest
import redis
import yaml

from tests.cluster.replicas import Replica
from tests.cluster.services import RedisServer, namespace, require
from tests.store.helpers import sql, wait_until
from tests.store.services import require_pg, reset_pg
from tests.subproc import ROOT, free_port

DEPLOY = ROOT / "deploy"
DOCKERFILE = ROOT / "Dockerfile"


def dockerfile_stages() -> list[list[str]]:
    """The Dockerfile's instructions (continuation lines joined), one list per stage."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    stages: list[list[str]] = []
    for line in (ln.strip() for ln in text.splitlines()):
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append([])
        stages[-1].append(line)
    return stages


def test_the_dockerfile_builds_small_and_runs_unprivileged() -> None:
    build, run = dockerfile_stages()
    assert build[0].startswith("FROM python:") and "-slim" in build[0]
    assert run[0].startswith("FROM python:") and "-slim" in run[0]
    assert any("pip install --no-cache-dir" in i for i in build)
    assert any(i.startswith("COPY --from=build") for i in run)
    users = [i.split()[1] for i in run if i.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    assert "EXPOSE 8080" in run
    (check,) = [i for i in run if i.startswith("HEALTHCHECK ")]
    assert "/readyz" in check
    assert any(i.startswith("CMD ") and '"--host", "0.0.0.0"' in i for i in run)
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "tests"} <= set(ignored)


def test_the_compose_file_runs_replicas_behind_nginx_with_redis_and_postgres() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"router", "migrate", "lb", "redis", "postgres"}
    router = services["router"]
    assert router["build"]["context"] == ".." and router["deploy"]["replicas"] >= 2
    assert "ports" not in router  # reached through the load balancer only
    assert "./modelrouter.toml:/etc/modelrouter/modelrouter.toml:ro" in router["volumes"]
    assert router["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert services["lb"]["image"].startswith("nginx:")
    assert "./nginx.conf:/etc/nginx/conf.d/default.conf:ro" in services["lb"]["volumes"]
    assert "--save" in services["redis"]["command"]
    for tool in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(tool[0]) is None or _run([*tool, "version"]).returncode != 0:
            continue  # not installed, or docker without its compose plugin
        done = _run([*tool, "-f", str(DEPLOY / "compose.yaml"), "config", "-q"])
        assert done.returncode == 0, done.stderr


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package as the Dockerfile's build stage installs it: built from the files
    that stage copies, nothing else, into a directory of its own."""
    tmp = tmp_path_factory.mktemp("image")
    src = tmp / "src"
    src.mkdir()
    build = dockerfile_stages()[0]
    for line in build:
        if line.startswith("COPY "):
            *sources, _ = line.split()[1:]
            for name in sources:
                path = ROOT / name
                target = src / name
                if path.is_dir():
                    shutil.copytree(path, target, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy(path, target)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    wheels = tmp / "wheels"
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(wheels), str(src)], check=True)
    site = tmp / "site"
    (wheel,) = wheels.glob("*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True)
    return site


def image_env(site: Path, **extra: str) -> dict[str, str]:
    """An environment that imports modelrouter from ``site`` only (not this checkout)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HOSTNAME")}
    env["PYTHONPATH"] = str(site)
    env.update(extra)
    return env


def nginx_config(tmp: Path, ports: list[int], listen: int) -> Path:
    """``deploy/nginx.conf`` pointed at loopback replicas, in a main config of its own."""
    site = (DEPLOY / "nginx.conf").read_text()
    upstream = "server router:8080 max_fails=2 fail_timeout=5s;"
    assert upstream in site and "listen 8080;" in site
    servers = "\n    ".join(f"server 127.0.0.1:{p} max_fails=2 fail_timeout=5s;" for p in ports)
    (tmp / "default.conf").write_text(
        site.replace(upstream, servers).replace("listen 8080;", f"listen 127.0.0.1:{listen};")
    )
    temps = (
        "\n".join(
            f"  {kind}_temp_path {tmp / kind};" for kind in ("client_body", "proxy", "fastcgi")
        )
        + "\n"
        + "\n".join(f"  {kind}_temp_path {tmp / kind};" for kind in ("uwsgi", "scgi"))
    )
    main = tmp / "nginx-main.conf"
    main.write_text(
        ("user root;\n" if os.geteuid() == 0 else "")
        + f"worker_processes 1;\npid {tmp / 'nginx.pid'};\n"
        + f"error_log {tmp / 'nginx-error.log'} warn;\ndaemon off;\n"
        + "events { worker_connections 256; }\n"
        + f"http {{\n  access_log off;\n{temps}\n  include {tmp / 'default.conf'};\n}}\n"
    )
    return main


@pytest.fixture
def nginx_binary() -> str:
    return require("nginx")


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    (tmp_path / "redis").mkdir()
    with RedisServer(tmp_path / "redis") as server:
        yield server


def test_two_replicas_behind_nginx_share_redis_and_postgres_and_stop_cleanly(
    tmp_path: Path, installed: Path, nginx_binary: str, redis_server: RedisServer
) -> None:
    pg = require_pg()
    asyncio.run(reset_pg(pg))
    ns = namespace()
    env = image_env(
        installed,
        MODELROUTER_CONFIG=str(DEPLOY / "modelrouter.toml"),
        MODELROUTER_STORE__URL=pg,
        MODELROUTER_STORE__SPOOL_DIR=str(tmp_path / "spool"),
        MODELROUTER_CLUSTER__REDIS_URL=redis_server.url,
        MODELROUTER_CLUSTER__NAMESPACE=ns,
        # nginx forwards the client's Host (127.0.0.1:ITS_PORT); in the containers the
        # replicas listen on 0.0.0.0, where the Host check is off.
        MODELROUTER_SERVER__ALLOWED_HOSTS='["127.0.0.1"]',
    )
    cli = [sys.executable, "-m", "modelrouter.cli"]
    where = subprocess.run(
        [sys.executable, "-c", "import modelrouter; print(modelrouter.__file__)"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.startswith(str(installed)), where.stdout
    # The compose file's "migrate" service.
    subprocess.run([*cli, "db", "upgrade"], env=env, cwd=tmp_path, check=True, timeout=60)

    ports = [free_port(), free_port()]
    replicas: list[Replica] = []
    for i, port in enumerate(ports):
        log = tmp_path / f"replica{i}.log"
        with log.open("w") as err:
            proc = subprocess.Popen(
                [*cli, "serve", "--host", "127.0.0.1", "--port", str(port)],
                env=env,
                cwd=tmp_path,
                stdout=subprocess.DEVNULL,
                stderr=err,
                text=True,
            )
        replicas.append(Replica(proc, port, log))
    lb_port = free_port()
    main = nginx_config(tmp_path, ports, lb_port)
    check = subprocess.run(
        [nginx_binary, "-t", "-p", str(tmp_path), "-c", str(main), "-e", str(tmp_path / "e")],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr
    lb = subprocess.Popen(
        [nginx_binary, "-p", str(tmp_path), "-c", str(main), "-e", str(tmp_path / "e")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    front = f"http://127.0.0.1:{lb_port}"
    try:
        for r in replicas:
            wait_until(lambda r=r: _ready(r), 30, f"{r.instance} ready")
            # The image's HEALTHCHECK command, pointed at this replica.
            assert _healthcheck(r.port) == 0
        assert _healthcheck(free_port()) != 0
        wait_until(lambda: _ready_at(front), 10, "nginx")
        client = openai.OpenAI(base_url=front + "/v1", api_key="unused", max_retries=0)
        answers = [
            client.chat.completions.with_raw_response.create(
                model="default", messages=[{"role": "user", "content": f"hello {i}"}]
            )
            for i in range(30)
        ]
        ids = {a.headers["x-request-id"] for a in answers}
        assert {a.headers["x-modelrouter-model"] for a in answers} <= {"demo-flaky", "demo-steady"}
        stream = client.chat.completions.create(
            model="default", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        seen = {httpx2.get(front + "/health", timeout=5).json()["instance"] for _ in range(6)}
        assert seen == {r.instance for r in replicas}, "nginx spreads over both replicas"
        for r in replicas:
            assert r.health()["cluster"]["mode"] == "shared"
        wait_until(lambda: sum(r.health()["cluster"]["prober"] for r in replicas) == 1)
        holder = next(r for r in replicas if r.health()["cluster"]["prober"])
        other = next(r for r in replicas if r is not holder)
        # One shared store: every answer of both replicas has its record there.
        wait_until(lambda: ids <= _stored(pg), 15, "records in PostgreSQL")
        assert len({rid[:12] for rid in _stored(pg)}) == 2, "records from both replicas"

        # SIGTERM to the prober: it gives the lease back and writes its records; the
        # other replica probes from then on, and nginx sends everything to it.
        holder.proc.send_signal(signal.SIGTERM)
        holder.proc.wait(30)
        stopped = time.monotonic()
        assert holder.proc.returncode in (0, -signal.SIGTERM), holder.log.read_text()
        lease = redis.Redis(port=redis_server.port).get(f"modelrouter:v1:{ns}:probe:lease")
        assert lease is None or not lease.decode().startswith(holder.instance)
        wait_until(lambda: other.health()["cluster"]["prober"], 5, "the other probes")
        assert time.monotonic() - stopped < 2.5  # given back, not left to expire (5 s)
        assert not list((tmp_path / "spool").glob("*.jsonl"))
        for _ in range(5):
            answer = client.chat.completions.create(
                model="default", messages=[{"role": "user", "content": "x"}]
            )
            assert answer.choices
    finally:
        lb.send_signal(signal.SIGQUIT)
        for r in replicas:
            if r.proc.poll() is None:
                r.proc.send_signal(signal.SIGTERM)
        for p in [lb, *(r.proc for r in replicas)]:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()


def _ready(r: Replica) -> bool:
    assert r.proc.poll() is None, r.log.read_text()
    return _ready_at(r.base)


def _ready_at(base: str) -> bool:
    try:
        return httpx2.get(base + "/readyz", timeout=1).status_code == 200
    except httpx2.HTTPError:
        return False


def _healthcheck(port: int) -> int:
    """Run the Dockerfile's HEALTHCHECK command against ``port``; its exit code."""
    (line,) = [i for i in dockerfile_stages()[-1] if i.startswith("HEALTHCHECK ")]
    argv = json.loads(line[line.index("CMD ") + 4 :])
    assert argv[0] == "python"
    argv = [sys.executable, *argv[1:]]
    argv[-1] = argv[-1].replace("127.0.0.1:8080", f"127.0.0.1:{port}")
    return subprocess.run(argv, capture_output=True, timeout=30).returncode


def _stored(pg: str) -> set[str]:
    return {row["id"] for row in sql(pg, "SELECT id FROM calls")}
