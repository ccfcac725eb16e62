"""What the adapters that translate to a vendor's own API add to :class:`HTTPProvider`.

The three kinds of call such an adapter makes (POST for JSON, POST for an event
stream, GET for a probe), on decoded objects; every wire failure and error status
is already a classified :class:`ProviderError` by then. The vendor modules add
only the translation.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any
from urllib.parse import urlsplit

import orjson

from providers.base import Failure, ProviderError
from providers.openai_shapes import client_error, malformed
from providers.sse import parse_sse, sse_events
from providers.upstream import HTTPProvider


class NativeProvider(HTTPProvider):
    """Base class of adapters that translate to a vendor's own JSON API."""

    def _path_of(self, url: str) -> str:
        parts = urlsplit(url)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    async def _json(
        self, method: str, url: str, body: bytes, connect: float, hops: int = 1
    ) -> dict[str, Any]:
        raw = await self._read(method, self._path_of(url), body, connect, hops)
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
        path = self._path_of(url)
        resp = await self._send("POST", path, self._encode(payload), connect_timeout, hops)
        try:
            ctype = resp.headers.get("content-type", "")
            if not ctype.startswith("text/event-stream"):
                raise ProviderError(
                    Failure.MALFORMED,
                    f"{self.vendor} did not stream ({ctype or 'no type'}, {self.label})",
                )
            async for event in sse_events(resp.chunks(), self.max_event_bytes):
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
