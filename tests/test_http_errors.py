"""Every failure path answers in OpenAI's error shape; streams never end falsely clean."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import pytest

from modelrouter.store.record import CallRecord
from tests.fakes.upstream import FakeUpstream, bad_json, no_choices, slow_stream
from tests.router import RunningRouter, router_config, run_router

MESSAGES = [{"role": "user", "content": "hi"}]
UPSTREAM_KEY = "sk-upstream-do-not-leak"


@pytest.fixture
def router(up: FakeUpstream) -> Iterator[RunningRouter]:
    cfg = router_config(
        providers={
            "real": {"kind": "openai", "base_url": up.base_url, "api_key": UPSTREAM_KEY},
            "sim": {"kind": "simulated"},
        },
        models={
            "m": {"provider": "real"},
            "small": {"provider": "sim", "context_window": 10, "supports_tools": False},
            "sim": {"provider": "sim"},
        },
        routes={"default": {"models": ["m", "sim"]}, "tiny": {"models": ["small"]}},
        server={"max_body_mb": 0.01},
        router={"idle_timeout_s": 0.3},
    )
    with run_router(cfg) as r:
        yield r


def post(r: RunningRouter, body: Any = None, **kw: Any) -> httpx2.Response:
    return httpx2.post(r.base_url + "/chat/completions", json=body, timeout=10, **kw)


def error_of(resp: httpx2.Response) -> dict[str, Any]:
    err: dict[str, Any] = resp.json()["error"]
    assert set(err) >= {"message", "type", "param", "code"}
    return err


def test_invalid_json_is_400(router: RunningRouter) -> None:
    resp = httpx2.post(router.base_url + "/chat/completions", content=b"{nope", timeout=10)
    assert resp.status_code == 400
    assert "not valid JSON" in error_of(resp)["message"]
    resp = post(router, [1, 2])
    assert resp.status_code == 400


def test_missing_messages_is_400(router: RunningRouter) -> None:
    resp = post(router, {"model": "default"})
    assert resp.status_code == 400
    assert error_of(resp)["param"] == "messages"


def test_too_large_is_413(router: RunningRouter) -> None:
    big = {"messages": [{"role": "user", "content": "x" * 20_000}]}
    resp = post(router, big)
    assert resp.status_code == 413
    assert error_of(resp)["code"] == "request_too_large"

    def chunks() -> Iterator[bytes]:
        yield b'{"messages": [{"role": "user", "content": "'
        for _ in range(30):
            yield b"x" * 1000
        yield b'"}]}'

    resp = httpx2.post(router.base_url + "/chat/completions", content=chunks(), timeout=10)
    assert resp.status_code == 413


def test_unknown_path_and_method_use_openai_shape(router: RunningRouter) -> None:
    resp = httpx2.get(router.base_url + "/nothing-here", timeout=10)
    assert resp.status_code == 404
    assert error_of(resp)["code"] == "not_found"
    resp = httpx2.get(router.base_url + "/chat/completions", timeout=10)
    assert resp.status_code == 405


def test_request_id_is_echoed_or_generated(router: RunningRouter) -> None:
    resp = post(router, {"messages": MESSAGES}, headers={"x-request-id": "abc-123"})
    assert resp.headers["x-request-id"] == "abc-123"
    resp = post(router, {"messages": MESSAGES})
    assert len(resp.headers["x-request-id"]) >= 16


@pytest.mark.parametrize("behaviour", [bad_json(), no_choices()])
def test_malformed_upstream_answer_falls_back(
    router: RunningRouter, up: FakeUpstream, behaviour: Any
) -> None:
    up.script(behaviour)
    resp = post(router, {"messages": MESSAGES})
    assert resp.status_code == 200
    assert resp.headers["x-modelrouter-model"] == "sim"
    assert resp.headers["x-modelrouter-attempts"] == "2"


def test_no_candidate_fits_is_503_with_reasons(router: RunningRouter) -> None:
    resp = post(router, {"model": "tiny", "messages": [{"role": "user", "content": "x" * 400}]})
    assert resp.status_code == 503
    err = error_of(resp)
    assert err["code"] == "no_available_model"
    assert err["attempts"][0]["outcome"] == "skipped"
    assert "context window" in err["attempts"][0]["error"]
    resp = post(router, {"model": "tiny", "messages": MESSAGES, "tools": [{"type": "function"}]})
    assert "no tool support" in error_of(resp)["attempts"][0]["error"]


def test_stream_silence_after_first_byte_ends_with_error_event(
    router: RunningRouter, up: FakeUpstream
) -> None:
    up.script(slow_stream(chunks=3, interval=1.0))
    client = openai.OpenAI(base_url=router.base_url, api_key="x", max_retries=0)
    stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
    with pytest.raises(openai.APIError) as info:
        for _ in stream:
            pass
    assert "went silent" in info.value.message


def test_upstream_key_never_in_errors(router: RunningRouter, up: FakeUpstream) -> None:
    up.require_key = "something-else"
    resp = post(router, {"model": "m", "messages": MESSAGES})
    assert resp.status_code == 502
    assert UPSTREAM_KEY not in resp.text
    health = httpx2.get(router.url + "/health", timeout=10).text
    assert UPSTREAM_KEY not in health


def test_client_leaving_mid_stream_stops_the_upstream_stream(
    router: RunningRouter, up: FakeUpstream
) -> None:
    up.script(slow_stream(chunks=50, interval=0.1))
    records: list[CallRecord] = []
    router.runtime.log.emit = records.append  # type: ignore[method-assign]
    body = {"model": "m", "messages": MESSAGES, "stream": True}
    with httpx2.stream(
        "POST", router.base_url + "/chat/completions", json=body, timeout=10
    ) as resp:
        assert resp.status_code == 200
        next(resp.iter_bytes())
    # The router noticed the client leaving and closed the stream: it is accounted for
    # within a moment, not after the upstream's 5 s ...
    deadline = time.monotonic() + 2
    while not records:
        assert time.monotonic() < deadline, "stream kept running after the client left"
        time.sleep(0.02)
    # ... as what it was: the client left (499, nginx's convention), not a success,
    # and not held for or against the model.
    assert records[0].status == 499 and records[0].error_code == "client_closed"
    snap = router.runtime.tracker.snapshot("m")
    assert snap["totals"] == {"requests": 0, "failures": 0} and snap["last_error"] is None
