"""The provider interface: what every upstream adapter implements.

A provider translates one unified request (OpenAI Chat Completions JSON) into its
upstream's wire format and the answer back. It never retries and never falls back:
it reports every failure as a :class:`ProviderError` carrying a :class:`Failure`
class, and the dispatcher decides what happens next.
"""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

import msgspec
import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator

from providers.failures import Failure, ProviderError

__all__ = [
    "ChatRequest",
    "Completion",
    "Failure",
    "InvalidBody",
    "Native",
    "Provider",
    "ProviderError",
    "ProviderOptions",
    "Target",
    "decode_object",
    "speaks",
]


class InvalidBody(ValueError):
    """The client's body is not the JSON object a chat request must be (a 400).

    ``param`` names the member at fault, when one is.
    """

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


_MEMBERS = msgspec.json.Decoder(dict[str, msgspec.Raw])
_WHITESPACE = b" \t\r\n"
_KEYS = {k: orjson.dumps(k) + b":" for k in ("messages", "stream", "stream_options", "temperature")}
"""Encoded ``"name":`` of the members most bodies have."""
_ROUTER_FIELDS = frozenset(("model", "models"))
"""Members the router consumes (in any letter case); never forwarded as the client sent them."""


def _forwarded(key: str) -> bool:
    # Some decoders match member names ignoring case (Go's encoding/json, used by
    # Ollama): a client's "MODEL" must not reach them next to the routed "model".
    return key.casefold() not in _ROUTER_FIELDS


def _usage_asked(opts: Any) -> bool:
    return isinstance(opts, dict) and bool(opts.get("include_usage"))


class ChatRequest:
    """One client request, shared by every attempt; providers must not mutate it.

    Built from a decoded object (:meth:`from_body`: MCP, prompts) or from the JSON
    bytes of an HTTP request (:meth:`from_json`). From bytes, the object is split into
    its top-level members and their values stay undecoded: the router decodes only
    the few small members it routes on (:meth:`get`), and OpenAI-compatible upstreams
    get every other member's bytes as the client sent them (:meth:`json_with_model`).
    A 100k-token prompt is then scanned once and never turned into Python objects or
    encoded again. :attr:`body` decodes the whole object on first use, for adapters
    that translate it, capability checks and body logging.
    """

    __slots__ = (
        "_body",
        "_members",
        "_options",
        "_source",
        "hops",
        "include_usage",
        "native",
        "stream",
    )

    def __init__(
        self,
        body: dict[str, Any] | None,
        *,
        members: dict[str, msgspec.Raw] | None = None,
        source: bytes = b"",
    ) -> None:
        if body is None and members is None:
            raise TypeError("ChatRequest needs a decoded body or the members of one")
        self._body = body
        self._members = members
        self._source = source
        self.hops = 0
        """Routers this request passed through before this one (``x-modelrouter-hops``)."""
        self.native: Native | None = None
        """The client's own body, when it came by another API's door (see :class:`Native`)."""
        # The router acts on these two, so their types are checked here: a "stream":
        # "yes" must not be streamed by us and forwarded as a string upstream.
        stream = self.get("stream")
        if stream is not None and not isinstance(stream, bool):
            raise InvalidBody("'stream' must be a boolean.", "stream")
        self.stream = bool(stream)
        options = self.get("stream_options")
        if options is not None and not isinstance(options, dict):
            raise InvalidBody("'stream_options' must be an object.", "stream_options")
        self._options: dict[str, Any] | None = options
        self.include_usage = _usage_asked(options)
        """Whether the client asked for a usage chunk at the end of a stream."""

    def __repr__(self) -> str:
        keys = list(self._members if self._members is not None else self.body)
        return f"ChatRequest(stream={self.stream}, members={keys})"

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> ChatRequest:
        """Build a request from a decoded JSON body (already checked to be an object)."""
        return cls(body)

    @classmethod
    def from_json(cls, raw: bytes) -> ChatRequest:
        """Split a JSON object into its members; raise :class:`InvalidBody` if it is not one.

        The whole text is checked to be well-formed JSON here; only the strings inside
        member values are not yet checked to be valid UTF-8 (:attr:`body` does that).
        Of a member given twice, the last one counts, as with every JSON decoder here.
        ``stream`` and ``stream_options`` are decoded here, so a bad one fails here.
        """
        _check_not_empty(raw)
        try:
            members = _MEMBERS.decode(raw)
        except msgspec.ValidationError:
            raise InvalidBody("Request body must be a JSON object.") from None
        except msgspec.DecodeError as err:
            raise InvalidBody(f"Request body is not valid JSON: {err}") from None
        except UnicodeDecodeError:
            # A member name that is not UTF-8: orjson's message says where.
            return cls(decode_object(raw))
        except RecursionError:
            raise InvalidBody("Request body is nested too deeply.") from None
        return cls(None, members=members, source=raw)

    @property
    def body(self) -> dict[str, Any]:
        """The whole JSON object, decoded on first use (:class:`InvalidBody` if it cannot be)."""
        if self._body is None:
            self._body = decode_object(self._source)
        return self._body

    def get(self, key: str) -> Any:
        """One top-level member, decoded (``None`` when absent)."""
        if self._members is None or self._body is not None:
            return self.body.get(key)
        value = self._members.get(key)
        if value is None:
            return None
        try:
            return orjson.loads(memoryview(value))
        except orjson.JSONDecodeError as err:
            raise InvalidBody(f"Request body is not valid JSON: {key!r}: {err}") from None

    @property
    def size(self) -> int | None:
        """Length in bytes of the client's JSON (``None`` when built from a decoded object)."""
        return len(self._source) if self._members is not None else None

    def mentions(self, needle: bytes) -> bool:
        """Whether ``needle`` may occur in the body: a byte search of the client's JSON.

        Built from a decoded object there are no bytes to search: always ``True``, so
        callers go on to look at :attr:`body`.
        """
        return self._members is None or needle in self._source

    def is_nonempty_array(self, key: str) -> bool:
        """Whether member ``key`` is an array with at least one element (without decoding it)."""
        if self._members is None:
            value = self.body.get(key)
            return isinstance(value, list) and bool(value)
        raw = self._members.get(key)
        if raw is None:
            return False
        view = memoryview(raw)
        if view[0] != 0x5B:  # "["
            return False
        i = 1
        while view[i] in _WHITESPACE:
            i += 1
        return view[i] != 0x5D  # "]"

    def json_with_model(self, model: str, *, ask_usage: bool = False) -> list[bytes | memoryview]:
        """The client's object for an upstream: ``model`` set, the router's fields removed.

        ``model`` goes last, where decoders that let a later member win will find it.
        From bytes, the result is pieces that point into the client's body (a writer
        sends them without joining); otherwise one encoded ``bytes``.

        ``ask_usage``: a stream whose client did not ask for usage asks the upstream
        for it anyway, ``"include_usage": true`` merged into the client's
        ``stream_options`` (the router needs the count; the relay hides the extra
        chunk from the client). Requests that do not stream are sent as they are:
        OpenAI refuses ``stream_options`` without ``stream``.
        """
        options = self._usage_options() if ask_usage else None
        members = self._members
        if members is None:
            body = {k: v for k, v in self.body.items() if _forwarded(k)}
            if options is not None:
                body["stream_options"] = orjson.Fragment(options)
            body["model"] = model
            try:
                return [orjson.dumps(body)]
            except orjson.JSONEncodeError as err:
                # Decoded fine but cannot be encoded (nested past orjson's 254 levels):
                # what the client sent, so the client's 400, never the model's failure.
                raise InvalidBody(f"Request body cannot be encoded: {err}") from None
        parts: list[bytes | memoryview] = [b"{"]
        for key, value in members.items():
            if _forwarded(key):
                parts.append(_KEYS.get(key) or orjson.dumps(key) + b":")
                if options is not None and key == "stream_options":
                    parts.append(options)
                    options = None
                else:
                    parts.append(memoryview(value))
                parts.append(b",")
        if options is not None:
            parts.append(_KEYS["stream_options"] + options + b",")
        parts.append(b'"model":' + orjson.dumps(model) + b"}")
        return parts

    def _usage_options(self) -> bytes | None:
        """The ``stream_options`` that ask for usage, or ``None`` if no change is needed."""
        if not self.stream or self.include_usage:
            return None
        return orjson.dumps({**(self._options or {}), "include_usage": True})


def _check_not_empty(raw: bytes) -> None:
    if not raw or raw.isspace():
        raise InvalidBody("Request body is empty; expected a JSON object.")


def decode_object(raw: bytes) -> dict[str, Any]:
    """Decode a JSON object body, or raise :class:`InvalidBody` saying what is wrong."""
    _check_not_empty(raw)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise InvalidBody(f"Request body is not valid JSON: {err}") from None
    if not isinstance(body, dict):
        raise InvalidBody("Request body must be a JSON object.")
    return body


@dataclass(frozen=True, slots=True)
class Native:
    """A request that came in by another API's door, kept as the client sent it.

    The door translates the body to Chat Completions once, and every provider gets
    that translation, except one that speaks ``protocol`` itself (its class lists it
    in ``speaks``): that one takes ``request``, the client's body with only ``model``
    changed, and answers in that API's own shape, so nothing is translated twice.
    """

    protocol: str
    """The door's API: ``"anthropic"`` (Messages)."""
    request: ChatRequest
    """The client's body, split into members like a chat body (``json_with_model``)."""
    headers: tuple[tuple[str, str], ...] = ()
    """Client headers that belong to the body (e.g. ``anthropic-beta``), for passthrough."""
    unfit: str | None = None
    """Why the chat translation cannot carry this request (e.g. a vendor's server tool):
    models whose provider must translate are then skipped with this reason."""


def speaks(provider: object, native: Native | None) -> bool:
    """Whether ``provider`` takes ``native``'s body as it is, rather than the chat translation."""
    return native is not None and native.protocol in getattr(provider, "speaks", ())


@dataclass(slots=True)
class Completion:
    """A finished non-streaming answer.

    ``body`` is the OpenAI-shaped JSON to send to the client. Passthrough providers
    hand back the upstream's bytes untouched.
    """

    body: bytes
    usage: dict[str, Any] | None = None
    usage_estimated: bool = False
    """The adapter counted ``usage`` itself because the upstream reported none."""


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
    transport: Literal["auto", "lean", "httpx"] = "auto"
    """The HTTP client: ``lean`` (fast, HTTP/1.1), ``httpx`` (proxies, HTTP/2), or ``auto``:
    httpx when the environment routes this upstream through a proxy or ``http2`` is set."""
    http2: bool = False
    """Speak HTTP/2 to the upstream (httpx transport; needs ``modelrouter[http2]``)."""
    ca_bundle: str | None = None
    """A PEM file of CA certificates to trust instead of the system's."""
    client_cert: str | None = None
    """A PEM client certificate (mutual TLS); its key in it or in ``client_key``."""
    client_key: str | None = None
    max_response_mb: float = Field(32, gt=0)
    """Largest non-streamed answer accepted; a larger one fails the attempt (malformed)."""
    max_event_mb: float = Field(4, gt=0)
    """Largest single event of a streamed answer; a larger one fails the stream."""

    @field_validator("http2")
    @classmethod
    def _h2_installed(cls, value: bool) -> bool:
        if value and importlib.util.find_spec("h2") is None:
            raise ValueError("needs the h2 package: pip install 'modelrouter[http2]'")
        return value


class Provider(Protocol):
    """An upstream adapter. See the module docstring for the rules.

    Usage: a completion's :attr:`Completion.usage` is the upstream's count, ``None`` if
    it gave none. A stream should end with OpenAI's usage-only chunk
    (``"choices": []`` and a ``usage`` object) whether or not the client asked for one
    (the dispatcher hides it from a client that did not); a provider that always does
    says so with a true ``stream_usage`` attribute. Without it, the dispatcher decodes
    every event to estimate the answer's size, in case no usage comes.

    Two optional parts are looked up on the class, not required by this protocol:
    ``speaks``, the inbound APIs whose bodies it takes natively (see :class:`Native`),
    and ``embed`` (see :class:`providers.embeddings.Embedder`), for models with
    ``mode = "embedding"``.
    """

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
