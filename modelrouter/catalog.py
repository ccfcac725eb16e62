"""The built-in catalogue: list prices and capability facts of well-known upstream models.

The figures live in ``catalog.toml`` next to this module, with the date they were
taken (:attr:`Catalog.as_of`). They fill in what a ``[models.NAME]`` table leaves out;
the config always wins.

Matching an upstream id to an entry (:func:`candidates`, first hit wins):

1. the id as configured (``gpt-4o-mini``, ``meta-llama/llama-4-scout-17b-16e-instruct``);
2. the id without a leading ``vendor/`` path (``openai/gpt-4o`` → ``gpt-4o``,
   ``models/gemini-2.5-pro`` → ``gemini-2.5-pro``);
3. each of those with one date or version suffix dropped: ``-latest``, ``-YYYY-MM-DD``
   (OpenAI snapshots), ``-YYYYMMDD`` or ``@YYYYMMDD`` (Anthropic, Vertex), ``-NNN``
   (Gemini's ``-001``).

Every step looks in the catalogue's entries and its explicit aliases
(``mistral-large-latest`` → ``mistral-large-2411``); a dropped suffix only matches an
entry, never an alias, so an older version of an aliased family (``mistral-small-2409``)
stays unknown rather than taking a newer version's price. Matching is case-sensitive:
vendors' ids are lower case, and a differently spelt id usually belongs to another host.
Snapshots priced apart from their family (``gpt-4o-2024-05-13``) are entries of their own,
found at step 1.

Entries of an open-weight host (Groq) apply only to providers whose ``base_url`` is on
that host: the same open model costs something else elsewhere.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

_SUFFIX = re.compile(r"(?:-latest|-\d{4}-\d{2}-\d{2}|[-@]\d{8}|-\d{3})$")


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """One catalogue model: USD per million tokens and capability facts (``None``: unknown)."""

    id: str
    vendor: str
    input_cost_per_mtok: float | None = None
    output_cost_per_mtok: float | None = None
    cached_input_cost_per_mtok: float | None = None
    context_window: int | None = None
    supports_tools: bool | None = None
    supports_vision: bool | None = None

    def facts(self) -> dict[str, object]:
        """The capability facts the catalogue knows, by ``ModelSettings`` field name."""
        known = {
            "context_window": self.context_window,
            "supports_tools": self.supports_tools,
            "supports_vision": self.supports_vision,
        }
        return {k: v for k, v in known.items() if v is not None}


def candidates(model_id: str) -> tuple[list[str], list[str]]:
    """The ids tried for ``model_id``: (as given and without a ``vendor/`` path, which
    may match entries or aliases; then those with one date or version suffix dropped,
    which may match entries only). See the module docstring."""
    ids = [model_id]
    if "/" in model_id:
        ids.append(model_id.rsplit("/", 1)[1])
    stripped: list[str] = []
    for i in ids:
        short = _SUFFIX.sub("", i)
        if short != i and short not in stripped:
            stripped.append(short)
    return ids, stripped


class Catalog:
    """The parsed catalogue; :meth:`lookup` finds an upstream id's entry."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.as_of: str = str(data["as_of"])
        """The date the figures were taken (ISO)."""
        self.source: str = str(data.get("source", ""))
        self._host_only: dict[str, set[str]] = {
            vendor: set(hosts) for vendor, hosts in data.get("host_only", {}).items()
        }
        self._aliases: dict[str, str] = dict(data.get("aliases", {}))
        self._entries: dict[str, dict[str, CatalogEntry]] = {}
        for vendor, models in data["models"].items():
            self._entries[vendor] = {mid: _entry(vendor, mid, f) for mid, f in models.items()}
        for alias, target in self._aliases.items():
            if not any(target in e for e in self._entries.values()):
                raise ValueError(f"catalogue alias {alias!r} names no entry ({target!r})")

    def __len__(self) -> int:
        return sum(len(e) for e in self._entries.values())

    def _sections(self, base_url: str | None) -> list[dict[str, CatalogEntry]]:
        host = (urlsplit(base_url).hostname or "") if base_url else ""
        return [
            entries
            for vendor, entries in self._entries.items()
            if vendor not in self._host_only or host in self._host_only[vendor]
        ]

    def lookup(self, model_id: str, base_url: str | None = None) -> CatalogEntry | None:
        """The entry for upstream id ``model_id`` served from ``base_url``, if any."""
        sections = self._sections(base_url)
        given, stripped = candidates(model_id)
        tries = [(i, True) for i in given] + [(i, False) for i in stripped]
        for key, alias_ok in tries:
            keys = [key, self._aliases[key]] if alias_ok and key in self._aliases else [key]
            for k in keys:
                for entries in sections:
                    if k in entries:
                        return entries[k]
        return None


def _entry(vendor: str, model_id: str, f: dict[str, Any]) -> CatalogEntry:
    unknown = set(f) - {"input", "output", "cached_input", "context", "tools", "vision"}
    if unknown:
        raise ValueError(f"catalogue entry {model_id!r}: unknown keys {sorted(unknown)}")
    return CatalogEntry(
        id=model_id,
        vendor=vendor,
        input_cost_per_mtok=f.get("input"),
        output_cost_per_mtok=f.get("output"),
        cached_input_cost_per_mtok=f.get("cached_input"),
        context_window=f.get("context"),
        supports_tools=f.get("tools"),
        supports_vision=f.get("vision"),
    )


@cache
def catalog() -> Catalog:
    """The built-in catalogue, read from the package once per process."""
    text = resources.files("modelrouter").joinpath("catalog.toml").read_text("utf-8")
    return Catalog(tomllib.loads(text))
