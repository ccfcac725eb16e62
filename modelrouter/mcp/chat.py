"""The chat path shared by the MCP ``chat`` and ``compare`` tools.

A chat body goes through the same :class:`~modelrouter.frontdoor.FrontDoor` as the
HTTP endpoint, so authentication, ranking, fallback, retries, health bookkeeping and
the log record (``via: "mcp"``) are the same.
"""

from __future__ import annotations

from typing import Any, Protocol

import orjson
from mcp.server.auth.middleware.auth_context import get_access_token

from modelrouter.attempts import Attempt
from modelrouter.errors import RouterError, bad_request, unauthorized
from modelrouter.frontdoor import Call, FrontDoor, new_request_id
from modelrouter.governance.types import Identity
from modelrouter.mcp.schemas import AttemptInfo, ChatMessage, ChatResult, CompareAnswer, Usage


class ProgressSink(Protocol):
    """Where progress goes: the SDK's tool :class:`~mcp.server.mcpserver.Context`."""

    async def report_progress(
        self, progress: float, total: float | None = None, message: str | None = None
    ) -> None:
        """Send one progress notification (a no-op when the client asked for none)."""


def _why(a: Attempt) -> str:
    return str(a.status) if a.status is not None else a.outcome


class ProgressReporter:
    """An :class:`~modelrouter.attempts.Observer` that turns attempts into progress.

    Messages read ``trying X``, ``X failed: 503; falling back to Y`` (or ``retrying
    X``), then ``X answered`` or ``X failed: 503; no model left``. Sending is a no-op
    when the client asked for no progress, and a broken channel never fails the chat.
    """

    def __init__(self, ctx: ProgressSink) -> None:
        self.ctx = ctx
        self.step = 0
        self.failed: Attempt | None = None

    async def send(self, message: str) -> None:
        """One progress notification with the next step number."""
        self.step += 1
        try:
            await self.ctx.report_progress(self.step, None, message)
        except Exception:
            pass

    async def attempt_started(self, model: str, number: int) -> None:
        """Announce an attempt, saying why when it follows a failure."""
        failed, self.failed = self.failed, None
        if failed is None:
            await self.send(f"trying {model}")
        else:
            then = "retrying" if failed.model == model else "falling back to"
            await self.send(f"{failed.model} failed: {_why(failed)}; {then} {model}")

    async def attempt_failed(self, attempt: Attempt) -> None:
        """Hold the failure until we know what comes next."""
        self.failed = attempt

    async def finish(self, served_by: str | None) -> None:
        """The last word: who answered, or the failure nothing followed."""
        if served_by is not None:
            await self.send(f"{served_by} answered")
        elif self.failed is not None:
            await self.send(f"{self.failed.model} failed: {_why(self.failed)}; no model left")


def chat_body(
    *,
    prompt: str | None = None,
    messages: list[ChatMessage] | None = None,
    system: str | None = None,
    model: str | None = None,
    models: list[str] | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
) -> dict[str, Any]:
    """The OpenAI chat body for the tool arguments (``prompt`` goes last, as user)."""
    if not messages and not prompt:
        raise bad_request("Give 'prompt' (a string) or 'messages' (a list of {role, content}).")
    msgs: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    msgs += [m.model_dump() for m in messages or ()]
    if prompt:
        msgs.append({"role": "user", "content": prompt})
    body: dict[str, Any] = {"messages": msgs}
    extras = {
        "model": model,
        "models": models,
        "temperature": temperature,
        "max_tokens": max_tokens,
    }
    body.update({k: v for k, v in extras.items() if v is not None})
    return body


def parse_completion(raw: bytes) -> tuple[str, str | None, Usage | None]:
    """Content, finish reason and usage of an OpenAI chat completion body."""
    data = orjson.loads(raw)
    choice = (data.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    content = message.get("content") or message.get("refusal") or ""
    usage = data.get("usage")
    return (
        content if isinstance(content, str) else orjson.dumps(content).decode(),
        choice.get("finish_reason"),
        Usage.model_validate(usage) if isinstance(usage, dict) else None,
    )


async def run_chat(
    door: FrontDoor, body: dict[str, Any], ctx: ProgressSink | None, *, tool: str = "chat"
) -> ChatResult:
    """Run one chat through the front door; raise :class:`RouterError` on failure."""
    call = Call(
        surface="mcp",
        request_id=new_request_id(),
        started=door.now(),
        credential=token(),
        endpoint=tool,
    )
    reporter = ProgressReporter(ctx) if ctx is not None else None
    try:
        result = await door.complete(call, body, reporter)
    except RouterError:
        if reporter is not None:
            await reporter.finish(None)
        raise
    if reporter is not None:
        await reporter.finish(result.model)
    content, finish, usage = parse_completion(result.completion.body)
    return ChatResult(
        content=content,
        model=result.model,
        provider=result.provider,
        attempts=[AttemptInfo.of(a) for a in result.attempts],
        usage=usage,
        finish_reason=finish,
    )


def token() -> str | None:
    """The bearer key the MCP transport verified for this call (none over stdio)."""
    access = get_access_token()
    return access.token if access is not None else None


def caller(door: FrontDoor) -> Identity:
    """Who is calling (what the key says); 401 if the key stopped being accepted since
    the transport checked it (revoked, expired)."""
    identity = door.identify(token())
    if identity is None:
        raise unauthorized()
    return identity


async def compare_one(door: FrontDoor, name: str, body: dict[str, Any]) -> CompareAnswer:
    """Ask one model (no fallback); a failure becomes the answer's ``error``."""
    t0 = door.now()
    try:
        result = await run_chat(door, {**body, "model": name}, None, tool="compare")
    except RouterError as err:
        ms = round((door.now() - t0) * 1000, 2)
        return CompareAnswer(
            model=name,
            provider=door.provider_of(name),
            content=None,
            latency_ms=ms,
            usage=None,
            error=err.message,
        )
    ms = round((door.now() - t0) * 1000, 2)
    return CompareAnswer(
        model=name,
        provider=result.provider,
        content=result.content,
        latency_ms=ms,
        usage=result.usage,
        error=None,
    )
