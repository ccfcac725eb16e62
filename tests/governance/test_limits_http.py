"""Permissions, rate limits and budgets through the real server, with the openai SDK."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import anthropic
import httpx2
import openai
import pytest

from modelrouter.governance.budget import StoreSpend
from modelrouter.governance.limiter import LocalLimiter
from modelrouter.governance.types import Ask, Limits, Scope
from modelrouter.governance.wire import LimitExceeded
from modelrouter.settings import StoreSettings
from modelrouter.store.engine import make_engine, resolve
from tests.fakes.upstream import FakeUpstream, ok, slow_stream, status
from tests.governance.conftest import FREE, PRICE, limiter_of, limits_config
from tests.router import RunningRouter, run_router

HI: list[Any] = [{"role": "user", "content": "hi"}]
LIMIT_HEADERS = [
    f"x-ratelimit-{what}-{kind}"
    for kind in ("requests", "tokens")
    for what in ("limit", "remaining", "reset")
]


def client(r: RunningRouter, key: str, **kw: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=r.base_url, api_key=key, max_retries=0, timeout=20, **kw)


def chat(r: RunningRouter, key: str, **body: Any) -> Any:
    body.setdefault("messages", HI)
    body.setdefault("model", "default")
    return client(r, key).chat.completions.with_raw_response.create(**body)


def forbidden(r: RunningRouter, key: str, **body: Any) -> openai.PermissionDeniedError:
    with pytest.raises(openai.PermissionDeniedError) as info:
        chat(r, key, **body)
    return info.value


def limited(r: RunningRouter, key: str, **body: Any) -> openai.RateLimitError:
    with pytest.raises(openai.RateLimitError) as info:
        chat(r, key, **body)
    return info.value


# Permissions


def test_a_model_outside_the_allow_list_is_403_before_any_upstream_call(
    router: RunningRouter, up: FakeUpstream
) -> None:
    err = forbidden(router, "sk-narrow", model="beta")
    assert err.code == "model_not_allowed"
    assert isinstance(err.body, dict) and err.body["type"] == "permission_error"
    assert "'beta' is not allowed for this key" in err.message
    assert forbidden(router, "sk-narrow", model="both").code == "model_not_allowed"
    assert up.calls == 0
    # What the list allows, and a request naming no model (the default route, allowed).
    assert chat(router, "sk-narrow", model="alpha").parse().choices[0].message.content
    assert chat(router, "sk-narrow", model=openai.omit).http_response.status_code == 200
    assert up.calls == 2


def test_an_ad_hoc_list_is_checked_member_by_member(
    router: RunningRouter, up: FakeUpstream
) -> None:
    err = forbidden(router, "sk-narrow", extra_body={"models": ["alpha", "beta", "both"]})
    assert "'beta'" in err.message and "'both'" not in err.message
    headers = {"x-modelrouter-models": "default,beta"}
    err = forbidden(router, "sk-narrow", model=openai.omit, extra_headers=headers)
    assert "'beta'" in err.message
    assert up.calls == 0
    ok_list = chat(router, "sk-narrow", extra_body={"models": ["alpha"]})
    assert ok_list.http_response.status_code == 200


def test_the_teams_list_applies_to_its_keys_too(router: RunningRouter, up: FakeUpstream) -> None:
    err = forbidden(router, "sk-mate", model="alpha")  # the team allows routes only
    assert "its team 'small'" in err.message
    assert chat(router, "sk-mate", model="both").http_response.status_code == 200
    assert up.calls == 1


def test_every_door_checks_permissions(router: RunningRouter, up: FakeUpstream) -> None:
    narrow = client(router, "sk-narrow")
    with pytest.raises(openai.PermissionDeniedError):
        narrow.responses.create(model="beta", input="hi")
    with pytest.raises(openai.PermissionDeniedError):
        narrow.embeddings.create(model="emb", input="hi")
    assert client(router, FREE).embeddings.create(model="emb", input="hi").data
    http = httpx2.Client(base_url=router.url, timeout=20)
    auth = {"authorization": "Bearer sk-narrow"}
    refused = http.post("/v1/prompts/on_both", json={"variables": {"word": "x"}}, headers=auth)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "model_not_allowed"
    allowed = http.post("/v1/prompts/on_default", json={"variables": {"word": "x"}}, headers=auth)
    assert allowed.status_code == 200
    assert up.calls == 1


def test_models_list_only_what_the_key_may_use(router: RunningRouter) -> None:
    narrow = client(router, "sk-narrow")
    assert sorted(m.id for m in narrow.models.list()) == ["alpha", "default"]
    assert narrow.models.retrieve("alpha").id == "alpha"
    with pytest.raises(openai.NotFoundError):
        narrow.models.retrieve("beta")
    everything = {m.id for m in client(router, FREE).models.list()}
    assert everything == {"alpha", "beta", "emb", "default", "both"}


# Rate limits


def test_rpm_refusal_is_429_with_retry_after(router: RunningRouter, up: FakeUpstream) -> None:
    first = chat(router, "sk-rpm2")
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert chat(router, "sk-rpm2").headers["x-ratelimit-remaining-requests"] == "0"
    err = limited(router, "sk-rpm2")
    assert err.code == "rate_limit_exceeded"
    assert isinstance(err.body, dict) and err.body["type"] == "rate_limit_error"
    retry = int(err.response.headers["retry-after"])
    assert 25 <= retry <= 30  # one request every 30 s; a little has flowed back already
    assert err.response.headers["x-ratelimit-remaining-requests"] == "0"
    assert "this key's limit of 2 requests per minute (rpm)" in err.message
    assert up.calls == 2
    scrape = httpx2.get(f"{router.url}/metrics").text
    assert 'modelrouter_limited_total{reason="rpm",scope="key"} 1.0' in scrape


def test_tpm_counts_real_tokens_and_debt_delays_the_next(
    router: RunningRouter, up: FakeUpstream
) -> None:
    up.content = "word " * 1500  # the fake reports one completion token per word
    first = chat(router, "sk-tpm", max_tokens=100)
    assert first.headers["x-ratelimit-limit-tokens"] == "1000"
    assert first.parse().usage.completion_tokens == 1500  # type: ignore[union-attr]
    err = limited(router, "sk-tpm", max_tokens=100)
    assert "1000 tokens per minute (tpm)" in err.message
    # About 500 in debt plus this request's ~100 at 1000/60 a second: over 30 s.
    assert int(err.response.headers["retry-after"]) > 30
    assert up.calls == 1


def test_a_failed_request_gives_its_tokens_back(router: RunningRouter, up: FakeUpstream) -> None:
    up.script(status(500), status(500))
    with pytest.raises(openai.InternalServerError) as info:
        chat(router, "sk-tpm", max_tokens=900)
    # The error carries the headers too, counted with the estimate still held.
    assert int(info.value.response.headers["x-ratelimit-remaining-tokens"]) < 100
    again = chat(router, "sk-tpm", max_tokens=900)  # would not fit if the 900 were kept
    assert again.http_response.status_code == 200


def test_the_stricter_of_key_and_team_wins_and_keys_share_their_team(
    router: RunningRouter, up: FakeUpstream
) -> None:
    teamed = chat(router, "sk-teamed", model="both")
    assert teamed.headers["x-ratelimit-limit-requests"] == "2"  # the team's, not the key's 10
    assert teamed.headers["x-ratelimit-remaining-requests"] == "1"
    chat(router, "sk-mate", model="both")  # the team's second request this minute
    err = limited(router, "sk-teamed", model="both")
    assert "team 'small''s limit of 2 requests per minute" in err.message
    assert err.response.headers["retry-after"]
    assert up.calls == 2


def test_headers_on_limited_answers_only(router: RunningRouter) -> None:
    limited_answer = chat(router, "sk-huge")
    for name in LIMIT_HEADERS:
        assert name in limited_answer.headers, name
    assert limited_answer.headers["x-ratelimit-limit-tokens"] == "1000000000"
    for key in (FREE, "sk-narrow"):  # unrestricted; allow-list but no limits
        answer = chat(router, key)
        assert not [h for h in answer.headers if h.startswith("x-ratelimit-")]
    # Refusals before admission and the model list carry them too.
    with pytest.raises(openai.NotFoundError) as info:
        chat(router, "sk-huge", model="no-such-model")
    assert info.value.response.headers["x-ratelimit-limit-requests"] == "1000000"
    models = client(router, "sk-huge").models.with_raw_response.list()
    assert models.headers["x-ratelimit-limit-requests"] == "1000000"
    assert models.headers["x-ratelimit-reset-tokens"]


def test_streams_carry_the_headers_and_settle_with_their_real_usage(
    router: RunningRouter, up: FakeUpstream
) -> None:
    up.content = "word " * 1500
    with client(router, "sk-tpm").chat.completions.with_streaming_response.create(
        model="default", messages=HI, max_tokens=100, stream=True
    ) as response:
        assert response.headers["x-ratelimit-limit-tokens"] == "1000"
        chunks = list(response.parse())
    assert chunks
    # The stream's 1,500 tokens were charged when it ended: the next one must wait.
    err = limited(router, "sk-tpm", max_tokens=100)
    assert int(err.response.headers["retry-after"]) > 30


async def test_a_stream_the_client_leaves_is_settled(
    router: RunningRouter, up: FakeUpstream
) -> None:
    up.script(slow_stream(chunks=100, interval=0.05))  # 5 s, if the client stayed
    aclient = openai.AsyncOpenAI(base_url=router.base_url, api_key="sk-spender", max_retries=0)
    stream = await aclient.chat.completions.create(
        model="default", messages=HI, max_tokens=50, stream=True
    )
    started = time.monotonic()
    read = 0
    async for _ in stream:
        read += 1
        if read == 20:
            break
    await stream.close()
    await aclient.close()
    limiter = limiter_of(router)
    (budget,) = limiter.budget_states()
    for _ in range(50):
        if budget.reserved == 0:
            break
        await asyncio.sleep(0.02)
    # Settled long before the stream would have ended, with the tokens relayed so far
    # (the upstream sent no usage: one token per event).
    assert budget.reserved == 0
    assert time.monotonic() - started < 3
    assert budget.spent >= 17 * PRICE / 1e6


# Budgets


def test_a_spent_budget_is_insufficient_quota_without_retry(
    router: RunningRouter, up: FakeUpstream
) -> None:
    up.content = "word " * 300  # about 300 tokens: $0.03 each
    chat(router, "sk-spender", max_tokens=400)
    chat(router, "sk-spender", max_tokens=400)  # $0.03 spent: still under $0.05
    # The SDK would retry a 429 twice; x-should-retry: false tells it not to.
    sdk = client(router, "sk-spender").with_options(max_retries=2)
    with pytest.raises(openai.RateLimitError) as info:
        sdk.chat.completions.create(model="default", messages=HI, max_tokens=400)
    err = info.value
    assert err.code == "insufficient_quota"
    assert err.response.headers["x-should-retry"] == "false"
    assert "budget is $0.05 per day" in err.message
    assert up.calls == 2


async def test_a_parallel_burst_on_a_nearly_spent_key_overshoots_by_at_most_one_estimate(
    router: RunningRouter, up: FakeUpstream
) -> None:
    up.content = "word " * 90
    up.default = ok(delay=0.3)  # every request of the burst is in flight at once
    budget = 0.05
    aclient = openai.AsyncOpenAI(base_url=router.base_url, api_key="sk-spender", max_retries=0)

    async def one() -> float | openai.RateLimitError:
        try:
            done = await aclient.chat.completions.create(
                model="default", messages=HI, max_tokens=100
            )
        except openai.RateLimitError as err:
            return err
        assert done.usage is not None
        return done.usage.total_tokens * PRICE / 1e6

    costs = [await one() for _ in range(4)]  # 91 tokens each: $0.0091, $0.0364 in all
    assert all(isinstance(c, float) for c in costs)
    spent = sum(c for c in costs if isinstance(c, float))
    assert spent == pytest.approx(4 * 91 * PRICE / 1e6)
    (state,) = limiter_of(router).budget_states()
    assert state.spent == pytest.approx(spent)
    results = await asyncio.gather(*(one() for _ in range(50)))
    await aclient.close()
    admitted = [r for r in results if isinstance(r, float)]
    refused = [r for r in results if isinstance(r, openai.RateLimitError)]
    assert len(admitted) + len(refused) == 50
    assert all(e.code == "insufficient_quota" for e in refused)
    assert all(e.response.headers["x-should-retry"] == "false" for e in refused)
    # Each request holds its estimate while it runs: about 20 prompt tokens (the body's
    # size over four) plus max_tokens 100, $0.012. Admitted while spent + held < $0.05:
    # $0.0364 + 0 and $0.0364 + $0.012, then no more (any estimate from 68 to 135
    # tokens gives these two).
    assert len(admitted) == 2
    total = spent + sum(admitted)
    overshoot = total - budget
    assert 0 < overshoot <= 100 * PRICE / 1e6  # less than the one estimate over the line
    assert state.spent == pytest.approx(total)
    assert state.reserved == 0
    assert up.calls == 4 + len(admitted)


# The Anthropic door


def test_the_messages_door_refuses_in_anthropics_shape(
    router: RunningRouter, up: FakeUpstream
) -> None:
    def messages(key: str, model: str) -> Any:
        c = anthropic.Anthropic(base_url=router.url, api_key=key, max_retries=0)
        return c.messages.with_raw_response.create(
            model=model, max_tokens=20, messages=[{"role": "user", "content": "hi"}]
        )

    with pytest.raises(anthropic.PermissionDeniedError) as denied:
        messages("sk-narrow", "beta")
    assert denied.value.type == "permission_error"
    assert "'beta' is not allowed" in str(denied.value.api_message)
    answered = messages("sk-rpm2", "default")
    assert answered.headers["x-ratelimit-remaining-requests"] == "1"
    messages("sk-rpm2", "default")
    with pytest.raises(anthropic.RateLimitError) as limited_:
        messages("sk-rpm2", "default")
    err = limited_.value
    assert err.type == "rate_limit_error"
    assert int(err.response.headers["retry-after"]) >= 25
    assert "requests per minute" in str(err.api_message)
    assert up.calls == 2


def test_budgets_read_spend_from_the_store(up: FakeUpstream, tmp_path: Any) -> None:
    """Another worker (or this one before a restart) spent the budget: the store says so."""
    store = {"url": f"sqlite:///{tmp_path}/calls.db"}
    up.content = "word " * 300  # $0.0301 a request
    with run_router(limits_config(up, store=store)) as first:
        chat(first, "sk-spender", max_tokens=400)
        chat(first, "sk-spender", max_tokens=400)
    # A new process: nothing counted locally, the spend comes from the store.
    with run_router(limits_config(up, store=store)) as second:
        err = limited(second, "sk-spender", max_tokens=400)
        assert err.code == "insufficient_quota"
        assert "$0.0602 is spent" in err.message
    assert up.calls == 2


async def test_the_refresh_reads_every_workers_spend_in_one_query(
    up: FakeUpstream, tmp_path: Any
) -> None:
    """A running limiter learns what other processes spent at its next refresh."""
    settings = StoreSettings(url=f"sqlite:///{tmp_path}/calls.db")
    up.content = "word " * 300
    scope = Scope("key", "cfg:spender", Limits(budget_usd=0.05, budget_period="day"))
    url = resolve(settings, None)
    assert url is not None
    engine = make_engine(url, name="test")
    try:
        with run_router(limits_config(up, store={"url": settings.url})) as other:
            limiter = LocalLimiter(source=StoreSpend(lambda: engine))
            await limiter.acquire([scope], Ask(1, 0.0))  # seeded: nothing spent yet
            chat(other, "sk-spender", max_tokens=400)
            chat(other, "sk-spender", max_tokens=400)
        await limiter.refresh()  # the other router flushed its records when it stopped
        with pytest.raises(LimitExceeded) as info:
            await limiter.acquire([scope], Ask(1, 0.0))
        assert info.value.code == "insufficient_quota"
        assert limiter.budget_states()[0].spent == pytest.approx(2 * 301 * PRICE / 1e6)
    finally:
        await engine.dispose()
