"""What a misbehaving upstream or a crafted request must not do to the router.

Each test reproduces one finding of the hardening review (issue 10) through the real
router and a real client: secrets echoed by upstreams, client mistakes counted
against models, stream events that are not JSON, redirects, empty fallback lists,
routing loops, client retries that multiply an outage.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import pytest

from modelrouter import config as config_mod
from modelrouter.policy import POLICY, markdown_table
from modelrouter.store.record import CallRecord
from tests.fakes.upstream import (
    FakeUpstream,
    bad_event,
    bad_json,
    error_body,
    no_choices,
    rate_limited,
    refused_port,
    status,
    stream_error,
)
from tests.router import RunningRouter, router_config, run_router

MESSAGES = [{"role": "user", "content": "hi"}]
KEY = "sk-upstream-secret-0123456789"
QUERY_SECRET = "query-secret-abcdef"
HEADER_SECRET = "header-secret-uvwxyz"
ROUTER_KEY = "router-key-123456"


def config(up: FakeUpstream, **sections: Any) -> config_mod.LoadedConfig:
    return router_config(
        providers={
            "real": {
                "kind": "openai",
                "base_url": f"{up.base_url}?api-version={QUERY_SECRET}",
                "api_key": KEY,
                "headers": {"x-proxy-token": HEADER_SECRET},
            },
            "sim": {"kind": "simulated"},
        },
        models={"m": {"provider": "real"}, "sim": {"provider": "sim"}},
        routes={"default": {"models": ["m", "sim"]}, "only-m": {"models": ["m"]}},
        prompts={"p": {"route": "only-m", "template": "Say {text}"}},
        **sections,
    )


@pytest.fixture
def router(up: FakeUpstream) -> Iterator[RunningRouter]:
    with run_router(config(up)) as r:
        yield r


def post(r: RunningRouter, body: Any, **kw: Any) -> httpx2.Response:
    return httpx2.post(r.base_url + "/chat/completions", json=body, timeout=10, **kw)


def capture_log(r: RunningRouter) -> list[CallRecord]:
    records: list[CallRecord] = []
    r.runtime.log.emit = records.append  # type: ignore[method-assign]
    return records


SECRETS = (KEY, QUERY_SECRET, HEADER_SECRET)


def assert_clean(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


# -- secrets -------------------------------------------------------------------------


def test_a_key_echoed_by_the_upstream_is_redacted_everywhere(
    router: RunningRouter, up: FakeUpstream
) -> None:
    records = capture_log(router)
    echo = f"Incorrect API key provided: {KEY}; token {HEADER_SECRET}; url ?{QUERY_SECRET}"
    up.script(status(401, error_body(echo)))
    resp = post(router, {"model": "only-m", "messages": MESSAGES})
    assert resp.status_code == 502
    assert "[REDACTED]" in resp.text
    assert_clean(resp.text)
    health = httpx2.get(router.url + "/health", timeout=10).json()
    assert "[REDACTED]" in health["models"]["m"]["last_error"]["message"]
    assert_clean(str(health))
    deadline = time.monotonic() + 2
    while not records and time.monotonic() < deadline:
        time.sleep(0.01)
    assert_clean(str(records))


def test_a_client_error_body_echoing_the_key_is_redacted(
    router: RunningRouter, up: FakeUpstream
) -> None:
    up.script(status(400, error_body(f"bad request made with key {KEY}")))
    resp = post(router, {"model": "m", "messages": MESSAGES})
    assert resp.status_code == 400
    assert resp.json()["error"]["message"] == "bad request made with key [REDACTED]"
    assert_clean(resp.text)


def test_a_stream_error_event_echoing_the_key_is_redacted(
    router: RunningRouter, up: FakeUpstream
) -> None:
    up.script(stream_error(after=2, message=f"quota of {KEY} exhausted"))
    with httpx2.stream(
        "POST",
        router.base_url + "/chat/completions",
        json={"model": "m", "messages": MESSAGES, "stream": True},
        timeout=10,
    ) as resp:
        text = resp.read().decode()
    assert '"code":"stream_interrupted"' in text and "[REDACTED]" in text
    assert "[DONE]" not in text
    assert_clean(text)


def test_health_shows_error_text_only_to_key_holders(up: FakeUpstream) -> None:
    with run_router(config(up, server={"api_keys": [ROUTER_KEY]})) as r:
        up.default = status(503)
        auth = {"authorization": f"Bearer {ROUTER_KEY}"}
        assert post(r, {"model": "only-m", "messages": MESSAGES}, headers=auth).status_code == 502
        public = httpx2.get(r.url + "/health", timeout=10).json()
        private = httpx2.get(r.url + "/health", headers=auth, timeout=10).json()
        assert public["models"]["m"]["state"] == private["models"]["m"]["state"]
        assert "127.0.0.1" in private["models"]["m"]["last_error"]["message"]
        assert "127.0.0.1" not in str(public)
        assert public["models"]["m"]["last_error"]["message"].startswith("hidden")
        assert httpx2.get(r.url + "/healthz", timeout=10).json() == {"status": "ok"}
        assert httpx2.get(r.url + "/readyz", timeout=10).json() == {"ready": True}


# -- only the upstream's behaviour touches health ---------------------------------------


@pytest.mark.parametrize(
    ("member", "value"),
    [("stream", "yes"), ("stream", 1), ("stream_options", 1), ("stream_options", [])],
)
def test_wrongly_typed_router_fields_are_400_before_any_call(
    router: RunningRouter, up: FakeUpstream, member: str, value: Any
) -> None:
    resp = post(router, {"model": "m", "messages": MESSAGES, member: value})
    assert resp.status_code == 400
    assert resp.json()["error"]["param"] == member
    assert up.calls == 0


def deep(levels: int) -> Any:
    value: Any = "x"
    for _ in range(levels):
        value = {"a": value}
    return value


def test_a_body_too_deep_for_an_adapter_is_the_clients_400(
    router: RunningRouter, up: FakeUpstream
) -> None:
    # A prompt's chat parameters are decoded and re-encoded for the upstream: 300
    # levels decode but cannot be encoded. Often enough to open a breaker and fail
    # /readyz, were it counted against the model.
    for _ in range(5):
        resp = httpx2.post(
            router.base_url + "/prompts/p",
            json={"variables": {"text": "x"}, "extra": deep(300)},
            timeout=10,
        )
        assert resp.status_code == 400
        assert "cannot be encoded" in resp.json()["error"]["message"]
    assert up.calls == 0
    snap = router.runtime.tracker.snapshot("m")
    assert snap["breaker"] == "closed" and snap["last_error"] is None
    assert httpx2.get(router.url + "/readyz", timeout=10).status_code == 200


def test_a_bug_in_an_adapter_is_a_500_with_a_traceback_and_no_health_penalty(
    router: RunningRouter, caplog: pytest.LogCaptureFixture
) -> None:
    provider = router.runtime.registry.providers["real"]

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise KeyError(f"bug while holding {KEY}")

    provider.chat = broken  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR):
        for _ in range(4):
            resp = post(router, {"model": "m", "messages": MESSAGES})
            assert resp.status_code == 500
            assert resp.json()["error"]["code"] == "internal_error"
            assert resp.headers["x-should-retry"] == "false"
    assert "Traceback" in caplog.text and "KeyError" in caplog.text
    assert KEY not in caplog.text
    snap = router.runtime.tracker.snapshot("m")
    assert snap["breaker"] == "closed" and snap["last_error"] is None


# -- streams are held to what answers are held to ---------------------------------------


@pytest.mark.parametrize(
    "behaviour",
    [
        bad_json(),
        no_choices(),
        bad_event(after=0, raw=b'data: {"choices": [], "x": "\xff"}\n\n'),
        bad_event(after=0, raw=b"data: [1, 2]\n\n"),
    ],
)
def test_a_bad_first_stream_event_falls_back(
    router: RunningRouter, up: FakeUpstream, behaviour: Any
) -> None:
    up.script(behaviour)
    with httpx2.stream(
        "POST",
        router.base_url + "/chat/completions",
        json={"model": "default", "messages": MESSAGES, "stream": True},
        timeout=10,
    ) as resp:
        text = resp.read()
    assert resp.headers["x-modelrouter-model"] == "sim"
    assert text.endswith(b"data: [DONE]\n\n")
    assert router.runtime.tracker.snapshot("m")["last_error"]["failure"] == "malformed"


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b'data: {"choices": [], "x": "\xff\xfe"}\n\n', b"not valid JSON"),
        (b'data: {"choices": [{"delta\n\n', b"not valid JSON"),
        (b"data: [1]\n\n", b"not an object"),
        (b'data: {"id": "x"}\n\n', b"no choices"),
    ],
)
def test_a_bad_event_mid_stream_ends_it_with_an_error_not_done(
    router: RunningRouter, up: FakeUpstream, raw: bytes, why: bytes
) -> None:
    up.script(bad_event(after=2, raw=raw))
    with httpx2.stream(
        "POST",
        router.base_url + "/chat/completions",
        json={"model": "m", "messages": MESSAGES, "stream": True},
        timeout=10,
    ) as resp:
        text = resp.read()
    assert b"stream_interrupted" in text and why in text
    assert b"[DONE]" not in text and b"\xff" not in text
    assert router.runtime.tracker.snapshot("m")["last_error"]["failure"] == "stream_cut"


def test_a_redirect_is_a_misconfigured_model_not_an_answer(
    router: RunningRouter, up: FakeUpstream
) -> None:
    up.script(status(302, "", {"location": "https://example.invalid/login"}))
    resp = post(router, {"model": "default", "messages": MESSAGES})
    assert resp.status_code == 200
    assert resp.headers["x-modelrouter-model"] == "sim"
    snap = router.runtime.tracker.snapshot("m")
    assert snap["last_error"]["failure"] == "misconfigured" and snap["breaker"] == "open"


# -- client mistakes are 400s -----------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        ({"messages": MESSAGES, "models": []}, {}),
        ({"messages": MESSAGES, "models": [""]}, {}),
        ({"messages": MESSAGES}, {"x-modelrouter-models": ",,,"}),
        ({"messages": MESSAGES}, {"x-modelrouter-models": ""}),
    ],
)
def test_empty_ad_hoc_lists_are_400(
    router: RunningRouter, body: dict[str, Any], headers: dict[str, str]
) -> None:
    resp = post(router, body, headers=headers)
    assert resp.status_code == 400
    assert resp.headers["x-should-retry"] == "false"


def test_no_default_route_is_fine_until_a_request_names_no_model(up: FakeUpstream) -> None:
    cfg = router_config(
        providers={"sim": {"kind": "simulated"}},
        models={"a": {"provider": "sim"}},
        routes={"main": {"models": ["a"]}},
    )
    with run_router(cfg) as r:
        assert post(r, {"model": "main", "messages": MESSAGES}).status_code == 200
        resp = post(r, {"messages": MESSAGES})
        assert resp.status_code == 400
        err = resp.json()["error"]
        assert err["param"] == "model" and "'model' is required" in err["message"]
    with pytest.raises(config_mod.ConfigError) as info:
        router_config(
            providers={"sim": {"kind": "simulated"}},
            models={"a": {"provider": "sim"}},
            routes={"main": {"models": ["a"]}},
            router={"default_route": "nope"},
        )
    assert "router.default_route: unknown route or model 'nope'" in str(info.value)


# -- loops and retries ------------------------------------------------------------------


def test_a_router_pointed_at_itself_stops_with_508() -> None:
    port = refused_port()
    cfg = router_config(
        providers={"me": {"kind": "openai", "base_url": f"http://127.0.0.1:{port}/v1"}},
        models={"loop": {"provider": "me"}},
        routes={"default": {"models": ["loop"]}},
    )
    with run_router(cfg, port=port) as r:
        records = capture_log(r)
        started = time.monotonic()
        resp = post(r, {"messages": MESSAGES})
        assert time.monotonic() - started < 5
        assert resp.status_code == 508
        assert resp.headers["x-should-retry"] == "false"
        attempts = resp.json()["error"]["attempts"]
        # The innermost router refused; each level above tried once and gave up.
        assert [a["outcome"] for a in attempts] == ["misconfigured"]
        assert "508" in attempts[0]["error"]
        deadline = time.monotonic() + 2
        while len(records) < 6 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)
        assert len(records) == 6  # the client's request and five hops, not hundreds
        assert [rec.status for rec in records] == [508] * 6
        assert {rec.error_code for rec in records} == {"loop_detected"}


def test_a_loop_header_beyond_the_limit_is_508(router: RunningRouter, up: FakeUpstream) -> None:
    resp = post(router, {"model": "m", "messages": MESSAGES}, headers={"x-modelrouter-hops": "5"})
    assert resp.status_code == 508
    assert resp.json()["error"]["code"] == "loop_detected"
    assert up.calls == 0
    assert post(router, {"model": "m", "messages": MESSAGES}).status_code == 200
    assert up.requests[-1].headers["x-modelrouter-hops"] == "1"
    resp = post(router, {"model": "m", "messages": MESSAGES}, headers={"x-modelrouter-hops": "4"})
    assert resp.status_code == 200
    assert up.requests[-1].headers["x-modelrouter-hops"] == "5"


def test_the_sdk_does_not_retry_an_answer_after_every_model_failed(
    router: RunningRouter, up: FakeUpstream
) -> None:
    up.default = status(500)
    client = openai.OpenAI(base_url=router.base_url, api_key="x", max_retries=2)
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="only-m", messages=MESSAGES)  # type: ignore[arg-type]
    assert info.value.status_code == 502
    assert info.value.response.headers["x-should-retry"] == "false"
    assert up.calls == 2  # one request, the router's own same-model retry; no SDK retries


def test_rate_limited_answers_stay_retryable(router: RunningRouter, up: FakeUpstream) -> None:
    up.script(rate_limited(30))
    resp = post(router, {"model": "only-m", "messages": MESSAGES})
    assert resp.status_code == 429
    assert resp.headers["retry-after"] == "30"
    assert "x-should-retry" not in resp.headers


# -- the policy table is the documentation ----------------------------------------------


def test_readme_failure_table_is_the_policy_table() -> None:
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert markdown_table() in readme
    assert len(POLICY) == len(markdown_table().splitlines()) - 2
