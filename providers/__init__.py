"""Provider kinds: ``kind`` string → adapter class, and :func:`build`.

Adding a vendor means adding a module with a class that satisfies
:class:`providers.base.Provider` and listing it in :data:`KINDS`.
"""

from __future__ import annotations

from providers.anthropic import AnthropicProvider
from providers.azure import AzureProvider
from providers.base import Provider, ProviderOptions
from providers.gemini import GeminiProvider
from providers.ollama import OllamaProvider
from providers.openai import OpenAIProvider
from providers.presets import PRESET_CLASSES
from providers.simulated import SimulatedProvider

_CLASSES: tuple[type[Provider], ...] = (
    OpenAIProvider,
    SimulatedProvider,
    AnthropicProvider,
    GeminiProvider,
    AzureProvider,
    OllamaProvider,
    *PRESET_CLASSES,
)

KINDS: dict[str, type[Provider]] = {cls.kind: cls for cls in _CLASSES}
"""Every provider kind a config may name."""


def options_model_for(kind: str) -> type[ProviderOptions] | None:
    """The options model that validates ``[providers.NAME]`` of this kind, if known."""
    cls = KINDS.get(kind)
    return None if cls is None else cls.options_model


def default_facts(kind: str) -> dict[str, object]:
    """Kind-wide capability defaults (``context_window``, ``supports_tools``, ...).

    A model's own facts in the config win over these.
    """
    facts: dict[str, object] = getattr(KINDS.get(kind), "default_facts", {})
    return facts


def build(name: str, options: ProviderOptions) -> Provider:
    """Instantiate the provider ``name`` from its validated options."""
    cls = KINDS[options.kind]
    return cls(name, options)  # type: ignore[call-arg]
