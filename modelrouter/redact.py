"""Keeping configured secrets out of everything an upstream can make us repeat.

Upstreams echo what they were sent ("Incorrect API key provided: sk-..."), and their
error text travels far: the attempt trail in a 502, ``/health``, MCP results, SSE
error events, the log. A :class:`Redactor` knows every secret in the config (API
keys, credentials and query values inside ``base_url``, configured header values,
the router's own keys) and replaces each with ``[REDACTED]`` in upstream-derived
text and bytes. The core applies it where a :class:`ProviderError` enters it (the
dispatcher and the probes), before the text is stored or shown anywhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, unquote, urlsplit

import orjson

from modelrouter.config import LoadedConfig
from providers.base import ProviderError, ProviderOptions

MASK = "[REDACTED]"
MIN_SECRET_LEN = 6
"""Shorter values are not treated as secrets: masking them would garble ordinary words."""


class Redactor:
    """Replaces known secrets in text and bytes (a no-op when there are none)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        forms: set[str] = set()
        for secret in secrets:
            if len(secret) < MIN_SECRET_LEN:
                continue
            forms.add(secret)
            # As it would appear inside a JSON string an upstream sends back.
            forms.add(orjson.dumps(secret).decode()[1:-1])
        # Longest first, so a secret that contains another is masked whole.
        ordered = sorted(forms, key=len, reverse=True)
        self._text = re.compile("|".join(map(re.escape, ordered))) if ordered else None
        self._bytes = (
            re.compile(b"|".join(re.escape(f.encode()) for f in ordered)) if ordered else None
        )

    def text(self, value: str) -> str:
        """``value`` with every secret masked."""
        return self._text.sub(MASK, value) if self._text is not None else value

    def bytes(self, value: bytes) -> bytes:
        """``value`` with every secret masked."""
        return self._bytes.sub(MASK.encode(), value) if self._bytes is not None else value

    def error(self, err: ProviderError) -> ProviderError:
        """Mask ``err``'s message and body in place; return it."""
        if self._text is not None:
            err.message = self.text(err.message)
            err.args = (err.message,)
            if err.body:
                err.body = self.bytes(err.body)
        return err


def config_secrets(config: LoadedConfig) -> list[str]:
    """Every secret a loaded config holds: provider credentials and the router's keys."""
    server = config.settings.server
    out = [*server.api_keys, *server.admin_keys]
    password = urlsplit(config.settings.store.url).password
    if password:
        # Only the password: a user name such as "postgres" is not worth masking everywhere.
        out.extend({password, unquote(password)})
    for options in config.providers.values():
        out.extend(provider_secrets(options))
    return out


def provider_secrets(options: ProviderOptions) -> list[str]:
    """Every secret one provider's options hold.

    Configured header values all count: extra headers are where credentials other
    than a bearer key go (``api-key``, ``x-goog-api-key``, tokens for a proxy).
    """
    out = [options.api_key] if options.api_key else []
    out.extend(options.headers.values())
    for key, value in vars(options).items():
        # Vendor option models may add credential fields of their own.
        if isinstance(value, str) and key != "api_key" and _secret_name(key):
            out.append(value)
    if options.base_url:
        out.extend(url_secrets(options.base_url))
    return out


def url_secrets(url: str) -> list[str]:
    """Credentials and query values inside a URL (``https://u:p@host/?key=...``)."""
    parts = urlsplit(url)
    out = [v for v in (parts.username, parts.password) if v]
    out.extend(unquote(v) for v in (parts.username, parts.password) if v)
    for _, value in parse_qsl(parts.query):
        out.append(value)
    return out


def _secret_name(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in ("key", "token", "secret", "password"))
