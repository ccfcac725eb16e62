"""Which routes and models a key may use (CONTRACT.md section 5).

An :class:`~modelrouter.governance.types.Identity` carries allow-lists in
``models``: the key's own and its team's, and every one of them applies. Each entry is
a name or a glob (``fnmatch`` style, case-sensitive: ``"gpt-*"``, ``"claude-?-*"``)
over route and model names. A request is checked on the names it gives, as it gives
them: its ``model`` (or the default route when it names none), and each member of an
ad-hoc ``models`` list (body or ``x-modelrouter-models``). A route that is allowed may
use all of its models; a route's members are not checked one by one, so allowing
``"default"`` is how a key is given a fallback list without being given each model.

Match results are cached per (allow-list, name), so the check on the request path is
a dict lookup per list.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase

from modelrouter.governance.types import Identity
from modelrouter.governance.wire import LimitExceeded, model_not_allowed
from providers.base import ChatRequest

CACHE_MAX = 50_000
"""Cached (list, name) results kept before the cache starts over. Names are only those
the registry resolved (unknown names are refused before this check), so this is only
reached with many distinct allow-lists, e.g. after many key edits."""


def matches(allow: Sequence[str], name: str) -> bool:
    """Whether ``name`` is one of ``allow`` or matches one of its globs."""
    return any(p == name or fnmatchcase(name, p) for p in allow)


def requested_names(
    model: str | None, request: ChatRequest, header: str | None, default_route: str | None
) -> list[str]:
    """The route and model names a request asks for, as it gives them (see the module
    docstring). Call after the registry accepted them: shapes are not checked again."""
    names = [model] if model else []
    extra = request.get("models")
    if extra is None and header is not None:
        extra = [m.strip() for m in header.split(",") if m.strip()]
    if isinstance(extra, list):
        names += [m for m in extra if isinstance(m, str)]
    if not names and default_route is not None:
        names.append(default_route)
    return names


class Permissions:
    """Checks names against an identity's allow-lists, with the results cached."""

    def __init__(self) -> None:
        self._cache: dict[tuple[tuple[str, ...], str], bool] = {}

    def allows(self, allow: tuple[str, ...], name: str) -> bool:
        """Whether one allow-list lets ``name`` through."""
        key = (allow, name)
        hit = self._cache.get(key)
        if hit is None:
            hit = matches(allow, name)
            if len(self._cache) >= CACHE_MAX:
                self._cache.clear()
            self._cache[key] = hit
        return hit

    def may_use(self, identity: Identity, name: str) -> bool:
        """Whether every allow-list of ``identity`` lets ``name`` through."""
        return all(self.allows(allow, name) for allow in identity.models)

    def visible(self, identity: Identity, names: Iterable[str]) -> list[str]:
        """Those of ``names`` that ``identity`` may use, in order."""
        return [n for n in names if self.may_use(identity, n)]

    def refusal(self, identity: Identity, names: Sequence[str]) -> LimitExceeded | None:
        """The 403 ``model_not_allowed`` naming the first of ``names`` refused, if any."""
        for name in names:
            for allow in identity.models:
                if not self.allows(allow, name):
                    return model_not_allowed(name, allow, identity.team)
        return None

    def check(self, identity: Identity, names: Sequence[str]) -> None:
        """Raise :meth:`refusal` if there is one."""
        refused = self.refusal(identity, names)
        if refused is not None:
            raise refused
