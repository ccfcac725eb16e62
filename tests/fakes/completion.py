"""OpenAI-shaped answers of the fake upstream: completion bodies and SSE streams."""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any, Literal

import orjson
from aiohttp import web

if TYPE_CHECKING:
    from tests.fakes.upstream import FakeUpstream


def split_text(text: str, n: int) -> list[str]:
    """``n`` non-empty consecutive pieces of ``text`` (padded with "." if too short)."""
    text = text.ljust(n, ".")
    return [text[len(text) * i // n : len(text) * (i + 1) // n] for i in range(n)]


def sse(data: Any) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"


class Completion:
    """Builds OpenAI-shaped completion bodies and SSE streams for one request."""

    def __init__(self, up: FakeUpstream, body: dict[str, Any]) -> None:
        self.up, self.text = up, up.content
        self.error: dict[str, Any] | None = None
        self.model = body.get("model")
        self.streaming = bool(body.get("stream"))
        opts = body.get("stream_options")
        asked = isinstance(opts, dict) and bool(opts.get("include_usage"))
        self.include_usage = asked and up.usage == "asked"
        msgs = body.get("messages")
        self.prompt_tokens = (
            sum(len(str(m.get("content") or "").split()) for m in msgs if isinstance(m, dict))
            if isinstance(msgs, list)
            else 0
        )
        self.id = f"chatcmpl-{up.name}-{up.calls}"
        self.created = int(time.time())

    def _usage(self) -> dict[str, Any]:
        p, d = self.prompt_tokens, len(self.text.split())
        usage: dict[str, Any] = {"prompt_tokens": p, "completion_tokens": d, "total_tokens": p + d}
        if self.up.cached_tokens is not None:
            usage["prompt_tokens_details"] = {"cached_tokens": self.up.cached_tokens}
        return usage

    def _base(self, obj: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": obj,
            "created": self.created,
            "model": self.model,
            "system_fingerprint": "fp_fake",
        }

    def full(self) -> dict[str, Any]:
        """A non-stream ``chat.completion`` body."""
        message = {"role": "assistant", "content": self.text, "refusal": None}
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
        out = {**self._base("chat.completion"), "choices": [choice]}
        return out if self.up.usage == "none" else {**out, "usage": self._usage()}

    def chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        """One ``chat.completion.chunk`` (with ``usage: null`` when usage was requested)."""
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        extra: dict[str, Any] = {"usage": None} if self.include_usage else {}
        return {**self._base("chat.completion.chunk"), "choices": [choice], **extra}

    async def stream(
        self,
        request: web.Request,
        *,
        pieces: list[str] | None = None,
        raw: bytes | None = None,
        interval: float = 0.0,
        first_delay: float = 0.0,
        end: Literal["done", "cut", "error"] = "done",
        tail: bytes = b"",
    ) -> web.StreamResponse:
        """Write the SSE answer, one write per event; ``raw`` replaces the content events."""
        up = self.up
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        resp.headers.update({"cache-control": "no-cache", "x-fake-upstream": up.name})
        await resp.prepare(request)
        up.sent = []
        write = resp.write

        async def record(data: bytes) -> None:
            up.sent.append(data)
            await write(data)

        resp.write = record  # type: ignore[method-assign]
        if await up._sleep(first_delay):
            return up._close(request, resp)
        if raw is not None:
            await resp.write(raw)
        else:
            await resp.write(sse(self.chunk({"role": "assistant", "content": ""})))
            for piece in re.findall(r"\s*\S+\s*|\s+", self.text) if pieces is None else pieces:
                if interval and await up._sleep(interval):
                    return up._close(request, resp)
                await resp.write(sse(self.chunk({"content": piece})))
            if end == "cut":
                return up._close(request, resp)
            if end == "error":
                await resp.write(sse(self.error))
                await resp.write_eof()
                return resp
            if tail:
                await resp.write(tail)
            finish = self.chunk({}, "stop")
            if up.usage == "on_finish":
                finish["usage"] = self._usage()
            await resp.write(sse(finish))
            if self.include_usage:
                usage = {
                    **self._base("chat.completion.chunk"),
                    "choices": [],
                    "usage": self._usage(),
                }
                await resp.write(sse(usage))
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp
