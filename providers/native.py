"""Plumbing shared by the adapters that translate to a vendor's native API.

:class:`NativeProvider` owns the connection pool and the three kinds of call such an
adapter makes (POST for JSON, POST for an event stream, GET for a probe), each
wrapped so that every wire failure and error status becomes a classified
:class:`ProviderError`. The vendor modules add only the translation.

:class:`EnvKeyOptions` gives a provider kind an API key read from the vendor's usual
environment variable when the config names none.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncGenerator
from typing import Any, ClassVar
from urllib.parse import urlsplit

import orjson
from pydantic import Field, field_validator

from providers.base import Failure, ProviderError, ProviderOptions
from providers.failures import classify_status
from providers.http import endpoint_label, hop_line, send_checked, sse_events
from providers.lean import Origin, Response
from providers.openai_shapes import client_error, malformed, parse_sse


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


class NativeProvider:
    """Base class: connections, timeouts and error mapping for a native vendor API."""

    kind: ClassVar[str]
    options_model: ClassVar[type[ProviderOptions]]
    vendor: ClassVar[str] = "upstream"
    """Vendor name used in error messages."""

    def __init__(self, name: str, base_url: str, headers: dict[str, str]) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.label = endpoint_label(self.base_url)
        self.origin = Origin(self.base_url, self.label)
        self._header_lines = b"".join(f"{k}: {v}\r\n".encode() for k, v in headers.items())

    async def start(self) -> None:
        """Connections open on first use."""

    async def aclose(self) -> None:
        """Close idle connections."""
        self.origin.close()

    def classify(self, status: int, body: bytes) -> Failure:
        """Failure class of an error answer; vendors refine the generic table."""
        return classify_status(status, body)

    def refine(self, err: ProviderError) -> ProviderError:
        """Add what only the vendor's error body tells (e.g. a retry delay)."""
        return err

    async def _send(
        self, method: str, url: str, body: bytes, connect: float, hops: int = 1
    ) -> Response:
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = self._header_lines + hop_line(hops)
        try:
            return await send_checked(
                self.origin, method, path, headers, body, connect, self.classify
            )
        except ProviderError as err:
            raise self.refine(err) from None

    async def _json(
        self, method: str, url: str, body: bytes, connect: float, hops: int = 1
    ) -> dict[str, Any]:
        resp = await self._send(method, url, body, connect, hops)
        try:
            raw = await resp.read()
        finally:
            resp.release()
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ProviderError(
                Failure.MALFORMED, f"{self.vendor} sent invalid JSON ({self.label})"
            ) from None
        if not isinstance(data, dict):
            raise ProviderError(
                Failure.MALFORMED, f"{self.vendor} answer is not an object ({self.label})"
            )
        return data

    def _encode(self, payload: dict[str, Any]) -> bytes:
        try:
            return orjson.dumps(payload)
        except orjson.JSONEncodeError as err:
            # The payload is built from the client's body (e.g. a tool schema nested
            # past orjson's 254 levels): the client's error, not the model's.
            raise client_error(f"Request body cannot be encoded for {self.vendor}: {err}") from None

    async def post_json(
        self, url: str, payload: dict[str, Any], connect_timeout: float, hops: int = 1
    ) -> dict[str, Any]:
        """POST ``payload`` and return the decoded JSON answer (``hops``: see ``_send``)."""
        return await self._json("POST", url, self._encode(payload), connect_timeout, hops)

    async def get_json(self, url: str, timeout: float) -> dict[str, Any]:
        """GET ``url`` (a probe) within ``timeout`` and return the decoded JSON answer."""
        async with asyncio.timeout(timeout):
            return await self._json("GET", url, b"", timeout)

    async def post_events(
        self, url: str, payload: dict[str, Any], connect_timeout: float, hops: int = 1
    ) -> AsyncGenerator[dict[str, Any], None]:
        """POST ``payload`` and yield the JSON object of each SSE event as it arrives."""
        resp = await self._send("POST", url, self._encode(payload), connect_timeout, hops)
        try:
            ctype = resp.headers.get("content-type", "")
            if not ctype.startswith("text/event-stream"):
                raise ProviderError(
                    Failure.MALFORMED,
                    f"{self.vendor} did not stream ({ctype or 'no type'}, {self.label})",
                )
            async for event in sse_events(resp.chunks()):
                _, data = parse_sse(event)
                if not data:
                    continue
                try:
                    decoded = orjson.loads(data)
                except orjson.JSONDecodeError:
                    raise malformed(self.vendor, "stream event is not JSON") from None
                if not isinstance(decoded, dict):
                    raise malformed(self.vendor, "stream event is not an object")
                yield decoded
        finally:
            resp.release()
