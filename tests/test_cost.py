"""Usage and cost through the real router: the openai SDK in front, fake upstreams behind.

Every request's access-log record carries ``input_tokens``, ``output_tokens``,
``cached_tokens``, ``cost_usd``, ``price_unknown`` and ``usage_estimated``; these tests
read the records and compare them with what the upstream reported (or, where it
reported nothing, with the router's documented estimate).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import orjson
import pytest

from modelrouter.store.record import CallRecord
from tests.fakes.upstream import FakeUpstream, status
from tests.router import RunningRouter, router_config, run_router

PROMPT = " ".join(["word"] * 1000)
"""1000 prompt tokens as the fake counts them (words); 5000 characters."""
MESSAGES: Any = [{"role": "user", "content": PROMPT}]
ANSWER = "one two three"
"""3 completion tokens as the fake counts them; 13 characters."""

PRICED = {
    "input_cost_per_mtok": 2.0,
    "output_cost_per_mtok": 8.0,
    "cached_input_cost_per_mtok": 0.5,
}


def config(primary: FakeUpstream, backup: FakeUpstream, **providers: Any) -> Any:
    return router_config(
        providers={
            "p1": {"kind": "openai", "base_url": primary.base_url, **providers},
            "p2": {"kind": "openai", "base_url": backup.base_url},
        },
        models={
            "priced": {"provider": "p1", "model": "up-priced", **PRICED},
            # In the catalogue as gpt-4o-mini: 0.15 in, 0.075 cached, 0.60 out.
            "catalogued": {"provider": "p1", "model": "gpt-4o-mini-2024-07-18"},
            "overridden": {"provider": "p1", "model": "gpt-4o-mini", "input_cost_per_mtok": 1.0},
            "unpriced": {"provider": "p1", "model": "up-unpriced"},
            "backup-priced": {"provider": "p2", "model": "up-backup", **PRICED},
        },
        routes={"fallback": {"models": ["priced", "backup-priced"]}},
    )


@pytest.fixture
def primary() -> Iterator[FakeUpstream]:
    with FakeUpstream.in_thread("primary", content=ANSWER) as up:
        yield up


@pytest.fixture
def backup() -> Iterator[FakeUpstream]:
    with FakeUpstream.in_thread("backup", content=ANSWER) as up:
        yield up


@pytest.fixture
def router(primary: FakeUpstream, backup: FakeUpstream) -> Iterator[RunningRouter]:
    with run_router(config(primary, backup)) as r:
        yield r


def client(r: RunningRouter) -> openai.OpenAI:
    return openai.OpenAI(base_url=r.base_url, api_key="unused", max_retries=0, timeout=20)


def capture(r: RunningRouter) -> list[CallRecord]:
    records: list[CallRecord] = []
    r.runtime.log.emit = records.append  # type: ignore[method-assign]
    return records


def record(records: list[CallRecord]) -> CallRecord:
    """The one record, once written (a stream's is written just after its last byte)."""
    deadline = time.monotonic() + 5
    while not records:
        assert time.monotonic() < deadline, "no access-log record"
        time.sleep(0.01)
    assert len(records) == 1
    return records[0]


def cost_fields(rec: CallRecord) -> dict[str, Any]:
    keys = ("input_tokens", "output_tokens", "cached_tokens", "price_unknown", "usage_estimated")
    return {k: getattr(rec, k) for k in keys}


def raw_stream(r: RunningRouter, body: dict[str, Any]) -> list[bytes]:
    """The client's stream as bytes, split into events."""
    with httpx2.stream("POST", r.base_url + "/chat/completions", json=body, timeout=20) as resp:
        assert resp.status_code == 200
        data = b"".join(resp.iter_bytes())
    return [e + b"\n\n" for e in data.split(b"\n\n") if e]


def is_usage_chunk(event: bytes) -> bool:
    obj = orjson.loads(event[6:]) if event != b"data: [DONE]\n\n" else {}
    return obj.get("choices") == [] and isinstance(obj.get("usage"), dict)


# ---- non-streamed ---------------------------------------------------------------------


def test_non_stream_billed_at_config_prices_with_cached_tokens(
    router: RunningRouter, primary: FakeUpstream
) -> None:
    primary.cached_tokens = 600
    records = capture(router)
    done = client(router).chat.completions.create(model="priced", messages=MESSAGES)
    assert done.usage is not None and done.usage.prompt_tokens == 1000
    rec = record(records)
    assert cost_fields(rec) == {
        "input_tokens": 1000,
        "output_tokens": 3,
        "cached_tokens": 600,
        "price_unknown": False,
        "usage_estimated": False,
    }
    # Cached tokens are part of prompt_tokens: 400 at the input price, 600 at the cached.
    assert rec.cost_usd == pytest.approx((400 * 2.0 + 600 * 0.5 + 3 * 8.0) / 1e6)


def test_catalogue_price_when_the_config_has_none(
    router: RunningRouter, primary: FakeUpstream
) -> None:
    primary.cached_tokens = 600
    records = capture(router)
    client(router).chat.completions.create(model="catalogued", messages=MESSAGES)
    rec = record(records)
    assert not rec.price_unknown
    assert rec.cost_usd == pytest.approx((400 * 0.15 + 600 * 0.075 + 3 * 0.60) / 1e6)


def test_a_config_price_wins_over_the_catalogue(
    router: RunningRouter, primary: FakeUpstream
) -> None:
    primary.cached_tokens = 600
    records = capture(router)
    client(router).chat.completions.create(model="overridden", messages=MESSAGES)
    rec = record(records)
    # Input from the config (1.0), output from the catalogue (0.60); cached tokens at the
    # config's input price: the catalogue's discount belongs to its own list price.
    assert rec.cost_usd == pytest.approx((1000 * 1.0 + 3 * 0.60) / 1e6)


def test_a_model_without_price_costs_nothing_and_says_so(router: RunningRouter) -> None:
    records = capture(router)
    client(router).chat.completions.create(model="unpriced", messages=MESSAGES)
    rec = record(records)
    assert rec.cost_usd == 0
    assert rec.price_unknown is True
    assert (rec.input_tokens, rec.output_tokens) == (1000, 3)


def test_fallback_bills_the_served_model_only(
    router: RunningRouter, primary: FakeUpstream, backup: FakeUpstream
) -> None:
    primary.fail_n(2)
    backup.cached_tokens = 100
    records = capture(router)
    raw = client(router).chat.completions.with_raw_response.create(
        model="fallback", messages=MESSAGES
    )
    assert raw.headers["x-modelrouter-model"] == "backup-priced"
    rec = record(records)
    assert rec.model == "backup-priced"
    assert rec.cached_tokens == 100
    assert rec.cost_usd == pytest.approx((900 * 2.0 + 100 * 0.5 + 3 * 8.0) / 1e6)


def test_non_stream_without_usage_is_estimated(
    router: RunningRouter, primary: FakeUpstream
) -> None:
    primary.usage = "none"
    records = capture(router)
    done = client(router).chat.completions.create(model="priced", messages=MESSAGES)
    assert done.usage is None  # the client gets the upstream's answer as it was
    rec = record(records)
    # Four characters a token: 4999 characters of prompt, 13 of answer (rounded up).
    assert cost_fields(rec) == {
        "input_tokens": 4999 // 4,
        "output_tokens": 4,
        "cached_tokens": 0,
        "price_unknown": False,
        "usage_estimated": True,
    }
    assert rec.cost_usd == pytest.approx((1249 * 2.0 + 4 * 8.0) / 1e6)


# ---- streamed -------------------------------------------------------------------------


def test_stream_without_include_usage_is_billed_and_the_client_sees_no_usage(
    router: RunningRouter, primary: FakeUpstream
) -> None:
    primary.cached_tokens = 600
    records = capture(router)
    body = {"model": "priced", "messages": MESSAGES, "stream": True}
    got = raw_stream(router, body)
    # The router asked the upstream for usage ...
    assert primary.requests[-1].json["stream_options"] == {"include_usage": True}
    assert any(is_usage_chunk(e) for e in primary.sent)
    # ... and the client got the upstream's events byte for byte, minus the usage chunk
    # and the "usage":null that asking for it puts on every chunk.
    expected = [
        e.replace(b',"usage":null}\n\n', b"}\n\n") for e in primary.sent if not is_usage_chunk(e)
    ]
    assert got == expected
    assert b'"usage"' not in b"".join(got)
    rec = record(records)
    assert cost_fields(rec) == {
        "input_tokens": 1000,
        "output_tokens": 3,
        "cached_tokens": 600,
        "price_unknown": False,
        "usage_estimated": False,
    }
    assert rec.cost_usd == pytest.approx((400 * 2.0 + 600 * 0.5 + 3 * 8.0) / 1e6)


def test_stream_without_include_usage_through_the_sdk(router: RunningRouter) -> None:
    records = capture(router)
    stream = client(router).chat.completions.create(
        model="catalogued", messages=MESSAGES, stream=True
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == ANSWER
    assert all(c.choices and c.usage is None for c in chunks)
    rec = record(records)
    assert (rec.input_tokens, rec.output_tokens, rec.usage_estimated) == (1000, 3, False)
    assert rec.cost_usd == pytest.approx((1000 * 0.15 + 3 * 0.60) / 1e6)


def test_stream_with_include_usage_is_passed_through_untouched(
    router: RunningRouter, primary: FakeUpstream
) -> None:
    records = capture(router)
    body = {
        "model": "priced",
        "messages": MESSAGES,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    got = raw_stream(router, body)
    assert got == primary.sent
    assert is_usage_chunk(got[-2])
    stream = client(router).chat.completions.create(
        model="priced", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    last = list(stream)[-1]
    assert last.usage is not None and last.usage.prompt_tokens == 1000
    deadline = time.monotonic() + 5
    while len(records) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    for rec in records:
        assert (rec.input_tokens, rec.output_tokens, rec.usage_estimated) == (1000, 3, 0)
        assert rec.cost_usd == pytest.approx((1000 * 2.0 + 3 * 8.0) / 1e6)


def test_client_stream_options_are_kept_when_usage_is_added(
    router: RunningRouter, primary: FakeUpstream
) -> None:
    body = {
        "model": "priced",
        "messages": MESSAGES,
        "stream": True,
        "stream_options": {"include_usage": False, "continuous_usage_stats": False},
    }
    raw_stream(router, body)
    sent = primary.requests[-1].json["stream_options"]
    assert sent == {"include_usage": True, "continuous_usage_stats": False}


def test_a_stream_without_any_usage_is_estimated(
    router: RunningRouter, primary: FakeUpstream
) -> None:
    # An old server ignores stream_options: no usage at all. Its events were not decoded
    # (usage was expected), so the answer counts a token per content event.
    primary.usage = "none"
    records = capture(router)
    got = raw_stream(router, {"model": "priced", "messages": MESSAGES, "stream": True})
    content_events = len(got) - 3  # role chunk, finish chunk, [DONE]
    rec = record(records)
    assert cost_fields(rec) == {
        "input_tokens": 4999 // 4,
        "output_tokens": content_events,
        "cached_tokens": 0,
        "price_unknown": False,
        "usage_estimated": True,
    }


# ---- providers that must not be sent stream_options -----------------------------------


def test_stream_usage_off_sends_no_stream_options_and_estimates_from_the_text(
    primary: FakeUpstream, backup: FakeUpstream
) -> None:
    primary.usage = "none"
    with run_router(config(primary, backup, stream_usage=False)) as r:
        records = capture(r)
        got = raw_stream(r, {"model": "priced", "messages": MESSAGES, "stream": True})
    assert "stream_options" not in primary.requests[-1].json
    assert got == primary.sent
    rec = record(records)
    # No usage expected: the relay kept the answer's text, 13 characters.
    assert (rec.output_tokens, rec.usage_estimated) == (4, True)


def test_mistral_refuses_stream_options_and_its_preset_does_not_send_them(
    primary: FakeUpstream, backup: FakeUpstream
) -> None:
    primary.usage = "on_finish"  # usage on the finish chunk; stream_options is a 422
    body = {"model": "priced", "messages": MESSAGES, "stream": True}
    with (
        run_router(config(primary, backup)) as r,
        httpx2.stream("POST", r.base_url + "/chat/completions", json=body) as resp,
    ):
        assert resp.status_code == 422  # why stream_usage can be turned off
    cfg = config(primary, backup)
    mistral = {"kind": "mistral", "base_url": primary.base_url, "api_key": "k"}
    cfg = router_config(
        providers={"p1": mistral, "p2": {"kind": "openai", "base_url": backup.base_url}},
        models={k: v.model_dump(exclude_none=True) for k, v in cfg.settings.models.items()},
        routes={},
    )
    with run_router(cfg) as r:
        records = capture(r)
        got = raw_stream(r, body)
    assert "stream_options" not in primary.requests[-1].json
    # Usage riding on a content chunk is the upstream's own: the client keeps it.
    assert got == primary.sent
    rec = record(records)
    assert (rec.input_tokens, rec.output_tokens, rec.usage_estimated) == (1000, 3, False)


def test_a_failed_first_attempt_in_a_stream_bills_the_served_model(
    router: RunningRouter, primary: FakeUpstream, backup: FakeUpstream
) -> None:
    primary.script(status(500), status(500))
    records = capture(router)
    got = raw_stream(router, {"model": "fallback", "messages": MESSAGES, "stream": True})
    assert got[-1] == b"data: [DONE]\n\n"
    rec = record(records)
    assert rec.model == "backup-priced"
    assert rec.cost_usd == pytest.approx((1000 * 2.0 + 3 * 8.0) / 1e6)
