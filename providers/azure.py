"""Azure OpenAI: OpenAI passthrough addressed to a deployment.

Each model's upstream id (``[models.NAME] model``) is the *deployment* name. Calls
go to ``{base_url}/openai/deployments/{deployment}/chat/completions?api-version=…``
with the key in the ``api-key`` header; bodies and answers pass through untouched,
as for OpenAI. Azure answers a prompt its content filter refused with a 400 whose
code is ``content_filter``: that is a content-filter failure (another vendor may
answer), not the client's fault.
"""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import quote, urlsplit

import orjson

from providers.base import Failure, ProviderOptions, Target
from providers.failures import classify_status
from providers.openai import OpenAIProvider, PassthroughOptions
from providers.upstream import EnvKeyOptions


class AzureOptions(EnvKeyOptions, PassthroughOptions):
    """``[providers.NAME]`` with ``kind = "azure"``."""

    key_env: ClassVar[tuple[str, ...]] = ("AZURE_OPENAI_API_KEY",)

    base_url: str
    """The resource endpoint, e.g. ``https://my-resource.openai.azure.com``."""
    api_version: str = "2024-10-21"
    """Sent as the ``api-version`` query parameter."""


def classify(status: int, body: bytes = b"") -> Failure:
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
    classify = staticmethod(classify)

    def __init__(self, name: str, options: ProviderOptions) -> None:
        assert isinstance(options, AzureOptions)
        super().__init__(name, options)
        # The resource root: users paste it with or without the "/openai" suffix.
        self.base_url = self.base_url.removesuffix("/openai")
        self.prefix = urlsplit(self.base_url).path
        self.api_version = options.api_version
        headers = {"Content-Type": "application/json", **options.headers}
        if options.api_key:
            headers["api-key"] = options.api_key
        self._set_headers(headers)

    def _path(self, target: Target) -> str:
        deployment = quote(target.upstream_model, safe="")
        return (
            f"{self.prefix}/openai/deployments/{deployment}/chat/completions"
            f"?api-version={quote(self.api_version, safe='')}"
        )

    def _embed_path(self, target: Target) -> str:
        deployment = quote(target.upstream_model, safe="")
        return (
            f"{self.prefix}/openai/deployments/{deployment}/embeddings"
            f"?api-version={quote(self.api_version, safe='')}"
        )

    def _models_path(self) -> str:
        # The resource's model list: free, and proves endpoint and key (not the
        # deployment; probe = "chat" calls the deployment itself).
        return f"{self.prefix}/openai/models?api-version={quote(self.api_version, safe='')}"
