"""Plumbing shared by the adapters that translate to a vendor's native API.

:class:`NativeProvider` owns the connection pool and the three kinds of call such an
adapter makes (POST for JSON, POST for an event stream, GET for a probe), each
wrapped so that every wire failure and error status becomes a classified
:class:`ProviderError`. The vendor modules add only the translation.

:class:`EnvKeyOptions` gives a provider kind an API key read from the vendor's usual
environment variable when the config names none.
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator
from typing import Any, ClassVar

import aiohttp
import orjson
from pydantic import Field, field_validator

from modelrouter.retry import classify_status
from providers.base import Failure, ProviderError, ProviderOptions
from providers.http import PooledSession, endpoint_label, raise_for_status, sse_events, wire_errors


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


class NativeProvider(PooledSession):
    """Base class: pooled session, timeouts and error mapping for a native vendor API."""

    kind: ClassVar[str]
    options_model: ClassVar[type[ProviderOptions]]
    vendor: ClassVar[str] = "upstream"
    """Vendor name used in error messages."""

    def __init__(self, name: str, base_url: str, headers: dict[str, str]) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.label = endpoint_label(self.base_url)
        self.headers = headers

    def classify(self, status: int, body: bytes) -> Failure:
        """Failure class of an error answer; vendors refine the generic table."""
        return classify_status(status, body)

    def refine(self, err: ProviderError) -> ProviderError:
        """Add what only the vendor's error body tells (e.g. a retry delay)."""
        return err

    async def _check(self, resp: aiohttp.ClientResponse) -> None:
        try:
            await raise_for_status(resp, self.label, self.classify)
        except ProviderError as err:
            raise self.refine(err) from None

    def _decode(self, raw: bytes) -> dict[str, Any]:
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

    async def post_json(
        self, url: str, payload: dict[str, Any], timeout: aiohttp.ClientTimeout
    ) -> dict[str, Any]:
        """POST ``payload`` and return the decoded JSON answer."""
        with wire_errors(self.label):
            async with self.session.post(
                url, data=orjson.dumps(payload), headers=self.headers, timeout=timeout
            ) as resp:
                await self._check(resp)
                raw = await resp.read()
        return self._decode(raw)

    async def get_json(self, url: str, timeout: float) -> dict[str, Any]:
        """GET ``url`` (a probe) and return the decoded JSON answer."""
        with wire_errors(self.label):
            async with self.session.get(
                url, headers=self.headers, timeout=aiohttp.ClientTimeout(total=timeout)
            ) as resp:
                await self._check(resp)
                raw = await resp.read()
        return self._decode(raw)

    async def post_events(
        self, url: str, payload: dict[str, Any], connect_timeout: float
    ) -> AsyncGenerator[bytes, None]:
        """POST ``payload`` and yield the raw SSE events of the answer as they arrive."""
        with wire_errors(self.label):
            async with self.session.post(
                url,
                data=orjson.dumps(payload),
                headers=self.headers,
                timeout=self._timeout(connect_timeout),
            ) as resp:
                await self._check(resp)
                ctype = resp.headers.get("Content-Type", "")
                if not ctype.startswith("text/event-stream"):
                    raise ProviderError(
                        Failure.MALFORMED,
                        f"{self.vendor} did not stream ({ctype or 'no type'}, {self.label})",
                    )
                async for event in sse_events(resp.content.iter_any()):
                    yield event
