"""The provider interface: what every upstream adapter implements.

A provider translates one unified request (OpenAI Chat Completions JSON) into its
upstream's wire format and the answer back. It never retries and never falls back:
it reports every failure as a :class:`ProviderError` carrying a :class:`Failure`
class, and the dispatcher decides what happens next.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict


class Failure(enum.Enum):
    """Why an upstream call failed; the dispatcher's failure table is keyed on this."""

    CONNECT = "connect"
    """Connection refused or reset, DNS failure: the request never reached a server."""
    TIMEOUT = "timeout"
    """Connect, first-token or idle timeout."""
    SERVER = "server"
    """408, 409, 5xx, 529: transient trouble on the upstream's side."""
    RATE_LIMIT = "rate_limit"
    """429: the upstream asks us to slow down, maybe with a Retry-After."""
    AUTH = "auth"
    """401, 403, 404: our key or our model id is wrong; the model is misconfigured."""
    CLIENT = "client"
    """400, 413, 422 blaming the request: returned to the client as given."""
    CONTEXT_LENGTH = "context_length"
    """The prompt does not fit this model; a bigger model may take it."""
    MALFORMED = "malformed"
    """The upstream answered something that is not a valid completion."""
    CONTENT_FILTER = "content_filter"
    """The upstream refused the content; another vendor may answer."""
    STREAM_CUT = "stream_cut"
    """A stream broke after its first chunk reached the client."""


class ProviderError(Exception):
    """An upstream call failed.

    ``message`` must never contain a secret: it ends up in logs and in the attempt
    trail returned to clients. ``body`` is the upstream's error body, kept so that a
    client error can be returned to the caller exactly as the upstream gave it.
    """

    def __init__(
        self,
        failure: Failure,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        body: bytes | None = None,
    ) -> None:
        super().__init__(message)
        self.failure = failure
        self.message = message
        self.status = status
        self.retry_after = retry_after
        self.body = body


@dataclass(slots=True)
class ChatRequest:
    """One client request, parsed once and shared by every attempt.

    ``body`` is the client's JSON object as received: providers must not mutate it
    (each attempt copies what it changes), and OpenAI-compatible providers pass every
    field through untouched except ``model``.
    """

    body: dict[str, Any]
    stream: bool = False

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> ChatRequest:
        """Build a request from a decoded JSON body (already checked to be an object)."""
        return cls(body=body, stream=bool(body.get("stream")))

    @property
    def include_usage(self) -> bool:
        """Whether the client asked for a usage chunk at the end of a stream."""
        opts = self.body.get("stream_options")
        return isinstance(opts, dict) and bool(opts.get("include_usage"))


@dataclass(slots=True)
class Completion:
    """A finished non-streaming answer.

    ``body`` is the OpenAI-shaped JSON to send to the client. Passthrough providers
    hand back the upstream's bytes untouched.
    """

    body: bytes
    usage: dict[str, Any] | None = None


@dataclass(slots=True)
class Target:
    """What a provider needs to know about the model it is asked to call."""

    name: str
    """The configured model name (``[models.NAME]``)."""
    upstream_model: str
    """The id sent upstream."""
    options: dict[str, Any] = field(default_factory=dict)


class ProviderOptions(BaseModel):
    """Options every provider kind accepts in ``[providers.NAME]``."""

    model_config = ConfigDict(extra="forbid")

    kind: str
    base_url: str | None = None
    api_key: str | None = None
    headers: dict[str, str] = {}


class Provider(Protocol):
    """An upstream adapter. See the module docstring for the rules."""

    kind: ClassVar[str]
    options_model: ClassVar[type[ProviderOptions]]
    name: str

    async def start(self) -> None:
        """Open pooled resources (HTTP sessions). Called once inside the event loop."""

    async def aclose(self) -> None:
        """Release pooled resources."""

    async def chat(
        self, request: ChatRequest, target: Target, connect_timeout: float
    ) -> Completion:
        """Run a non-streaming completion; raise :class:`ProviderError` on failure."""
        ...

    def stream(
        self, request: ChatRequest, target: Target, connect_timeout: float
    ) -> AsyncIterator[bytes]:
        """Yield SSE events (each ``data: ...\\n\\n``), ending with ``data: [DONE]\\n\\n``.

        Raise :class:`ProviderError` for any failure, including a stream that ends
        without its terminator. Timeouts between events are enforced by the caller.
        """
        ...

    async def probe(self, target: Target, timeout: float, mode: str) -> None:
        """Check that ``target`` is reachable; raise :class:`ProviderError` if not.

        ``mode`` is ``"models"`` (the vendor's cheapest free call) or ``"chat"`` (a
        one-token completion).
        """
