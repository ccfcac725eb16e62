"""What a request cost: token counts from the upstream's usage, priced per model.

Prices (USD per million tokens) are resolved once per model when the registry is built
(:func:`prices_for`), each price on its own:

- ``input``: ``[models.NAME] input_cost_per_mtok``, else the built-in catalogue's price
  for the upstream id (:mod:`modelrouter.catalog`), else unknown;
- ``output``: the same with ``output_cost_per_mtok``;
- ``cached_input``: ``cached_input_cost_per_mtok``, else the catalogue's cached price
  when the input price is the catalogue's too, else the input price. (A catalogue's
  cache discount belongs to its own list price, not to a price you negotiated.)

Usage is OpenAI's accounting (the Anthropic and Gemini adapters translate to it):
``prompt_tokens`` *includes* the cached tokens given in
``prompt_tokens_details.cached_tokens`` (DeepSeek's ``prompt_cache_hit_tokens`` is read
when that is absent). So a request is billed

    (prompt - cached) * input + cached * cached_input + completion * output

and its record's ``input_tokens`` is ``prompt_tokens`` with the cached ones in it.
Reasoning tokens are part of ``completion_tokens`` and cost the output price.

A model whose input or output price is unknown is billed 0 for that part and its cost
is marked ``price_unknown``. A cost is computed once, when its request ends, and kept
with the request's record: a later price change (a config edit, a newer catalogue)
applies to later requests only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelrouter.catalog import catalog
from modelrouter.settings import ModelSettings

if TYPE_CHECKING:
    from modelrouter.registry import ModelEntry

PER = 1_000_000
"""Prices are per million tokens."""


@dataclass(frozen=True, slots=True)
class Prices:
    """One model's prices in USD per million tokens (``None``: unknown)."""

    input: float | None
    output: float | None
    cached_input: float | None
    source: str
    """Where they came from: ``"config"``, ``"catalog"``, ``"config+catalog"`` or ``"none"``."""

    @property
    def unknown(self) -> bool:
        """Whether the input or output price is unknown."""
        return self.input is None or self.output is None


@dataclass(frozen=True, slots=True)
class Cost:
    """The tokens and price of one served request."""

    input_tokens: int
    """Prompt tokens, the cached ones included (OpenAI's ``prompt_tokens``)."""
    output_tokens: int
    """Completion tokens, reasoning included."""
    cached_tokens: int
    """Prompt tokens read from the upstream's prompt cache (part of ``input_tokens``)."""
    cost_usd: float
    price_unknown: bool
    """No price for the input or output tokens: that part counts as 0."""
    usage_estimated: bool
    """The upstream reported no usage; the counts are the router's estimate."""

    def fields(self) -> dict[str, Any]:
        """The cost as a record's fields."""
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_tokens": self.cached_tokens,
            "cost_usd": self.cost_usd,
            "price_unknown": self.price_unknown,
            "usage_estimated": self.usage_estimated,
        }


def prices_for(model: ModelSettings, upstream_model: str, base_url: str | None = None) -> Prices:
    """The prices of ``model`` (served as ``upstream_model`` from ``base_url``).

    See the module docstring for the order; host-specific catalogue entries need
    ``base_url``.
    """
    entry = catalog().lookup(upstream_model, base_url)
    cfg_in, cfg_out = model.input_cost_per_mtok, model.output_cost_per_mtok
    cfg_cached = model.cached_input_cost_per_mtok
    cat_in = entry.input_cost_per_mtok if entry else None
    cat_out = entry.output_cost_per_mtok if entry else None
    cat_cached = entry.cached_input_cost_per_mtok if entry else None
    price_in = cfg_in if cfg_in is not None else cat_in
    price_out = cfg_out if cfg_out is not None else cat_out
    cached: float | None
    if cfg_cached is not None:
        cached = cfg_cached
    elif cfg_in is None and cat_cached is not None:
        cached = cat_cached
    else:
        cached = price_in
    from_cfg = any(v is not None for v in (cfg_in, cfg_out, cfg_cached))
    from_cat = (cfg_in is None and cat_in is not None) or (cfg_out is None and cat_out is not None)
    source = {(True, True): "config+catalog", (True, False): "config", (False, True): "catalog"}
    return Prices(price_in, price_out, cached, source.get((from_cfg, from_cat), "none"))


def _count(value: object) -> int:
    # Counts arrive as JSON integers; anything else (null, a string, a float) is read as
    # well as it can be, and never below 0. The check is ``type(...) is int`` first: this
    # runs for every request.
    if type(value) is int:
        return value if value > 0 else 0
    return int(value) if isinstance(value, float) and value > 0 else 0


def cached_tokens(usage: Mapping[str, Any]) -> int:
    """Prompt tokens read from cache, as OpenAI (or DeepSeek) reports them."""
    details = usage.get("prompt_tokens_details")
    if type(details) is dict and details.get("cached_tokens") is not None:
        return _count(details["cached_tokens"])
    return _count(usage.get("prompt_cache_hit_tokens"))


def bill(prices: Prices, usage: Mapping[str, Any] | None, *, estimated: bool = False) -> Cost:
    """Price OpenAI-shaped ``usage`` (``None``: nothing known, all counts 0)."""
    if not usage:
        return Cost(0, 0, 0, 0.0, prices.unknown, estimated)
    prompt = _count(usage.get("prompt_tokens"))
    completion = _count(usage.get("completion_tokens"))
    cached = min(cached_tokens(usage), prompt)
    usd = (
        (prompt - cached) * (prices.input or 0.0)
        + cached * (prices.cached_input or 0.0)
        + completion * (prices.output or 0.0)
    ) / PER
    return Cost(prompt, completion, cached, usd, prices.unknown, estimated)


def cost_of(
    model: ModelEntry | ModelSettings,
    upstream_model: str,
    usage: Mapping[str, Any] | None,
    *,
    estimated: bool = False,
) -> Cost:
    """The cost of one request served by ``model`` as ``upstream_model``.

    ``model`` is a registry entry (its prices were resolved at start, for its own
    upstream id and host) or a model's settings (prices resolved now, without a host).
    ``usage`` is the upstream's OpenAI-shaped usage; ``estimated`` says the router
    made it up (see :mod:`modelrouter.usage`).
    """
    if isinstance(model, ModelSettings):
        prices = prices_for(model, upstream_model)
    elif model.target.upstream_model == upstream_model:
        prices = model.prices
    else:
        base_url = getattr(model.provider, "base_url", None)
        prices = prices_for(model.settings, upstream_model, base_url)
    return bill(prices, usage, estimated=estimated)
