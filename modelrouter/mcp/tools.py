"""The MCP tools: ``chat``, ``compare``, ``list_models`` and ``model_health``.

``chat`` and ``compare`` run through :mod:`modelrouter.mcp.chat` (the HTTP
endpoint's dispatcher). Every router error comes back as an ``is_error`` result
whose text names the cause and the attempt trail; the session never sees an
exception.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import orjson
from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from modelrouter.errors import RouterError, bad_request
from modelrouter.frontdoor import FrontDoor
from modelrouter.mcp.chat import ProgressReporter, caller, chat_body, compare_one, run_chat
from modelrouter.mcp.schemas import (
    AttemptInfo,
    ChatMessage,
    ChatResult,
    CompareAnswer,
    CompareResult,
    HealthResult,
    ModelList,
    model_list,
)

Ctx = Context[Any, Any]
MAX_COMPARE = 8
READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
CALLS_MODELS = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=True)


def error_result(err: RouterError) -> CallToolResult:
    """An ``is_error`` result: the message, then one line per attempt.

    Text only: clients (the TypeScript SDK among them) validate any structured
    content against the tool's output schema, error results included.
    """
    lines = [f"Error {err.status} ({err.code or err.type}): {err.message}"]
    attempts = [AttemptInfo.of(a) for a in err.attempts]
    if attempts:
        lines.append("Attempts:")
    for a in attempts:
        detail = f"{a.outcome}" + (f" {a.status}" if a.status is not None else "")
        lines.append(f"- {a.model} ({a.provider}): {detail}, {a.error}, {a.duration_ms:g} ms")
    return CallToolResult(content=[TextContent(type="text", text="\n".join(lines))], is_error=True)


def ok_result(model: BaseModel) -> CallToolResult:
    """A structured result with its JSON echoed as text (for clients without structure)."""
    data = model.model_dump(mode="json")
    text = orjson.dumps(data, option=orjson.OPT_INDENT_2).decode()
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=data)


def register_tools(mcp: MCPServer[Any], door: FrontDoor) -> None:
    """Add the four tools, bound to one front door."""

    @mcp.tool(
        title="Chat through the router",
        annotations=CALLS_MODELS,
        description="Send a chat to a route or model. The router ranks its models by health, "
        "falls back on failure and reports each attempt as progress. Returns the answer, "
        "the model that gave it and every attempt.",
    )
    async def chat(
        ctx: Ctx,
        prompt: Annotated[str | None, Field(description="User message (after 'messages')")] = None,
        messages: Annotated[
            list[ChatMessage] | None, Field(description="Conversation: [{role, content}]")
        ] = None,
        model: Annotated[str | None, Field(description="Route or model name")] = None,
        models: Annotated[
            list[str] | None, Field(description="Ad-hoc fallback list of routes or models")
        ] = None,
        system: Annotated[str | None, Field(description="System message")] = None,
        temperature: Annotated[float | None, Field(ge=0, le=2)] = None,
        max_tokens: Annotated[int | None, Field(ge=1)] = None,
    ) -> Annotated[CallToolResult, ChatResult]:
        try:
            body = chat_body(
                prompt=prompt,
                messages=messages,
                system=system,
                model=model,
                models=models,
                temperature=temperature,
                max_tokens=max_tokens,
            )
            return ok_result(await run_chat(door, body, ctx))
        except RouterError as err:
            return error_result(err)

    @mcp.tool(
        title="Compare models",
        annotations=CALLS_MODELS,
        description="Send one prompt to several models at once (each alone, no fallback) "
        "and return every answer with its latency and token usage.",
    )
    async def compare(
        ctx: Ctx,
        prompt: Annotated[str, Field(description="User message sent to every model")],
        models: Annotated[
            list[str], Field(min_length=1, max_length=MAX_COMPARE, description="Model names")
        ],
        system: Annotated[str | None, Field(description="System message")] = None,
        temperature: Annotated[float | None, Field(ge=0, le=2)] = None,
        max_tokens: Annotated[int | None, Field(ge=1)] = None,
    ) -> Annotated[CallToolResult, CompareResult]:
        names = list(dict.fromkeys(models))
        known_models = door.model_names()
        unknown = [n for n in names if n not in known_models]
        if unknown:
            known = ", ".join(known_models)
            msg = f"compare takes model names; not a model: {', '.join(unknown)} (models: {known})."
            return error_result(bad_request(msg, "models", "model_not_found"))
        try:
            body = chat_body(
                prompt=prompt, system=system, temperature=temperature, max_tokens=max_tokens
            )
        except RouterError as err:
            return error_result(err)
        reporter = ProgressReporter(ctx)

        async def one(name: str) -> CompareAnswer:
            answer = await compare_one(door, name, body)
            await reporter.send(f"{name} {'failed' if answer.error else 'answered'}")
            return answer

        results = await asyncio.gather(*(one(n) for n in names))
        return ok_result(CompareResult(results=list(results)))

    @mcp.tool(
        title="List routes and models",
        annotations=READ_ONLY,
        description="Every route (with its fallback order now) and every model "
        "(with provider, health state and rank in each route).",
    )
    async def list_models() -> ModelList:
        # Only what the caller's key may use; a refusal becomes an error result.
        return model_list(door, caller(door))

    @mcp.tool(
        title="Model health",
        annotations=READ_ONLY,
        description="Health detail (state, breaker, error rate, latency, last probe) of one "
        "model, of a route's models, or of every model when none is named.",
    )
    async def model_health(
        model: Annotated[
            str | None, Field(description="Model or route name; all if omitted")
        ] = None,
    ) -> Annotated[CallToolResult, HealthResult]:
        report = door.health(detailed=True)
        snaps: dict[str, dict[str, Any]] = report["models"]
        if model is not None:
            try:
                names = door.resolve(model)
            except RouterError as err:
                return error_result(err)
            snaps = {n: snaps[n] for n in names}
        return ok_result(HealthResult(status=report["status"], models=snaps))
