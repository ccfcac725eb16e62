"""Azure OpenAI: OpenAI passthrough addressed to a deployment.

Each model's upstream id (``[models.NAME] model``) is the *deployment* name. Calls
go to ``{base_url}/openai/deployments/{deployment}/chat/completions?api-version=…``
with the key in the ``api-key`` header; bodies and answers pass through untouched,
as for OpenAI. Azure answers a prompt its content filter refused with a 400 whose
code is ``content_filter``: that is a content-filter failure (another vendor may
answer), not the client's fault.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, ClassVar
from urllib.parse import quote

import aiohttp
import orjson

from modelrouter.retry import classify_status
from providers.base import ChatRequest, Completion, Failure, ProviderError, ProviderOptions, Target
from providers.http import raise_for_status, sse_events, wire_errors
from providers.native import EnvKeyOptions
from providers.openai import OpenAIProvider, parse_completion, stream_error, upstream_body

_DONE = b"data: [DONE]\n\n"


class AzureOptions(EnvKeyOptions):
    """``[providers.NAME]`` with ``kind = "azure"``."""

    key_env: ClassVar[tuple[str, ...]] = ("AZURE_OPENAI_API_KEY",)

    base_url: str
    """The resource endpoint, e.g. ``https://my-resource.openai.azure.com``."""
    api_version: str = "2024-10-21"
    """Sent as the ``api-version`` query parameter."""


def classify(status: int, body: bytes) -> Failure:
    """Azure's error table: the generic one, plus its content filter's 400."""
    if status == 400:
        try:
            err = orjson.loads(body).get("error") or {}
        except (orjson.JSONDecodeError, AttributeError):
            err = {}
        inner = err.get("innererror") if isinstance(err, dict) else None
        if isinstance(err, dict) and (
            err.get("code") == "content_filter"
            or (isinstance(inner, dict) and inner.get("code") == "ResponsibleAIPolicyViolation")
        ):
            return Failure.CONTENT_FILTER
    return classify_status(status, body)


class AzureProvider(OpenAIProvider):
    """Adapter for Azure OpenAI deployments (OpenAI wire format, Azure addressing)."""

    kind: ClassVar[str] = "azure"
    options_model: ClassVar[type[ProviderOptions]] = AzureOptions

    def __init__(self, name: str, options: ProviderOptions) -> None:
        assert isinstance(options, AzureOptions)
        super().__init__(name, options)
        # The resource root: users paste it with or without the "/openai" suffix.
        self.base_url = self.base_url.removesuffix("/openai")
        self.api_version = options.api_version
        self._headers = {"Content-Type": "application/json", **options.headers}
        if options.api_key:
            self._headers["api-key"] = options.api_key

    def _url(self, target: Target) -> str:
        deployment = quote(target.upstream_model, safe="")
        return (
            f"{self.base_url}/openai/deployments/{deployment}/chat/completions"
            f"?api-version={quote(self.api_version, safe='')}"
        )

    async def _post(self, url: str, data: bytes, timeout: aiohttp.ClientTimeout) -> bytes:
        with wire_errors(self.label):
            async with self.session.post(
                url, data=data, headers=self._headers, timeout=timeout
            ) as resp:
                await raise_for_status(resp, self.label, classify)
                return await resp.read()

    async def chat(
        self, request: ChatRequest, target: Target, connect_timeout: float
    ) -> Completion:
        """POST the body to the deployment and return its answer untouched."""
        data = upstream_body(request, target.upstream_model)
        raw = await self._post(self._url(target), data, self._timeout(connect_timeout))
        return parse_completion(raw, self.label)

    async def stream(
        self, request: ChatRequest, target: Target, connect_timeout: float
    ) -> AsyncIterator[bytes]:
        """Forward the deployment's SSE events one by one until ``data: [DONE]``."""
        data = upstream_body(request, target.upstream_model)
        with wire_errors(self.label):
            async with self.session.post(
                self._url(target),
                data=data,
                headers=self._headers,
                timeout=self._timeout(connect_timeout),
            ) as resp:
                await raise_for_status(resp, self.label, classify)
                ctype = resp.headers.get("Content-Type", "")
                if not ctype.startswith("text/event-stream"):
                    raise ProviderError(
                        Failure.MALFORMED, f"upstream did not stream ({ctype or 'no type'})"
                    )
                async for event in sse_events(resp):
                    if event == _DONE:
                        yield event
                        return
                    if event.startswith(b'data: {"error"'):
                        raise stream_error(event, self.label)
                    yield event
        raise ProviderError(Failure.CONNECT, f"stream ended without [DONE] ({self.label})")

    async def probe(self, target: Target, timeout: float, mode: str) -> None:
        """``models``: the resource's model list (free; proves endpoint and key).

        ``chat``: a one-token completion on the deployment itself.
        """
        t = aiohttp.ClientTimeout(total=timeout)
        if mode == "chat":
            body: dict[str, Any] = {
                "messages": [{"role": "user", "content": "ping"}],
                "max_tokens": 1,
            }
            parse_completion(await self._post(self._url(target), orjson.dumps(body), t), self.label)
            return
        url = f"{self.base_url}/openai/models?api-version={quote(self.api_version, safe='')}"
        with wire_errors(self.label):
            async with self.session.get(url, headers=self._headers, timeout=t) as resp:
                await raise_for_status(resp, self.label, classify)
                await resp.read()
