"""Embedding endpoints of the vendor fakes: OpenAI's, Gemini's and Ollama's own.

Each is strict about its request, as the vendor is, and answers deterministic vectors
(a text always gets the same one, and each vendor its own) of the asked length.
Scripted behaviours apply as for chat: ``ok``, ``status``, ``hang``, ``drop``,
``bad_json``; each request consumes one.
"""

from __future__ import annotations

import array
import base64
import hashlib
from typing import Any

from aiohttp import web

from tests.fakes.upstream import BadJson, Drop, FakeUpstream, Hang, Ok, Status, error_body


def fake_vector(vendor: str, text: str, dims: int) -> list[float]:
    """The vector a fake vendor gives ``text``: ``dims`` numbers in [-1, 1), float32-exact."""
    out: list[float] = []
    counter = 0
    while len(out) < dims:
        digest = hashlib.sha256(f"{vendor}:{counter}:{text}".encode()).digest()
        out += [(b - 128) / 128 for b in digest]
        counter += 1
    return out[:dims]


def as_base64(vector: list[float]) -> str:
    """OpenAI's base64 form: little-endian float32."""
    return base64.b64encode(array.array("f", vector).tobytes()).decode()


async def _behave(up: FakeUpstream, request: web.Request) -> web.StreamResponse | None:
    """The scripted failure for this request, or ``None`` to answer normally."""
    b = up._queue.popleft() if up._queue else up.default
    match b:
        case Ok(delay=delay):
            return up._close(request) if await up._sleep(delay) else None
        case Status(code=code, body=err, headers=headers):
            kind = "invalid_request_error" if code < 500 else "server_error"
            data = err if err is not None else error_body(f"fake error {code}", kind)
            return up._json(data, code, headers)
        case Hang():
            await up._sleep(None)
            return up._close(request)
        case Drop():
            return up._close(request)
        case BadJson():
            return up._json(b'{"object": "list", "da')
    raise AssertionError(f"behaviour {b!r} is not supported for embeddings")


OPENAI_FIELDS = frozenset({"model", "input", "encoding_format", "dimensions", "user"})


def _openai_problem(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "Request body is not a JSON object"
    unknown = sorted(body.keys() - OPENAI_FIELDS)
    if unknown:
        return f"Unrecognized request argument supplied: {unknown[0]}"
    if not isinstance(body.get("model"), str):
        return "you must provide a model parameter"
    if body.get("encoding_format") not in (None, "float", "base64"):
        return "'encoding_format' must be 'float' or 'base64'"
    inputs = body.get("input")
    if isinstance(inputs, str):
        return None
    if not isinstance(inputs, list) or not inputs:
        return "'input' must be a string or a non-empty array"
    return None


async def openai_embeddings(up: FakeUpstream, request: web.Request) -> web.StreamResponse:
    """``POST /v1/embeddings``, as OpenAI answers it."""
    up.calls += 1
    if (denied := await up._record(request)) is not None:
        return denied
    body = up.requests[-1].json
    if (problem := _openai_problem(body)) is not None:
        return up._json(error_body(problem), 400)
    if (failed := await _behave(up, request)) is not None:
        return failed
    inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
    dims = body.get("dimensions") or 8
    data = []
    for i, item in enumerate(inputs):
        vector = fake_vector(up.name, str(item), dims)
        encoded: Any = as_base64(vector) if body.get("encoding_format") == "base64" else vector
        data.append({"object": "embedding", "index": i, "embedding": encoded})
    tokens = sum(len(str(item).split()) for item in inputs)
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return up._json({"object": "list", "data": data, "model": body["model"], "usage": usage})


def _gemini_problem(body: Any, model: str) -> str | None:
    if not isinstance(body, dict) or set(body) != {"requests"}:
        return "Invalid JSON payload: expected exactly 'requests'"
    requests = body["requests"]
    if not isinstance(requests, list) or not requests:
        return "requests: at least one request is required"
    for i, one in enumerate(requests):
        if not isinstance(one, dict) or not one.keys() <= {
            "model",
            "content",
            "outputDimensionality",
            "taskType",
            "title",
        }:
            return f"requests[{i}]: unknown field"
        if one.get("model") != f"models/{model}":
            return f"requests[{i}].model: must be the model of the URL (models/{model})"
        parts = (one.get("content") or {}).get("parts")
        if not isinstance(parts, list) or not all(isinstance(p.get("text"), str) for p in parts):
            return f"requests[{i}].content.parts: text parts are required"
    return None


async def gemini_embeddings(up: Any, request: web.Request, model: str) -> web.StreamResponse:
    """``models/{model}:batchEmbedContents``, as Gemini answers it (no token counts)."""
    body = up.requests[-1].json
    if (problem := _gemini_problem(body, model)) is not None:
        return up._error(400, problem)
    if (failed := await _behave(up, request)) is not None:
        return failed
    out = []
    for one in body["requests"]:
        text = " ".join(p["text"] for p in one["content"]["parts"])
        dims = one.get("outputDimensionality") or 12
        out.append({"values": fake_vector(up.name, text, dims)})
    return up._json({"embeddings": out})


async def ollama_embed(up: FakeUpstream, request: web.Request) -> web.StreamResponse:
    """Ollama's own ``POST /api/embed``."""
    up.calls += 1
    rec = await up.capture(request)
    body = rec.json
    if not isinstance(body, dict) or not isinstance(body.get("model"), str):
        return up._json({"error": "model is required"}, 400)
    model = body["model"]
    if model not in up.models and f"{model}:latest" not in up.models:
        return up._json({"error": f'model "{model}" not found, try pulling it first'}, 404)
    inputs = body.get("input")
    texts = [inputs] if isinstance(inputs, str) else inputs
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        return up._json({"error": "invalid input type"}, 400)
    if (failed := await _behave(up, request)) is not None:
        return failed
    dims = body.get("dimensions") or 6
    vectors = [fake_vector(up.name, t, dims) for t in texts]
    count = sum(len(t.split()) for t in texts)
    return up._json({"model": model, "embeddings": vectors, "prompt_eval_count": count})
