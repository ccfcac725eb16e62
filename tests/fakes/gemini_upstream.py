"""A fake Gemini API (Generative Language v1beta): real HTTP on 127.0.0.1, strict requests.

``POST /v1beta/models/{model}:generateContent`` and ``:streamGenerateContent`` are
checked by :func:`tests.fakes.gemini_schema.validate`; a violation gets Google's error
shape (``{"error": {"code": 400, "message": ..., "status": "INVALID_ARGUMENT"}}``).
Valid requests get ``GenerateContentResponse`` bodies, or with ``?alt=sse`` one
``data:`` event per chunk, shaped like the documented examples. The key is read
from ``x-goog-api-key`` (or ``?key=``); a wrong key is a 400 ``API_KEY_INVALID``,
as on the real API.

Behaviours are scripted as with :class:`tests.fakes.upstream.FakeUpstream` (``ok``,
``status``, ``hang``, ``drop``, ``bad_json``, ``cut_stream``, ``stream_error``) plus
:class:`FunctionCall` and :class:`Blocked`.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tests.fakes.embeddings import gemini_embeddings
from tests.fakes.gemini_schema import Invalid, camel, validate
from tests.fakes.upstream import (
    BadJson,
    Behaviour,
    CutStream,
    Drop,
    FakeUpstream,
    Hang,
    Ok,
    Status,
    StreamError,
)

KEY = "AIza-fake-key"
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


@dataclass(frozen=True)
class FunctionCall:
    """Answer with a ``functionCall`` part (after ``text``), optionally thought-signed."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)
    text: str = ""
    signature: str | None = None


@dataclass(frozen=True)
class Blocked:
    """A filter: the prompt blocked (``prompt=True``) or the answer stopped with ``reason``."""

    reason: str = "SAFETY"
    prompt: bool = False


def error_body(
    code: int, message: str, details: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Google's error shape for HTTP status ``code``."""
    err: dict[str, Any] = {
        "code": code,
        "message": message,
        "status": STATUS_NAMES.get(code, "UNKNOWN"),
    }
    if details:
        err["details"] = details
    return {"error": err}


def bad_key_body() -> dict[str, Any]:
    """What the API answers to a wrong key: 400, not 401."""
    info = {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "API_KEY_INVALID",
        "domain": "googleapis.com",
        "metadata": {"service": "generativelanguage.googleapis.com"},
    }
    return error_body(400, "API key not valid. Please pass a valid API key.", [info])


def quota_body(retry_s: int = 37) -> dict[str, Any]:
    """A 429 whose only retry hint is the ``RetryInfo`` detail."""
    retry = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_s}s"}
    return error_body(429, "You exceeded your current quota.", [retry])


def _text(parts: list[dict[str, Any]]) -> str:
    out = []
    for p in parts:
        if "text" in p:
            out.append(p["text"])
        elif "functionResponse" in p:
            out.append(orjson.dumps(p["functionResponse"]["response"]).decode())
    return " ".join(out)


class FakeGemini(FakeUpstream):
    """The Gemini API's generate and model endpoints, with strict request validation."""

    def __init__(
        self,
        name: str = "gemini",
        *,
        content: str | None = None,
        models: tuple[str, ...] = ("gemini-fake",),
        require_key: str | None = KEY,
    ) -> None:
        super().__init__(name, content=content, models=models, require_key=require_key)
        self.usage_extra: dict[str, int] = {}
        """Merged into every answer's ``usageMetadata``."""
        self.rejected: list[str] = []
        """The message of every request answered 400 by validation."""

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1beta``."""
        return f"http://127.0.0.1:{self.port}/v1beta"

    def routes(self, app: web.Application) -> None:
        """The generate and model endpoints."""
        app.router.add_post("/v1beta/models/{call}", self._generate)
        app.router.add_get("/v1beta/models/{model}", self._model)
        app.router.add_route("*", "/{tail:.*}", self._unknown)

    def _error(self, code: int, message: str) -> web.Response:
        return self._json(error_body(code, message), code)

    async def _admit(self, request: web.Request) -> tuple[Any, web.Response | None]:
        rec = await self.capture(request)
        data, headers = rec.json, rec.headers
        key = headers.get("x-goog-api-key") or request.query.get("key")
        if not key:
            msg = (
                "Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity to call "
                "this API."
            )
            return data, self._error(403, msg)
        if self.require_key and key != self.require_key:
            return data, self._json(bad_key_body(), 400)
        return data, None

    def _not_found(self, model: str, method: str) -> web.Response:
        return self._error(
            404,
            f"models/{model} is not found for API version v1beta, or is not supported for "
            f"{method}. Call ListModels to see the list of available models and their "
            "supported methods.",
        )

    async def _unknown(self, request: web.Request) -> web.StreamResponse:
        await self._admit(request)
        return self._error(404, f"Method not found: {request.path}")

    async def _model(self, request: web.Request) -> web.StreamResponse:
        _, denied = await self._admit(request)
        if denied is not None:
            return denied
        model = request.match_info["model"]
        if model not in self.models:
            return self._not_found(model, "get")
        info = {
            "name": f"models/{model}",
            "version": "001",
            "displayName": model.title(),
            "inputTokenLimit": 1_048_576,
            "outputTokenLimit": 65_536,
            "supportedGenerationMethods": ["generateContent", "countTokens"],
        }
        return self._json(info)

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        self.calls += 1
        body, denied = await self._admit(request)
        if denied is not None:
            return denied
        model, _, method = request.match_info["call"].rpartition(":")
        if method == "batchEmbedContents" and model in self.models:
            return await gemini_embeddings(self, request, model)
        if method not in ("generateContent", "streamGenerateContent"):
            return self._error(404, f"Method not found: {method}")
        try:
            validate(body)
        except Invalid as err:
            self.rejected.append(str(err))
            details = None
            if err.field:
                violation = {"field": err.field, "description": str(err)}
                details = [
                    {
                        "@type": "type.googleapis.com/google.rpc.BadRequest",
                        "fieldViolations": [violation],
                    }
                ]
            return self._json(error_body(400, str(err), details), 400)
        if model not in self.models:
            return self._not_found(model, method)
        b: Behaviour | FunctionCall | Blocked = (
            self._queue.popleft() if self._queue else self.default
        )
        stream = method == "streamGenerateContent"
        sse = request.query.get("alt") == "sse"
        return await _Answer(self, body, model, request, stream, sse).respond(b)


class _Answer:
    """Builds the response (or the stream of responses) for one valid request."""

    def __init__(
        self,
        up: FakeGemini,
        body: dict[str, Any],
        model: str,
        request: web.Request,
        stream: bool,
        sse: bool,
    ) -> None:
        self.up, self.body, self.model, self.request = up, body, model, request
        self.stream, self.sse = stream, sse
        config = body.get("generationConfig") or body.get("generation_config") or {}
        self.config = {camel(k): v for k, v in config.items()}
        self.rid = f"fakeResponse{up.calls:04d}"
        contents = body["contents"]
        last = contents[-1]["parts"]
        answered = any("functionResponse" in p for p in last)
        self.text = f"tool said: {_text(last)}" if answered else up.content
        words = sum(len(_text(c["parts"]).split()) for c in contents)
        self.prompt_tokens = max(1, words)

    def usage(self, output: int | None) -> dict[str, Any]:
        meta: dict[str, Any] = {"promptTokenCount": self.prompt_tokens}
        if output is not None:
            meta["candidatesTokenCount"] = output
        meta["totalTokenCount"] = self.prompt_tokens + (output or 0)
        meta["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": self.prompt_tokens}]
        meta.update(self.up.usage_extra)
        return meta

    def finish(self, text: str) -> tuple[str, str]:
        """Apply ``stopSequences`` and ``maxOutputTokens`` to ``text``."""
        for stop in self.config.get("stopSequences") or ():
            if stop in text:
                return text[: text.index(stop)], "STOP"
        words = text.split(" ")
        limit = self.config.get("maxOutputTokens")
        if limit is not None and len(words) > limit:
            return " ".join(words[:limit]), "MAX_TOKENS"
        return text, "STOP"

    def response(
        self, candidates: list[dict[str, Any]] | None, output: int | None
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if candidates is not None:
            out["candidates"] = candidates
        out.update(usageMetadata=self.usage(output), modelVersion=self.model, responseId=self.rid)
        return out

    def candidates(self, parts: list[dict[str, Any]], reason: str) -> list[dict[str, Any]]:
        n = int(self.config.get("candidateCount", 1))
        return [
            {"content": {"parts": parts, "role": "model"}, "finishReason": reason, "index": i}
            for i in range(n)
        ]

    async def respond(self, b: Behaviour | FunctionCall | Blocked) -> web.StreamResponse:
        up = self.up
        match b:
            case Ok(content=text, delay=delay):
                if await up._sleep(delay):
                    return up._close(self.request)
                text, reason = self.finish(text if text is not None else self.text)
                return await self.send([{"text": text}], reason)
            case FunctionCall(name=name, args=args, text=text, signature=sig):
                part: dict[str, Any] = {"functionCall": {"name": name, "args": args}}
                if sig is not None:
                    part["thoughtSignature"] = base64.b64encode(sig.encode()).decode()
                return await self.send(([{"text": text}] if text else []) + [part], "STOP")
            case Blocked(reason=reason, prompt=True):
                feedback = {"promptFeedback": {"blockReason": reason}}
                return await self.send_whole({**self.response(None, None), **feedback})
            case Blocked(reason=reason):
                cand = [{"finishReason": reason, "index": 0}]
                return await self.send_whole(self.response(cand, 0))
            case Status(code=code, body=err, headers=headers):
                data = err if err is not None else error_body(code, f"fake error {code}")
                if isinstance(data, str):
                    return web.Response(status=code, text=data, headers=headers)
                return up._json(data, code, headers)
            case Hang():
                await up._sleep(None)
                return up._close(self.request)
            case Drop():
                return up._close(self.request)
            case BadJson():
                return await self.raw(b'{"candidates": [{"conte')
            case CutStream(after=k) if self.stream:
                return await self.send([{"text": self.text}], "STOP", cut=k)
            case StreamError(after=k, message=msg) if self.stream:
                return await self.send([{"text": self.text}], "STOP", error=(k, msg))
            case CutStream() | StreamError():
                return up._json(error_body(500, "stream-only behaviour"), 500)
        raise AssertionError(f"behaviour {b!r} is not supported by FakeGemini")

    async def send(
        self,
        parts: list[dict[str, Any]],
        reason: str,
        *,
        cut: int | None = None,
        error: tuple[int, str] | None = None,
    ) -> web.StreamResponse:
        """A whole answer, or its chunks: one per word, the last with the finish reason."""
        output = max(1, len(_text(parts).split()))
        if not self.stream:
            return self.up._json(self.response(self.candidates(parts, reason), output))
        pieces: list[dict[str, Any]] = []
        for p in parts:
            if "text" in p:
                pieces += [{"text": w} for w in re.findall(r"\S+\s*|\s+", p["text"]) or [""]]
            else:
                pieces.append(p)
        chunks = []
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            cand: dict[str, Any] = {"content": {"parts": [piece], "role": "model"}, "index": 0}
            if last:
                cand["finishReason"] = reason
            chunks.append(self.response([cand], output if last else None))
        limit = cut if cut is not None else error[0] if error is not None else len(chunks)
        events = [orjson.dumps(c) for c in chunks[:limit]]
        if error is not None:
            events.append(orjson.dumps(error_body(503, error[1])))
        return await self.events(events, cut=cut is not None)

    async def send_whole(self, data: dict[str, Any]) -> web.StreamResponse:
        """One response, as a body or as a single-chunk stream."""
        if not self.stream:
            return self.up._json(data)
        return await self.events([orjson.dumps(data)])

    async def raw(self, data: bytes) -> web.StreamResponse:
        if not self.stream:
            return self.up._json(data)
        return await self.events([data])

    async def events(self, chunks: list[bytes], *, cut: bool = False) -> web.StreamResponse:
        """``alt=sse``: ``data:`` events (CRLF framing); else a JSON array, as Google does."""
        ctype = "text/event-stream" if self.sse else "application/json"
        resp = web.StreamResponse(headers={"content-type": ctype})
        resp.headers["x-fake-upstream"] = self.up.name
        await resp.prepare(self.request)
        for i, chunk in enumerate(chunks):
            if self.sse:
                await resp.write(b"data: " + chunk + b"\r\n\r\n")
            else:
                await resp.write((b"[" if i == 0 else b",\r\n") + chunk)
        if cut:
            return self.up._close(self.request, resp)
        if not self.sse:
            await resp.write(b"]" if chunks else b"[]")
        await resp.write_eof()
        return resp
