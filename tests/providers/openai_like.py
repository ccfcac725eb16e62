"""Fakes for the OpenAI-shaped vendors: OpenAI, Azure OpenAI deployments and Ollama.

All reuse :class:`tests.fakes.upstream.FakeUpstream` for chat (so every scripted
behaviour works) and add what is vendor-specific: Azure's deployment paths,
``api-version`` and ``api-key``; Ollama's ``/api/tags``, ``/api/embed`` and its "not
pulled" 404. OpenAI and Azure embed too (:mod:`tests.fakes.embeddings`).
Each can also answer with tool calls (:class:`ToolCalls`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from typing import Any

import orjson
from aiohttp import web

from tests.fakes.embeddings import ollama_embed, openai_embeddings
from tests.fakes.upstream import FakeUpstream, error_body


@dataclass(frozen=True)
class ToolCalls:
    """Answer with one tool call per ``(name, arguments)`` pair."""

    calls: tuple[tuple[str, dict[str, Any]], ...]


class _WithTools(FakeUpstream):
    """FakeUpstream whose script may also hold :class:`ToolCalls`."""

    async def _chat_or_tools(self, request: web.Request) -> web.StreamResponse:
        if not (self._queue and isinstance(self._queue[0], ToolCalls)):
            return await self._chat(request)
        self.calls += 1
        script: Any = self._queue.popleft()
        await self._record(request)
        body = self.requests[-1].json
        calls = [
            {
                "id": f"call_{self.name}_{self.calls}_{i}",
                "type": "function",
                "function": {"name": name, "arguments": orjson.dumps(args).decode()},
            }
            for i, (name, args) in enumerate(script.calls)
        ]
        base = {"id": f"chatcmpl-{self.calls}", "created": int(time.time()), "model": body["model"]}
        if not body.get("stream"):
            message = {"role": "assistant", "content": None, "tool_calls": calls}
            choice = {"index": 0, "message": message, "finish_reason": "tool_calls"}
            return self._json({**base, "object": "chat.completion", "choices": [choice]})
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        deltas: list[tuple[dict[str, Any], str | None]] = [({"role": "assistant"}, None)]
        deltas += [({"tool_calls": [{"index": i, **c}]}, None) for i, c in enumerate(calls)]
        deltas.append(({}, "tool_calls"))
        for delta, finish in deltas:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            chunk = {**base, "object": "chat.completion.chunk", "choices": [choice]}
            await resp.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp


class FakeOpenAI(_WithTools):
    """The OpenAI API itself (chat completions that can call tools, and the model list)."""

    def routes(self, app: web.Application) -> None:
        """``/v1/chat/completions`` (tool calls scriptable) and ``/v1/models``."""
        app.router.add_post("/v1/chat/completions", self._chat_or_tools)
        app.router.add_post("/v1/embeddings", partial(openai_embeddings, self))
        app.router.add_get("/v1/models", self._models)
        app.router.add_route("*", "/{tail:.*}", self._not_found)


def _azure_error(code: str, message: str, status: int) -> web.Response:
    body = orjson.dumps({"error": {"code": code, "message": message}})
    return web.Response(status=status, body=body, content_type="application/json")


class FakeAzure(_WithTools):
    """An Azure OpenAI resource with some deployments."""

    def __init__(
        self,
        name: str = "azure",
        *,
        key: str = "azure-key",
        deployments: tuple[str, ...] = ("gpt-dep",),
    ) -> None:
        super().__init__(name, models=deployments)
        self.key = key

    @property
    def base_url(self) -> str:
        """The resource endpoint (no path), as Azure shows it."""
        return f"http://127.0.0.1:{self.port}"

    def routes(self, app: web.Application) -> None:
        """Deployments' chat completions and the resource's model list."""
        app.router.add_post("/openai/deployments/{deployment}/chat/completions", self._deployment)
        app.router.add_post("/openai/deployments/{deployment}/embeddings", self._embeddings)
        app.router.add_get("/openai/models", self._model_list)
        app.router.add_route("*", "/{tail:.*}", self._not_found)

    def _denied(self, request: web.Request) -> web.Response | None:
        if "api-version" not in request.query:
            return _azure_error("404", "Resource not found", 404)
        if request.headers.get("api-key") != self.key:
            msg = "Access denied due to invalid subscription key or wrong API endpoint."
            return _azure_error("401", msg, 401)
        return None

    async def _deployment(self, request: web.Request) -> web.StreamResponse:
        if (denied := self._denied(request)) is not None:
            await self._record(request)
            return denied
        if request.match_info["deployment"] not in self.models:
            await self._record(request)
            msg = "The API deployment for this resource does not exist."
            return _azure_error("DeploymentNotFound", msg, 404)
        return await self._chat_or_tools(request)

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        if (denied := self._denied(request)) is not None:
            await self._record(request)
            return denied
        return await openai_embeddings(self, request)

    async def _model_list(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        if (denied := self._denied(request)) is not None:
            return denied
        return self._json({"object": "list", "data": [{"id": "gpt-4o", "object": "model"}]})


class FakeOllama(_WithTools):
    """A local Ollama server with some pulled models."""

    def __init__(
        self, name: str = "ollama", *, pulled: tuple[str, ...] = ("llama3.2:latest",)
    ) -> None:
        super().__init__(name, models=pulled)

    @property
    def root(self) -> str:
        """``http://127.0.0.1:PORT`` (Ollama's own API is at the root, OpenAI's at /v1)."""
        return f"http://127.0.0.1:{self.port}"

    def routes(self, app: web.Application) -> None:
        """``/v1/chat/completions`` and ``/api/tags``."""
        app.router.add_post("/v1/chat/completions", self._pulled_chat)
        app.router.add_post("/api/embed", partial(ollama_embed, self))
        app.router.add_get("/api/tags", self._tags)
        app.router.add_route("*", "/{tail:.*}", self._not_found)

    def _is_pulled(self, model: str) -> bool:
        return model in self.models or f"{model}:latest" in self.models

    async def _pulled_chat(self, request: web.Request) -> web.StreamResponse:
        try:
            model = orjson.loads(await request.read()).get("model", "")
        except orjson.JSONDecodeError:
            model = ""
        if not self._is_pulled(model):
            await self._record(request)
            msg = f'model "{model}" not found, try pulling it first'
            return self._json(error_body(msg, "api_error"), 404)
        return await self._chat_or_tools(request)

    async def _tags(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        models = [
            {
                "name": m,
                "model": m,
                "modified_at": "2025-01-01T00:00:00Z",
                "size": 2019393189,
                "digest": "a80c4f17acd5",
                "details": {"format": "gguf", "family": "llama", "parameter_size": "3.2B"},
            }
            for m in self.models
        ]
        return self._json({"models": models})
