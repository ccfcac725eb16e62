"""Provider kinds: ``kind`` string → adapter class, and :func:`build`.

The built-in kinds are listed here. A package of its own can add kinds without
touching this file: it declares an entry point in the ``modelrouter.providers``
group whose object is a class satisfying :class:`providers.base.Provider` (its
``kind`` is the name a config uses), e.g. in its ``pyproject.toml``::

    [project.entry-points."modelrouter.providers"]
    bedrock = "modelrouter_bedrock:BedrockProvider"

A built-in kind cannot be replaced this way; a plug-in that fails to load is
reported on stderr and left out.
"""

from __future__ import annotations

import sys
from importlib.metadata import entry_points

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

ENTRY_POINT_GROUP = "modelrouter.providers"


def _plugins(builtin: set[str]) -> dict[str, type[Provider]]:
    found: dict[str, type[Provider]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = ep.load()
            kind = cls.kind
        except Exception as err:  # a broken plug-in must not stop the router
            print(f"modelrouter: provider plug-in {ep.value!r} not loaded: {err}", file=sys.stderr)
            continue
        if kind in builtin:
            print(
                f"modelrouter: plug-in {ep.value!r} cannot replace kind {kind!r}", file=sys.stderr
            )
            continue
        found[kind] = cls
    return found


KINDS: dict[str, type[Provider]] = {cls.kind: cls for cls in _CLASSES}
"""Every provider kind a config may name: the built-in ones, then plug-ins."""
KINDS.update(_plugins(set(KINDS)))


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
