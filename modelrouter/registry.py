"""Providers, models and routes, and the one question the dispatcher asks: in what
order should this request try which models?

The order comes from :func:`modelrouter.ranking.rank` (health-aware); capability
facts then skip models that cannot serve the request, with the reason kept for the
attempt trail. A model's facts are its own config's, else the built-in catalogue's for
its upstream id (:mod:`modelrouter.catalog`), else its provider kind's defaults.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from modelrouter.catalog import catalog
from modelrouter.config import LoadedConfig
from modelrouter.cost import Prices, prices_for
from modelrouter.errors import bad_request, model_not_found
from modelrouter.health import HealthTracker
from modelrouter.ranking import rank
from modelrouter.settings import ModelSettings
from modelrouter.usage import CHARS_PER_TOKEN, prompt_chars
from providers import build, default_facts
from providers.base import ChatRequest, Provider, Target, speaks


@dataclass(slots=True)
class ModelEntry:
    """One configured model: its provider, what to send upstream, and its facts."""

    name: str
    provider: Provider
    target: Target
    settings: ModelSettings
    prices: Prices = field(default_factory=lambda: Prices(None, None, None, "none"))
    """Resolved once at start (:func:`modelrouter.cost.prices_for`), never per request."""


@dataclass(slots=True)
class Plan:
    """Models to try in order, plus those skipped or demoted and why."""

    route: str
    candidates: list[ModelEntry]
    skipped: list[tuple[ModelEntry, str]] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)


def _has_images(body: dict[str, Any]) -> bool:
    for msg in body.get("messages") or ():
        content = msg.get("content") if isinstance(msg, dict) else None
        if isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and part.get("type") in ("image_url", "input_image"):
                    return True
    return False


def _may_have_images(request: ChatRequest) -> bool:
    # A byte search on the client's body rules most requests out without decoding it;
    # an image part's type is one of these strings.
    return request.mentions(b'"image_url"') or request.mentions(b'"input_image"')


def _tokens_over(request: ChatRequest, window: int) -> int | None:
    """The prompt's estimated tokens (four characters a token) if above ``window``.

    Text takes at least a byte a character, so a body of at most ``4 * window`` bytes
    cannot be above: only a larger one is decoded and counted.
    """
    size = request.size
    if size is not None and size // CHARS_PER_TOKEN <= window:
        return None
    need = prompt_chars(request.body) // CHARS_PER_TOKEN
    return need if need > window else None


def with_default_facts(
    model: ModelSettings, kind: str, *, upstream: str | None = None, base_url: str | None = None
) -> ModelSettings:
    """``model`` with unset capability facts filled in: from the catalogue entry of its
    upstream id (``upstream``, default ``model.model``; served from ``base_url``), else
    from its provider kind's defaults."""
    upstream = upstream or model.model
    entry = catalog().lookup(upstream, base_url) if upstream else None
    facts = {**default_facts(kind), **(entry.facts() if entry else {})}
    missing = {k: v for k, v in facts.items() if getattr(model, k, 0) is None}
    return model.model_copy(update=missing) if missing else model


def unfit_reason(model: ModelSettings, request: ChatRequest) -> str | None:
    """Why ``model`` cannot serve ``request``, or ``None`` if it can (as far as we know)."""
    if model.supports_tools is False and (
        request.is_nonempty_array("tools") or request.is_nonempty_array("functions")
    ):
        return "no tool support"
    if model.supports_vision is False and _may_have_images(request) and _has_images(request.body):
        return "no image support"
    window = model.context_window
    if window is not None and (need := _tokens_over(request, window)) is not None:
        return f"prompt of about {need} tokens exceeds context window {window}"
    return None


class Registry:
    """Built once from the config; owns the providers and the health tracker."""

    def __init__(
        self,
        config: LoadedConfig,
        *,
        health_clock: Callable[[], float] | None = None,
        tracker: HealthTracker | None = None,
    ) -> None:
        """``tracker``: the health tracker to use (a replica's shares its state);
        default a per-process one on ``health_clock``."""
        s = config.settings
        self.settings = s
        self.providers: dict[str, Provider] = {
            name: build(name, opts) for name, opts in config.providers.items()
        }
        self.models: dict[str, ModelEntry] = {}
        for name, m in s.models.items():
            opts = config.providers[m.provider]
            upstream = m.model or name
            m = with_default_facts(m, opts.kind, upstream=upstream, base_url=opts.base_url)
            target = Target(name=name, upstream_model=upstream, options=m.options)
            prices = prices_for(m, upstream, opts.base_url)
            self.models[name] = ModelEntry(name, self.providers[m.provider], target, m, prices)
        self.embedding = frozenset(n for n, m in s.models.items() if m.mode == "embedding")
        """Models that serve embeddings (``mode = "embedding"``), not chat."""
        self.routes: dict[str, list[str]] = {n: list(r.models) for n, r in s.routes.items()}
        self.strategies = {n: r.strategy for n, r in s.routes.items()}
        self.weights = {n: m.weight for n, m in s.models.items()}
        clock = {"clock": health_clock} if health_clock is not None else {}
        if tracker is None:
            tracker = HealthTracker(s.health, self.models, **clock)
        self.tracker = tracker
        self.rng = random.Random()
        self._probing = s.health.probe != "none"
        # Capability checks only cost time when some model has a limit (its own, the
        # catalogue's or its kind's).
        self._gated = {
            n
            for n, e in self.models.items()
            if e.settings.supports_tools is False
            or e.settings.supports_vision is False
            or e.settings.context_window
        }

    async def start(self) -> None:
        """Open every provider's connection pool."""
        for p in self.providers.values():
            await p.start()

    async def aclose(self) -> None:
        """Close every provider's connection pool."""
        for p in self.providers.values():
            await p.aclose()

    @property
    def default_route(self) -> str | None:
        """The route (or model) for requests that name none, if the config has one."""
        key = self.settings.router.default_route
        return key if key in self.routes or key in self.models else None

    def resolve(self, name: str | None) -> tuple[str, list[str]]:
        """A route or model name (``None`` = default route) → (label, model names)."""
        key = name or self.default_route
        if key is None:
            raise bad_request(
                "'model' is required: this router has no default route "
                "(set router.default_route or add a route named 'default').",
                "model",
            )
        names = self.routes.get(key)
        if names is not None:
            return key, names
        if key in self.models:
            return key, [key]
        raise model_not_found(key)

    def resolve_list(self, names: Iterable[str]) -> list[str]:
        """An ad-hoc fallback list; routes expand to their models, duplicates drop."""
        out: list[str] = []
        for n in names:
            for m in self.resolve(n)[1]:
                if m not in out:
                    out.append(m)
        return out

    def plan(self, label: str, names: list[str], request: ChatRequest | None) -> Plan:
        """The ranked candidates for one request (``None``: no chat body to check models
        against, as for embeddings)."""
        order, notes = rank(
            names,
            strategy=self.strategies.get(label, "ordered"),
            weights=self.weights,
            tracker=self.tracker,
            rng=self.rng,
            probing=self._probing,
        )
        models = self.models
        if request is None:
            return Plan(label, [models[n] for n in order], notes=notes)
        native = request.native
        unfit = native.unfit if native is not None else None
        if unfit is not None and not any(speaks(models[n].provider, native) for n in order):
            assert native is not None
            raise bad_request(
                f"{label!r} cannot serve this request: {unfit}, and none of its models "
                f"takes the {native.protocol} API as it is."
            )
        if unfit is None and (not self._gated or self._gated.isdisjoint(order)):
            return Plan(label, [models[n] for n in order], notes=notes)
        plan = Plan(label, [], notes=notes)
        for n in order:
            entry = models[n]
            if unfit is not None and not speaks(entry.provider, native):
                plan.skipped.append((entry, unfit))
                continue
            reason = unfit_reason(entry.settings, request) if n in self._gated else None
            if reason is None:
                plan.candidates.append(entry)
            else:
                plan.skipped.append((entry, reason))
        return plan
