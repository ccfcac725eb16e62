"""What an OpenAI-compatible upstream receives: the client's members byte for byte.

Raw HTTP bodies (not the SDK) so the exact bytes can be compared at the fake upstream.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import orjson
import pytest

from tests.fakes.upstream import FakeUpstream
from tests.router import RunningRouter, router_config, run_router


def config(up: FakeUpstream, **server: Any) -> Any:
    return router_config(
        providers={
            "real": {"kind": "openai", "base_url": up.base_url},
            "sim": {"kind": "simulated"},
        },
        models={"m": {"provider": "real", "model": "upstream-id"}, "s": {"provider": "sim"}},
        routes={"default": {"models": ["m"]}, "sim-only": {"models": ["s"]}},
        server={"max_body_mb": 4, **server},
    )


@pytest.fixture
def router(up: FakeUpstream) -> Iterator[RunningRouter]:
    with run_router(config(up)) as r:
        yield r


def post(r: RunningRouter, raw: bytes) -> httpx2.Response:
    headers = {"content-type": "application/json"}
    return httpx2.post(r.base_url + "/chat/completions", content=raw, headers=headers, timeout=10)


def members(raw: bytes) -> list[tuple[str, Any]]:
    """Top-level members in order, repeated names kept."""
    seen: list[list[tuple[str, Any]]] = []
    json.loads(raw, object_pairs_hook=lambda p: seen.append(p) or dict(p))
    return seen[-1]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("size", [100, 300_000])  # below and above the one-write limit
def test_members_reach_the_upstream_as_sent(
    router: RunningRouter, up: FakeUpstream, stream: bool, size: int
) -> None:
    text = ('caf\\u00e9 \\"quoted\\" line\\n' * (size // 24 + 1))[:size].rstrip("\\")
    raw = (
        b'{"messages": [{"role": "user", "content": "' + text.encode() + b'"}],\n'
        b' "temperature": 1.50, "models": ["m"], "stream": '
        + (b"true" if stream else b"false")
        + b', "model": "default"}'
    )
    resp = post(router, raw)
    assert resp.status_code == 200, resp.text
    if stream:
        assert resp.text.rstrip().endswith("data: [DONE]")
    got = up.requests[-1].body
    # The prompt and the number keep their exact bytes (a re-encode would write
    # "café", '"quoted"' differently and 1.5 for 1.50).
    assert b'"content": "' + text.encode() + b'"' in got
    assert b'"temperature":1.50' in got
    # A stream also asks for usage (the router's own need), added after the client's
    # members; the client's stream does not show it (tests/test_cost.py).
    asked = [("stream_options", {"include_usage": True})] if stream else []
    assert members(got) == [
        ("messages", json.loads(raw)["messages"]),
        ("temperature", 1.5),
        ("stream", stream),
        *asked,
        ("model", "upstream-id"),
    ]


def test_a_repeated_model_member_is_sent_once(router: RunningRouter, up: FakeUpstream) -> None:
    raw = b'{"model":"nope","messages":[{"role":"user","content":"hi"}],"mod\\u0065l":"default"}'
    resp = post(router, raw)
    assert resp.status_code == 200, resp.text  # routed on the last "model": default
    assert [k for k, _ in members(up.requests[-1].body)] == ["messages", "model"]
    assert up.requests[-1].json["model"] == "upstream-id"


BAD_UTF8 = b'{"model":"MODEL","messages":[{"role":"user","content":"\xff\xfe"}]}'


def test_text_that_is_not_utf8_is_a_400_for_adapters_and_costs_no_health(
    router: RunningRouter, up: FakeUpstream
) -> None:
    resp = post(router, BAD_UTF8.replace(b"MODEL", b"sim-only"))
    assert resp.status_code == 400
    err = resp.json()["error"]
    assert err["type"] == "invalid_request_error"
    assert "not valid JSON" in err["message"]
    health = httpx2.get(router.url + "/health", timeout=5).json()["models"]["s"]
    assert health["state"] == "unknown"  # a client error says nothing about the model
    assert health["consecutive_failures"] == 0
    # A passthrough upstream gets the bytes and is the judge of them.
    post(router, BAD_UTF8.replace(b"MODEL", b"default"))
    assert b"\xff\xfe" in up.requests[-1].body


@pytest.mark.parametrize(
    "raw",
    [
        b'{"\xff": 1, "model": "default", "messages": [{"role": "user", "content": "hi"}]}',
        b'{"model": "default", "messages": [{"role": "user", "content": "hi"}], "stream": true,'
        b' "stream_options": {"include_usage": true, "x": 1e400}}',
    ],
)
def test_bodies_rejected_before_any_upstream_call(
    router: RunningRouter, up: FakeUpstream, raw: bytes
) -> None:
    resp = post(router, raw)
    assert resp.status_code == 400
    assert "not valid JSON" in resp.json()["error"]["message"]
    assert up.calls == 0


def test_body_logging_decodes_up_front(up: FakeUpstream) -> None:
    with run_router(config(up, log_bodies=True)) as r:
        resp = post(r, BAD_UTF8.replace(b"MODEL", b"default"))
        assert resp.status_code == 400
        assert "not valid JSON" in resp.json()["error"]["message"]
        assert up.calls == 0
        client = openai.OpenAI(base_url=r.base_url, api_key="x", max_retries=0)
        out = client.chat.completions.create(
            model="default", messages=[{"role": "user", "content": "hi"}]
        )
        assert out.choices[0].message.content == "hello from up"
        assert orjson.loads(up.requests[-1].body)["model"] == "upstream-id"


def test_a_body_an_adapter_cannot_encode_is_the_clients_400() -> None:
    # Nesting past orjson's 254 encoding levels, in a tool schema for Anthropic.
    cfg = router_config(
        providers={"an": {"kind": "anthropic", "base_url": "http://127.0.0.1:9", "api_key": "k"}},
        models={"a": {"provider": "an", "model": "claude"}},
        routes={"default": {"models": ["a"]}},
    )
    schema = b"{}"
    for _ in range(300):
        schema = b'{"type":"object","properties":{"x":' + schema + b"}}"
    raw = (
        b'{"model":"default","messages":[{"role":"user","content":"hi"}],'
        b'"tools":[{"type":"function","function":{"name":"f","parameters":' + schema + b"}}]}"
    )
    with run_router(cfg) as r:
        resp = post(r, raw)
        assert resp.status_code == 400
        assert "cannot be encoded for Anthropic" in resp.json()["error"]["message"]
        health = httpx2.get(r.url + "/health", timeout=5).json()["models"]["a"]
        assert health["consecutive_failures"] == 0
