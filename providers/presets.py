"""Presets: OpenAI-compatible services under their own ``kind``, with defaults filled in.

``kind = "groq"`` is ``kind = "openai"`` with Groq's ``base_url`` and, when the config
gives no ``api_key``, the key from ``$GROQ_API_KEY``. Hosted services need a key (a
missing one is a config error); local servers need none, but read their usual
variable if it is set. Everything else is OpenAI passthrough.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from pydantic import ConfigDict

from providers.base import ProviderOptions
from providers.openai import OpenAIProvider, PassthroughOptions
from providers.upstream import EnvKeyOptions


@dataclass(frozen=True, slots=True)
class Preset:
    """One OpenAI-compatible service: its kind, default base URL and key variable."""

    kind: str
    base_url: str
    key_env: str | None
    hosted: bool = True
    """A hosted API needs a key; a local server usually runs without one."""
    stream_usage: bool = True
    """Default of ``stream_usage``: whether the service accepts ``stream_options``."""


PRESETS: tuple[Preset, ...] = (
    # Mistral refuses stream_options (422 extra_forbidden) but ends every stream with
    # usage on its last chunk unasked.
    Preset("mistral", "https://api.mistral.ai/v1", "MISTRAL_API_KEY", stream_usage=False),
    Preset("groq", "https://api.groq.com/openai/v1", "GROQ_API_KEY"),
    Preset("deepseek", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY"),
    Preset("together", "https://api.together.xyz/v1", "TOGETHER_API_KEY"),
    Preset("openrouter", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"),
    Preset("vllm", "http://localhost:8000/v1", "VLLM_API_KEY", hosted=False),
    Preset("llamacpp", "http://localhost:8080/v1", "LLAMA_API_KEY", hosted=False),
    Preset("lmstudio", "http://localhost:1234/v1", None, hosted=False),
)
"""Every preset kind, in the order the docs list them."""


def preset_class(preset: Preset) -> type[OpenAIProvider]:
    """The provider class for ``preset``: OpenAI passthrough with its own options model."""

    class _Options(EnvKeyOptions, PassthroughOptions):
        model_config = ConfigDict(title=f"{preset.kind.capitalize()}Options")

        key_env: ClassVar[tuple[str, ...]] = (preset.key_env,) if preset.key_env else ()
        key_required: ClassVar[bool] = preset.hosted

        base_url: str | None = preset.base_url
        stream_usage: bool = preset.stream_usage

    _Options.__name__ = _Options.__qualname__ = f"{preset.kind.capitalize()}Options"
    _Options.__doc__ = f'``[providers.NAME]`` with ``kind = "{preset.kind}"``.'

    class _Preset(OpenAIProvider):
        kind: ClassVar[str] = preset.kind
        options_model: ClassVar[type[ProviderOptions]] = _Options

    _Preset.__name__ = _Preset.__qualname__ = f"{preset.kind.capitalize()}Provider"
    _Preset.__doc__ = f"{preset.kind}: OpenAI passthrough to {preset.base_url} by default."
    return _Preset


PRESET_CLASSES: tuple[type[OpenAIProvider], ...] = tuple(preset_class(p) for p in PRESETS)
"""One provider class per preset, ready for :data:`providers.KINDS`."""
