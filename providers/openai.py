"""OpenAI and every OpenAI-compatible server (vLLM, llama.cpp, Ollama /v1, Mistral, Groq...).

Passthrough: the client's JSON is forwarded with only ``model`` rewritten (and the
router's own ``models`` field removed), so fields this router has never heard of —
``tools``, ``response_format``, ``logprobs``, ``seed`` — reach the upstream as sent.
Answers come back as the upstream's bytes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, ClassVar

import aiohttp
import orjson

from modelrouter.retry import classify_status
from providers.base import ChatRequest, Completion, Failure, ProviderError, ProviderOptions, Target
from providers.http import (
    PooledSession,
    auth_headers,
    endpoint_label,
    raise_for_status,
    sse_events,
    wire_errors,
)

_DONE = b"data: [DONE]\n\n"


class OpenAIOptions(ProviderOptions):
    """``[providers.NAME]`` with ``kind = "openai"``."""

    base_url: str | None = "https://api.openai.com/v1"


def upstream_body(request: ChatRequest, upstream_model: str) -> bytes:
    """The client's body with ``model`` set to the upstream id and router fields removed."""
    body = request.body.copy()
    body["model"] = upstream_model
    body.pop("models", None)
    return orjson.dumps(body)


def parse_completion(raw: bytes, label: str) -> Completion:
    """Check that ``raw`` is a chat completion; keep the bytes, pull out usage."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ProviderError(Failure.MALFORMED, f"upstream sent invalid JSON ({label})") from None
    if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
        raise ProviderError(Failure.MALFORMED, f"upstream answer has no choices ({label})")
    usage = data.get("usage")
    return Completion(body=raw, usage=usage if isinstance(usage, dict) else None)


class OpenAIProvider(PooledSession):
    """Adapter for the OpenAI Chat Completions wire format."""

    kind: ClassVar[str] = "openai"
    options_model: ClassVar[type[ProviderOptions]] = OpenAIOptions

    def __init__(self, name: str, options: ProviderOptions) -> None:
        self.name = name
        self.base_url = (options.base_url or "").rstrip("/")
        self.label = endpoint_label(self.base_url)
        self._headers = auth_headers(options.api_key, options.headers)
        self._chat_url = self.base_url + "/chat/completions"

    classify = staticmethod(classify_status)
    """Failure class of an error answer (compatible servers refine the generic table)."""

    def _url(self, target: Target) -> str:
        """Where chat completions for ``target`` go."""
        return self._chat_url

    async def chat(
        self, request: ChatRequest, target: Target, connect_timeout: float
    ) -> Completion:
        """POST the body upstream and return its answer untouched."""
        data = upstream_body(request, target.upstream_model)
        with wire_errors(self.label):
            async with self.session.post(
                self._url(target),
                data=data,
                headers=self._headers,
                timeout=self._timeout(connect_timeout),
            ) as resp:
                await raise_for_status(resp, self.label, self.classify)
                raw = await resp.read()
        return parse_completion(raw, self.label)

    async def stream(
        self, request: ChatRequest, target: Target, connect_timeout: float
    ) -> AsyncIterator[bytes]:
        """Forward the upstream's SSE events one by one until ``data: [DONE]``."""
        data = upstream_body(request, target.upstream_model)
        with wire_errors(self.label):
            async with self.session.post(
                self._url(target),
                data=data,
                headers=self._headers,
                timeout=self._timeout(connect_timeout),
            ) as resp:
                await raise_for_status(resp, self.label, self.classify)
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

    def _models_url(self) -> str:
        """The free list call used by ``probe = "models"``."""
        return self.base_url + "/models"

    async def probe(self, target: Target, timeout: float, mode: str) -> None:
        """``models``: list models (free). ``chat``: a one-token completion."""
        t = aiohttp.ClientTimeout(total=timeout)
        with wire_errors(self.label):
            if mode == "chat":
                body = orjson.dumps(
                    {
                        "model": target.upstream_model,
                        "messages": [{"role": "user", "content": "ping"}],
                        "max_tokens": 1,
                    }
                )
                async with self.session.post(
                    self._url(target), data=body, headers=self._headers, timeout=t
                ) as resp:
                    await raise_for_status(resp, self.label, self.classify)
                    parse_completion(await resp.read(), self.label)
                return
            async with self.session.get(
                self._models_url(), headers=self._headers, timeout=t
            ) as resp:
                await raise_for_status(resp, self.label, self.classify)
                await resp.read()


def stream_error(event: bytes, label: str) -> ProviderError:
    """An error event inside an upstream stream, as a provider error."""
    detail: Any = ""
    try:
        detail = orjson.loads(event[6:]).get("error", {}).get("message", "")
    except (orjson.JSONDecodeError, AttributeError):
        pass
    return ProviderError(Failure.SERVER, f"upstream stream error ({label}): {detail}"[:500])
