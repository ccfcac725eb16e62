"""Provider kinds: ``kind`` string → adapter class, and :func:`build`.

Adding a vendor means adding a module with a class that satisfies
:class:`providers.base.Provider` and listing it in :data:`KINDS`.
"""

from __future__ import annotations

from providers.base import Provider, ProviderOptions
from providers.openai import OpenAIProvider
from providers.simulated import SimulatedProvider

KINDS: dict[str, type[Provider]] = {
    OpenAIProvider.kind: OpenAIProvider,
    SimulatedProvider.kind: SimulatedProvider,
}
"""Every provider kind a config may name."""


def options_model_for(kind: str) -> type[ProviderOptions] | None:
    """The options model that validates ``[providers.NAME]`` of this kind, if known."""
    cls = KINDS.get(kind)
    return None if cls is None else cls.options_model


def build(name: str, options: ProviderOptions) -> Provider:
    """Instantiate the provider ``name`` from its validated options."""
    cls = KINDS[options.kind]
    return cls(name, options)  # type: ignore[call-arg]
