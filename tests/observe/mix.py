"""A scripted mix of requests through a real router, with the metrics each should move.

The router serves route ``default = [a, b]`` (models on the ``primary`` and ``backup``
fakes, providers ``pa`` and ``pb``), route ``rl = [c]`` (on a fake that answers 429)
and keys ``KEY_TEAM`` (team ``research``) and ``KEY_PLAIN`` (no team). Each method
sends requests with the ``openai`` SDK and adds to :class:`Expected` what they should
count, checked against what the client saw (the serving model's header, the usage).
"""

from __future__ import annotations

from typing import Any

import httpx2
import openai
import pytest

from modelrouter.cost import cost_of
from modelrouter.settings import ModelSettings
from tests.fakes.upstream import FakeUpstream, rate_limited, status
from tests.observe.scrape import Expected

KEY_TEAM, KEY_PLAIN, ADMIN = "k-research", "k-plain", "k-admin"
PROVIDERS = {"a": "pa", "b": "pb", "c": "pc"}
UNKNOWN = "no-such-model"
MESSAGES = [{"role": "user", "content": "count these four words"}]


def router_tables(primary: FakeUpstream, backup: FakeUpstream, limited: FakeUpstream) -> Any:
    """The config tables of the mix (for :func:`tests.router.router_config` or TOML)."""
    return {
        "providers": {
            "pa": {"kind": "openai", "base_url": primary.base_url, "api_key": "up-a"},
            "pb": {"kind": "openai", "base_url": backup.base_url, "api_key": "up-b"},
            "pc": {"kind": "openai", "base_url": limited.base_url, "api_key": "up-c"},
        },
        "models": {
            "a": {
                "provider": "pa",
                "input_cost_per_mtok": 3.0,
                "output_cost_per_mtok": 15.0,
                "cached_input_cost_per_mtok": 0.3,
            },
            "b": {"provider": "pb", "input_cost_per_mtok": 0.5, "output_cost_per_mtok": 1.5},
            "c": {"provider": "pc", "input_cost_per_mtok": 1.0, "output_cost_per_mtok": 1.0},
        },
        "routes": {"default": {"models": ["a", "b"]}, "rl": {"models": ["c"]}},
        "server": {"api_keys": [KEY_PLAIN], "admin_keys": [ADMIN]},
        "teams": {"research": {}},
        "keys": {"ci": {"key": KEY_TEAM, "team": "research"}},
    }


class Mix:
    """Sends the mix to ``base_url`` and keeps what it should count in ``expected``."""

    def __init__(
        self, base_url: str, models: dict[str, ModelSettings], *, keepalive: bool = True
    ) -> None:
        self.base_url = base_url
        self.models = models
        self.expected = Expected()
        self.request_ids: list[str] = []
        limits = None if keepalive else httpx2.Limits(max_keepalive_connections=0)
        self._http = httpx2.Client(timeout=30, **({"limits": limits} if limits else {}))

    def client(self, key: str) -> openai.OpenAI:
        """An SDK client that does not retry (each call is one request to count)."""
        return openai.OpenAI(
            base_url=self.base_url + "/v1", api_key=key, max_retries=0, http_client=self._http
        )

    def _served(
        self,
        headers: Any,
        usage: dict[str, Any],
        *,
        route: str,
        model: str,
        team: str,
        surface: str = "http",
        tried: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """Count a request ``model`` answered, after the failed ``tried`` attempts."""
        if headers is not None:
            assert headers["x-modelrouter-model"] == model
            assert headers["x-modelrouter-attempts"] == str(len(tried) + 1)
            self.request_ids.append(headers["x-request-id"])
        e, provider = self.expected, PROVIDERS[model]
        e.add(
            "modelrouter_requests_total",
            surface=surface,
            route=route,
            model=model,
            provider=provider,
            code="200",
        )
        e.add("modelrouter_request_duration_seconds_count", route=route, model=model)
        previous = None
        for failed, outcome in tried:
            e.add(
                "modelrouter_attempts_total",
                model=failed,
                provider=PROVIDERS[failed],
                outcome=outcome,
            )
            if previous is not None and previous != failed:
                e.add(
                    "modelrouter_fallbacks_total", route=route, from_model=previous, to_model=failed
                )
            previous = failed
        e.add("modelrouter_attempts_total", model=model, provider=provider, outcome="ok")
        if previous is not None and previous != model:
            e.add("modelrouter_fallbacks_total", route=route, from_model=previous, to_model=model)
        cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
        e.add("modelrouter_tokens_total", usage["prompt_tokens"], model=model, direction="input")
        e.add(
            "modelrouter_tokens_total", usage["completion_tokens"], model=model, direction="output"
        )
        e.add("modelrouter_tokens_total", cached, model=model, direction="cached")
        cost = cost_of(self.models[model], model, usage).cost_usd
        assert cost > 0
        e.add("modelrouter_cost_usd_total", cost, model=model, team=team)

    def refused(self, code: int, *, route: str = "", tried: tuple[str, ...] = ()) -> None:
        """Count a request no model served."""
        e = self.expected
        e.add(
            "modelrouter_requests_total",
            surface="http",
            route=route,
            model="",
            provider="",
            code=str(code),
        )
        e.add("modelrouter_request_duration_seconds_count", route=route, model="")
        for model in tried:
            e.add(
                "modelrouter_attempts_total",
                model=model,
                provider=PROVIDERS[model],
                outcome="rate_limit",
            )

    # --- the requests -------------------------------------------------------------------

    def chat(
        self,
        key: str,
        *,
        model: str = "default",
        route: str | None = None,
        served: str = "a",
        tried: tuple[tuple[str, str], ...] = (),
        **extra: Any,
    ) -> None:
        """One non-stream chat that ``served`` answers."""
        raw = self.client(key).chat.completions.with_raw_response.create(
            model=model, messages=MESSAGES, **extra
        )
        usage = raw.parse().usage
        assert usage is not None
        team = "research" if key == KEY_TEAM else ""
        self._served(
            raw.headers,
            usage.model_dump(),
            route=route or model,
            model=served,
            team=team,
            tried=tried,
        )

    def stream(self, key: str, *, served: str = "a") -> None:
        """One streamed chat on ``default`` (usage asked for), answered by ``served``."""
        raw = self.client(key).chat.completions.with_raw_response.create(
            model="default",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
        usage = None
        for chunk in raw.parse():
            if chunk.usage is not None:
                usage = chunk.usage.model_dump()
        assert usage is not None
        team = "research" if key == KEY_TEAM else ""
        self._served(raw.headers, usage, route="default", model=served, team=team)
        self.expected.add("modelrouter_ttft_seconds_count", model=served)

    def fallback(self, key: str, primary: FakeUpstream) -> None:
        """``a`` answers 500 once: ``b`` serves after it."""
        primary.script(status(500))
        self.chat(key, served="b", tried=(("a", "server"),))

    def rate_limited(self, limited: FakeUpstream) -> None:
        """Route ``rl``: its only model answers 429, so the router answers 429."""
        limited.script(rate_limited(30))
        with pytest.raises(openai.RateLimitError) as caught:
            self.client(KEY_PLAIN).chat.completions.create(model="rl", messages=MESSAGES)
        assert caught.value.body is not None
        self.refused(429, route="rl", tried=("c",))

    def unknown_model(self) -> None:
        """A model nobody configured: 404, and its name must never become a label."""
        with pytest.raises(openai.NotFoundError):
            self.client(KEY_PLAIN).chat.completions.create(model=UNKNOWN, messages=MESSAGES)
        self.refused(404)

    def bad_key(self) -> None:
        """A key nobody issued: 401."""
        with pytest.raises(openai.AuthenticationError):
            self.client("not-a-key").chat.completions.create(model="default", messages=MESSAGES)
        self.refused(401)

    def close(self) -> None:
        """Close the HTTP client."""
        self._http.close()
