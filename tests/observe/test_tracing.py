"""Traces: a real OTLP/HTTP receiver on 127.0.0.1 decodes what the router exports (spans,
parents, GenAI attributes); without an endpoint OpenTelemetry's SDK is never imported."""

from __future__ import annotations

import gzip
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import openai
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from modelrouter.observe import tracing
from tests.fakes.upstream import FakeUpstream, status
from tests.router import router_config, run_router
from tests.store.helpers import wait_until
from tests.subproc import child_env


class Receiver(ThreadingHTTPServer):
    """An OTLP/HTTP trace receiver: ``POST /v1/traces`` with a protobuf body."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.spans: list[tuple[dict[str, Any], Span]] = []
        """(resource attributes, span) of every span received."""
        self.paths: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        if self.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        assert self.headers["content-type"] == "application/x-protobuf"
        self.server.paths.append(self.path)
        request = ExportTraceServiceRequest.FromString(body)
        for rs in request.resource_spans:
            resource = {a.key: value(a.value) for a in rs.resource.attributes}
            for ss in rs.scope_spans:
                self.server.spans.extend((resource, s) for s in ss.spans)
        out = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


def attrs(span: Span) -> dict[str, Any]:
    return {a.key: value(a.value) for a in span.attributes}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_spans_reach_an_otlp_receiver(
    receiver: Receiver,
    primary: FakeUpstream,
    backup: FakeUpstream,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "router-under-test")
    cfg = router_config(
        {
            "pa": {"kind": "openai", "base_url": primary.base_url, "api_key": "x"},
            # A preset kind the GenAI conventions spell their own way.
            "pb": {"kind": "mistral", "base_url": backup.base_url, "api_key": "y"},
        },
        {"a": {"provider": "pa", "model": "gpt-up"}, "b": {"provider": "pb"}},
        {"default": {"models": ["a", "b"]}},
        router={"retries_per_model": 0},
    )
    primary.script(status(500))
    with run_router(cfg) as r:
        client = openai.OpenAI(base_url=r.base_url, api_key="k", max_retries=0)
        done = client.chat.completions.create(
            model="default", messages=[{"role": "user", "content": "three words here"}]
        )
        assert done.usage is not None
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(
                model="nope", messages=[{"role": "user", "content": "x"}]
            )
        wait_until(lambda: len(receiver.spans) >= 4, timeout=10, what="spans")
    assert set(receiver.paths) == {"/v1/traces"}
    assert {res["service.name"] for res, _ in receiver.spans} == {"router-under-test"}
    spans = [s for _, s in receiver.spans]
    servers = [s for s in spans if s.kind == Span.SPAN_KIND_SERVER]
    clients = [s for s in spans if s.kind == Span.SPAN_KIND_CLIENT]
    assert len(servers) == 2 and len(clients) == 2
    served = next(s for s in servers if attrs(s)["http.response.status_code"] == 200)
    assert served.name == "chat default"
    a = attrs(served)
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.request.model"] == "default"
    assert a["gen_ai.response.model"] == "b"
    assert a["gen_ai.provider.name"] == a["gen_ai.system"] == "mistral_ai"
    assert (a["modelrouter.model"], a["modelrouter.provider"]) == ("b", "pb")
    assert a["gen_ai.usage.input_tokens"] == done.usage.prompt_tokens
    assert a["gen_ai.usage.output_tokens"] == done.usage.completion_tokens
    assert a["modelrouter.fallbacks"] == 1
    for child in clients:
        assert child.trace_id == served.trace_id
        assert child.parent_span_id == served.span_id
        assert served.start_time_unix_nano <= child.start_time_unix_nano
        assert child.end_time_unix_nano <= served.end_time_unix_nano
    first, second = sorted(clients, key=lambda s: s.start_time_unix_nano)
    assert first.end_time_unix_nano <= second.start_time_unix_nano
    assert (first.name, attrs(first)["gen_ai.request.model"]) == ("chat gpt-up", "gpt-up")
    assert attrs(first)["http.response.status_code"] == 500
    assert attrs(first)["error.type"] == "server"
    assert attrs(first)["gen_ai.provider.name"] == "openai"
    assert first.status.code == first.status.STATUS_CODE_ERROR
    assert attrs(second)["modelrouter.outcome"] == "ok"
    assert attrs(second)["gen_ai.request.model"] == "b"
    refused = next(s for s in servers if s is not served)
    assert attrs(refused)["http.response.status_code"] == 404
    assert attrs(refused)["error.type"] == "model_not_found"
    assert "gen_ai.response.model" not in attrs(refused)


def test_without_an_endpoint_nothing_is_imported() -> None:
    assert not tracing.wanted({})
    assert not tracing.wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "  "})
    assert tracing.wanted({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://x:4318/v1/traces"})
    assert not tracing.wanted(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318", "OTEL_SDK_DISABLED": "true"}
    )
    code = textwrap.dedent(
        """
        import sys
        import httpx2
        from tests.router import router_config, run_router
        cfg = router_config({"s": {"kind": "simulated", "latency_ms": 0}}, {"m": {"provider": "s"}},
                            {"default": {"models": ["m"]}})
        with run_router(cfg) as r:
            resp = httpx2.post(r.base_url + "/chat/completions",
                               json={"messages": [{"role": "user", "content": "hi"}]})
            assert resp.status_code == 200, resp.text
            assert r.runtime.tracer is None
        print(sorted(m for m in sys.modules if m.startswith(("opentelemetry.sdk",
              "opentelemetry.exporter", "modelrouter.observe.otel"))))
        """
    )
    env = {k: v for k, v in child_env().items() if not k.startswith("OTEL_")}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
