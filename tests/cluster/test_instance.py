"""A replica's name, the ``[cluster]`` settings, and what ``/health`` shows of both."""

from __future__ import annotations

import io
import os
import socket
import time
from typing import Any

import httpx2
import orjson
import pytest

from modelrouter.cluster.instance import instance_name
from modelrouter.cluster.link import key_prefix, redis_target
from modelrouter.config import ConfigError, parse
from modelrouter.logs import AccessLog
from modelrouter.settings import ClusterSettings, ServerSettings
from modelrouter.store.record import CallRecord
from tests.router import router_config, run_router

SIM = {"providers": {"sim": {"kind": "simulated"}}, "models": {"m": {"provider": "sim"}}}


def test_the_instance_is_the_configured_name_else_host_and_port() -> None:
    server = ServerSettings(host="127.0.0.1", port=8081)
    assert instance_name(ClusterSettings(instance=" r1 "), server) == "r1"
    assert instance_name(ClusterSettings(), server) == "127.0.0.1:8081"
    wild = ServerSettings(host="0.0.0.0", port=8080)
    assert instance_name(ClusterSettings(), wild) == f"{socket.gethostname()}:8080"
    anyport = ServerSettings(host="127.0.0.1", port=0)
    assert instance_name(ClusterSettings(), anyport) == f"127.0.0.1:{os.getpid()}"


def _parse(cluster: dict[str, Any], store: str = "none") -> Any:
    data = {**SIM, "routes": {"default": {"models": ["m"]}}, "store": {"url": store}}
    return parse({**data, "cluster": cluster}, "test", env={})


def test_cluster_settings_are_checked_without_echoing_the_url() -> None:
    with pytest.raises(ConfigError) as err:
        _parse({"redis_url": "http://user:hunter22@redis:6379"})
    assert "cluster.redis_url: " in str(err.value) and "hunter22" not in str(err.value)
    with pytest.raises(ConfigError) as err:
        _parse({"redis_url": "redis://r:6379", "namespace": "a b"})
    assert "cluster.namespace" in str(err.value)
    with pytest.raises(ConfigError) as err:
        _parse({"redis_url": "redis://:pw@r:6379/2"}, store="sqlite:///x.db")
    assert "store.url: several replicas" in str(err.value)
    # An unset ${REDIS_URL:-} is no cluster, and SQLite is then fine.
    cfg = _parse({"redis_url": "${REDIS_URL:-}"}, store="sqlite:///x.db")
    assert cfg.settings.cluster.redis_url is None
    assert redis_target("redis://:pw@r:6379/2") == "r:6379/2"
    assert key_prefix("") == "modelrouter:v1:" and key_prefix("prod") == "modelrouter:v1:prod:"


def _health(port: int, key: str | None = None) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    report: dict[str, Any] = httpx2.get(
        f"http://127.0.0.1:{port}/health", headers=headers, timeout=5
    ).json()
    return report


@pytest.mark.parametrize("named", [False, True])
def test_health_names_the_replica_to_key_holders_and_a_chosen_name_to_all(named: bool) -> None:
    extra = {"cluster": {"instance": "replica-7"}} if named else {}
    cfg = router_config(
        SIM["providers"],
        SIM["models"],
        {"default": {"models": ["m"]}},
        server={"api_keys": ["sk-instance-test"]},
        **extra,
    )
    with run_router(cfg) as r:
        private = _health(r.port, "sk-instance-test")
        public = _health(r.port)
    expected = "replica-7" if named else f"127.0.0.1:{os.getpid()}"
    assert private["instance"] == expected
    assert public["instance"] == (expected if named else "hidden: send an API key to see it")
    assert private["cluster"] == public["cluster"] == {"redis": "off", "mode": "local"}


def _record() -> CallRecord:
    fields = {name: None for name in CallRecord.__dataclass_fields__}
    fields.update(id="r1", request_id="r1", ts=time.time(), surface="http", endpoint="/x")
    return CallRecord(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("instance", [None, 'pod "7"'])
def test_access_log_lines_start_with_the_replica_name(instance: str | None) -> None:
    out = io.StringIO()
    log = AccessLog(out, instance=instance)
    log.start()
    log.emit(_record())
    log.stop()
    (line,) = out.getvalue().splitlines()
    data = orjson.loads(line)
    assert data["id"] == "r1" and data["endpoint"] == "/x"
    if instance is None:
        assert "instance" not in data
    else:
        assert data["instance"] == instance and line.startswith('{"instance":')


def test_status_names_the_replica_and_its_redis() -> None:
    from modelrouter.status import format_status

    shared = {"redis": "ok", "mode": "shared", "prober": True}
    text = format_status({"instance": "r1", "cluster": shared, "models": {}, "routes": {}})
    assert text.splitlines()[-1] == "replica r1: redis ok, shared state, runs the probes"
    alone = {"instance": "r1", "cluster": {"redis": "off", "mode": "local"}, "models": {}}
    assert "replica" not in format_status(alone)
