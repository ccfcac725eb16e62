"""The one base of every provider that talks HTTP to a real upstream.

:class:`HTTPProvider` owns what the OpenAI passthrough and the native adapters
(Anthropic, Gemini) share: the connection pool to one origin, the header lines built
once, the hop header, and the mapping of every error answer to a classified
:class:`~providers.base.ProviderError` (:meth:`HTTPProvider.classify`, refined per
vendor by :meth:`HTTPProvider.refine`). Subclasses add only their wire format.

:class:`EnvKeyOptions` gives a provider kind an API key read from the vendor's usual
environment variable when the config names none.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping
from typing import ClassVar
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from providers.base import Failure, ProviderError, ProviderOptions
from providers.failures import classify_status
from providers.http import endpoint_label, hop_line, send_checked
from providers.lean import Body
from providers.transport import Reply, Transport, open_transport


class EnvKeyOptions(ProviderOptions):
    """Options whose ``api_key`` defaults to the first set variable of ``key_env``.

    The variable is read from the process environment when the config is validated.
    With ``key_required``, a missing key is a config error (a hosted API cannot
    answer without one); ``api_key = ""`` says "no key" on purpose.
    """

    key_env: ClassVar[tuple[str, ...]] = ()
    key_required: ClassVar[bool] = True

    api_key: str | None = Field(None, validate_default=True)

    @field_validator("api_key")
    @classmethod
    def _key_from_env(cls, value: str | None) -> str | None:
        if value is not None:
            return value
        for var in cls.key_env:
            if os.environ.get(var):
                return os.environ[var]
        if cls.key_required and cls.key_env:
            names = " or ".join(f"${v}" for v in cls.key_env)
            raise ValueError(f"not given, and {names} is not set")
        return None


Signer = Callable[[str, str, Body], Awaitable[bytes]]
"""Called before each request with its method, path and body; returns header lines
(``Name: value\r\n``) to add: a fresh token, or a signature over the request."""


class HTTPProvider:
    """Base class: one origin's connections, headers, and error mapping."""

    kind: ClassVar[str]
    options_model: ClassVar[type[ProviderOptions]]
    vendor: ClassVar[str] = "upstream"
    """Vendor name used in error messages."""

    def __init__(
        self, name: str, base_url: str, headers: Mapping[str, str], options: ProviderOptions
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.label = endpoint_label(self.base_url)
        """``host:port`` of the upstream: what error messages name (never the full URL)."""
        self.prefix = urlsplit(self.base_url).path
        """The base URL's path (``/v1``): request paths start with it."""
        self.origin: Transport = open_transport(options, self.base_url, self.label)
        self.max_event_bytes = int(options.max_event_mb * (1 << 20))
        """Largest single event a stream may carry."""
        self.signer: Signer | None = None
        """Per-request credentials (short-lived tokens, request signing), if the kind needs them."""
        self._set_headers(headers)

    def _set_headers(self, headers: Mapping[str, str]) -> None:
        # Kept as ready-made header lines: the request is written in one piece.
        self._header_lines = b"".join(f"{k}: {v}\r\n".encode() for k, v in headers.items())

    async def start(self) -> None:
        """Connections open on first use."""

    async def aclose(self) -> None:
        """Close idle connections."""
        await self.origin.aclose()

    def classify(self, status: int, body: bytes) -> Failure:
        """Failure class of an error answer; vendors refine the generic table."""
        return classify_status(status, body)

    def refine(self, err: ProviderError) -> ProviderError:
        """Add what only the vendor's error body tells (e.g. a retry delay)."""
        return err

    def _send(
        self, method: str, path: str, body: Body, connect: float, hops: int = 1, extra: bytes = b""
    ) -> Awaitable[Reply]:
        """Send a request to ``path`` (with its query); raise the error of a non-2xx answer.

        ``hops`` is the request's hop count as the upstream will see it (loop guard);
        ``extra``: header lines for this request only (``Name: value\r\n`` each).
        """
        # Hands back send_checked's coroutine: no extra frame on the hot path.
        headers = self._header_lines + hop_line(hops) + extra
        if self.signer is not None:
            return self._signed(method, path, headers, body, connect)
        return send_checked(
            self.origin, method, path, headers, body, connect, self.classify, self.refine
        )

    async def _signed(
        self, method: str, path: str, headers: bytes, body: Body, connect: float
    ) -> Reply:
        assert self.signer is not None
        headers += await self.signer(method, path, body)
        return await send_checked(
            self.origin, method, path, headers, body, connect, self.classify, self.refine
        )

    async def _read(
        self, method: str, path: str, body: Body, connect: float, hops: int = 1, extra: bytes = b""
    ) -> bytes:
        """Send a request and read its whole answer."""
        resp = await self._send(method, path, body, connect, hops, extra)
        try:
            return await resp.read()
        finally:
            resp.release()
