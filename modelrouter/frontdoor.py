"""The front door: the one place that owns a request's life, whatever door it came by.

Every surface (the HTTP endpoints, the MCP tools) translates its protocol into a
chat body and a :class:`Call` (who is calling, by which door), hands both to
:class:`FrontDoor`, and translates the result back. Everything in between happens
here, in this order, for every surface alike: authentication, preparation (validate,
resolve, rank), permissions and limits (:class:`~modelrouter.governance.gate.Gate`,
for keys that have any), dispatch (fallback, retries, deadline), usage and cost
(:func:`modelrouter.cost.cost_of` over the dispatcher's
:class:`~modelrouter.dispatch.Outcome`), the access-log record, and the limiter
settled with what the request really used. Later stages of the gateway (metrics)
belong here too, so that each is written once.

A request ends as exactly one of two types: :class:`Completed` or :class:`Streaming`;
a failure is a :class:`~modelrouter.errors.RouterError`, already logged when raised.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from modelrouter import reports
from modelrouter.attempts import Attempt, Observer, loop_detected
from modelrouter.dispatch import CLIENT_GONE, SHUTDOWN_CUT, Outcome
from modelrouter.errors import RouterError, bad_request, unauthorized
from modelrouter.governance.budget import StoreSpend
from modelrouter.governance.directory import KeyDirectory
from modelrouter.governance.estimate import chat_ask, embed_ask
from modelrouter.governance.gate import Gate, SettlingEvents, Ticket, make_limiter
from modelrouter.governance.types import Identity
from modelrouter.prompts import prompt_chat_body
from modelrouter.recording import Call as Call
from modelrouter.recording import make_record, stream_answer
from modelrouter.registry import ModelEntry, Plan
from modelrouter.runtime import Runtime
from modelrouter.settings import Settings
from modelrouter.store.calllog import CallLog
from modelrouter.store.record import CallRecord
from providers.base import ChatRequest, Completion, Native, speaks
from providers.sse import ShapeFactory

_ID_PREFIX = os.urandom(6).hex()
_ids = itertools.count(1)


def new_request_id() -> str:
    """A process-unique id: a random per-process prefix and a counter (no syscall)."""
    return f"{_ID_PREFIX}{next(_ids):012x}"


CLIENT_CLOSED = 499
"""Logged status of a stream whose client left before its end (nginx's convention)."""
STREAM_ERRORS = {CLIENT_GONE: "client_closed", SHUTDOWN_CUT: "server_shutdown"}
"""The record's ``error_code`` of a stream cut short by either end (not the upstream)."""
MAX_HOPS = 5
"""A request that has already passed through this many routers is refused (508):
enough for gateways in front of gateways, few enough to stop a router calling itself."""


@dataclass(slots=True)
class Served:
    """What every served request has: who answered and after which attempts."""

    entry: ModelEntry
    attempts: list[Attempt]
    native: bool = False
    """The answer is in the client's own API (a provider that speaks it), not OpenAI's."""
    limits: dict[str, str] | None = None
    """``x-ratelimit-*`` headers for a limited key's answer."""

    @property
    def model(self) -> str:
        """The configured name of the model that answered."""
        return self.entry.name

    @property
    def provider(self) -> str:
        """The provider of the model that answered."""
        return self.entry.provider.name

    @property
    def tries(self) -> int:
        """Attempts made (skipped models not counted)."""
        return sum(a.outcome != "skipped" for a in self.attempts)


@dataclass(slots=True)
class Completed(Served):
    """A finished answer (OpenAI ``chat.completion`` JSON in ``completion.body``)."""

    completion: Completion = field(default_factory=lambda: Completion(b""))


@dataclass(slots=True)
class Streaming(Served):
    """A committed stream: iterate ``events``; call :meth:`client_left` if the client goes."""

    events: AsyncIterator[bytes] | None = None
    outcome: Outcome | None = None

    def client_left(self) -> None:
        """The client went away: the stream is logged as such and spares the model's health."""
        if self.outcome is not None:
            self.outcome.client_gone = True


class FrontDoor:
    """Runs chat requests for every surface over one :class:`Runtime`."""

    def __init__(self, rt: Runtime, *, local: bool = False) -> None:
        self._rt = rt
        self.keys = KeyDirectory(rt.settings, local=local)
        """Every accepted key (``local``: none needed, for MCP over stdio)."""
        self.now = rt.dispatcher.now
        """The clock every :class:`Call` is stamped with."""
        calls = rt.calls
        spend = StoreSpend(lambda: calls.reader) if calls.enabled else None
        registry = rt.registry
        link = rt.cluster.link if rt.cluster is not None else None
        self.gate = Gate(
            make_limiter(rt.settings, spend, link),
            lambda: registry.default_route,
            lambda call, plan, err, stream: self._log_failure(call, plan, err, stream=stream),
        )
        """Permissions and limits (its ``on_limited`` is the metrics hook)."""
        self.gate.on_limited = rt.metrics.limited
        if rt.cluster is not None:
            rt.cluster.limits = self.gate.limiter.state

    async def start(self) -> None:
        """Start the limiter's background work (after :meth:`Runtime.start`)."""
        await self.gate.limiter.start()

    async def aclose(self) -> None:
        """Stop the limiter's background work."""
        await self.gate.limiter.aclose()

    @property
    def open(self) -> bool:
        """Whether requests need no key (none is configured)."""
        return self.keys.open

    def identify(self, credential: str | None) -> Identity | None:
        """Who ``credential`` belongs to; ``None`` if it is not an accepted key."""
        return self.keys.identify(credential, time.time())

    def authenticate(self, credential: str | None) -> bool:
        """Whether ``credential`` is an accepted key (no keys configured: always)."""
        return self.identify(credential) is not None

    def refuse(self, call: Call, err: RouterError) -> RouterError:
        """Log a request the surface refused before it reached the door; return ``err``."""
        self._log_failure(call, None, err, stream=False)
        if call.identity.scopes:
            err.headers.update(self.gate.headers(call.identity))
        return err

    async def chat(
        self,
        call: Call,
        body: bytes | dict[str, Any],
        observer: Observer | None = None,
        *,
        native: Native | None = None,
        shape: ShapeFactory | None = None,
    ) -> Completed | Streaming:
        """Run one chat request; a stream comes back committed to its first event.

        Doors of other APIs give the chat translation of their body as ``body``, the
        body as sent as ``native``, and how their answer streams look as ``shape``.
        """
        request, plan = self._admit(call, body, native)
        ticket = None
        if call.identity.models or call.identity.scopes:
            ticket = await self.gate.admit(call, request, plan, chat_ask)
        dispatcher = self._rt.dispatcher
        try:
            if request.stream:
                out = await dispatcher.open_stream(request, plan, observer)
            else:
                out = await dispatcher.complete(request, plan, observer)
        except BaseException as err:
            self._failed(call, plan, err, ticket, stream=request.stream)
            raise
        as_sent = speaks(out.entry.provider, native)
        limits = ticket.headers if ticket is not None else None
        if out.completion is not None:
            answer = None
            if self._rt.log_bodies:
                answer = out.completion.body.decode("utf-8", "replace")
            record = self._log(call, plan, out, 200, stream=False, answer=answer)
            if ticket is not None:
                ticket.settle_record(record)
            return Completed(out.entry, out.attempts, as_sent, limits, completion=out.completion)
        if self._rt.log_bodies:
            out.events = []

        def on_end(done: Outcome, error: str | None) -> None:
            status = CLIENT_CLOSED if done.cut == CLIENT_GONE else 200
            code = "stream_interrupted" if error else STREAM_ERRORS.get(done.cut or "")
            answer = stream_answer(done.events) if done.events is not None else None
            rec = self._log(call, plan, done, status, stream=True, error_code=code, answer=answer)
            if ticket is not None:
                ticket.settle_record(rec)

        stream_shape = shape(as_sent) if shape is not None else None
        events = dispatcher.relay(request, out, on_end, stream_shape)
        if ticket is not None:
            events = SettlingEvents(events, ticket)
        return Streaming(out.entry, out.attempts, as_sent, limits, events=events, outcome=out)

    async def embed(self, call: Call, body: bytes | dict[str, Any]) -> Completed:
        """Run one embeddings request (OpenAI's ``list`` answer in ``completion.body``)."""
        try:
            self.admit(call)
            request, plan = self._rt.prepare_embedding(body, call.models_header, hops=call.hops)
            call.note(request.wire)
        except RouterError as err:
            raise self.refuse(call, err) from None
        ticket = None
        if call.identity.models or call.identity.scopes:
            ticket = await self.gate.admit(call, request.wire, plan, embed_ask)
        try:
            out = await self._rt.dispatcher.embed(request, plan)
        except BaseException as err:
            self._failed(call, plan, err, ticket, stream=False)
            raise
        record = self._log(call, plan, out, 200, stream=False)
        assert out.completion is not None
        if ticket is None:
            return Completed(out.entry, out.attempts, completion=out.completion)
        ticket.settle_record(record)
        return Completed(out.entry, out.attempts, limits=ticket.headers, completion=out.completion)

    async def complete(
        self, call: Call, body: dict[str, Any], observer: Observer | None = None
    ) -> Completed:
        """Run one chat request that must not stream (tools that return one answer)."""
        if body.get("stream"):
            err = bad_request("This way in answers in one piece: 'stream' must be false.")
            raise self.refuse(call, err)
        result = await self.chat(call, body, observer)
        assert isinstance(result, Completed)  # a body without "stream" never streams
        return result

    def admit(self, call: Call) -> None:
        """Raise unless the caller may come in: a known key, and not a routing loop."""
        if not call.preauthorized:
            identity = self.identify(call.credential)
            if identity is None:
                raise unauthorized()
            call.identity = identity
        if call.hops >= MAX_HOPS:
            raise loop_detected(call.hops)

    def health(self, *, detailed: bool) -> dict[str, Any]:
        """The health report; without ``detailed``, no upstream error text in it."""
        report = reports.health_report(self._rt)
        if detailed:
            return report
        # A name set in [cluster] instance is meant to be shown; host:port is not.
        named = bool(self._rt.settings.cluster.instance.strip())
        return reports.public_view(report, keep_instance=named)

    def ready(self) -> bool:
        """Whether every route has a model whose breaker is not open."""
        return reports.is_ready(self._rt)

    def model_objects(self, identity: Identity | None = None) -> list[dict[str, Any]]:
        """Every route and model (that ``identity`` may use) as an OpenAI model object
        with router extras."""
        objects = reports.model_objects(self._rt)
        if identity is None or not identity.models:
            return objects
        return [o for o in objects if self.gate.may_use(identity, o["id"])]

    @property
    def call_log(self) -> CallLog:
        """The call log (its reader engine serves the admin views)."""
        return self._rt.calls

    @property
    def settings(self) -> Settings:
        """The configuration this router runs (read-only by convention)."""
        return self._rt.settings

    @property
    def default_route(self) -> str | None:
        """Where requests that name no model go, if anywhere."""
        return self._rt.registry.default_route

    def model_names(self) -> list[str]:
        """Every configured model, in config order."""
        return list(self._rt.registry.models)

    def provider_of(self, model: str) -> str:
        """The provider name of configured model ``model``."""
        return self._rt.registry.models[model].provider.name

    def resolve(self, name: str) -> list[str]:
        """The models of route or model ``name`` (404 ``model_not_found`` if neither)."""
        return self._rt.registry.resolve(name)[1]

    def prompt_body(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """The chat body of configured prompt ``name`` filled from ``body`` (404 if unknown)."""
        return prompt_chat_body(self._rt.settings.prompts, name, body)

    def _admit(
        self, call: Call, body: bytes | dict[str, Any], native: Native | None = None
    ) -> tuple[ChatRequest, Plan]:
        try:
            self.admit(call)
            request = self._rt.parse(body, hops=call.hops, native=native)
            call.note(request)
            return request, self._rt.plan(request, call.models_header)
        except RouterError as err:
            raise self.refuse(call, err) from None

    def _failed(
        self, call: Call, plan: Plan, err: BaseException, ticket: Ticket | None, *, stream: bool
    ) -> None:
        """A dispatch that raised: logged if it is an answer; the ticket settled with nothing."""
        if isinstance(err, RouterError):
            self._log_failure(call, plan, err, stream=stream)
        if ticket is not None:
            ticket.settle(0, 0.0)  # failed requests use nothing
            if isinstance(err, RouterError):
                err.headers.update(ticket.headers)

    def _log(
        self,
        call: Call,
        plan: Plan,
        out: Outcome,
        status: int,
        *,
        stream: bool,
        error_code: str | None = None,
        answer: str | None = None,
    ) -> CallRecord:
        ttft = None
        if out.ttft is not None:
            # From the request's arrival, failed attempts included: what the client waited.
            ttft = out.started + out.ttft - call.started
        record = make_record(
            call,
            plan,
            status=status,
            attempts=out.attempts,
            stream=stream,
            latency_s=self.now() - call.started,
            error_code=error_code,
            entry=out.entry,
            usage=out.usage,
            usage_estimated=out.usage_estimated,
            ttft_s=ttft,
            answer=answer,
            log_bodies=self._rt.log_bodies,
        )
        self._rt.record(record)
        return record

    def _log_failure(
        self, call: Call, plan: Plan | None, err: RouterError, *, stream: bool
    ) -> None:
        self._rt.record(
            make_record(
                call,
                plan,
                status=err.status,
                attempts=err.attempts,
                stream=stream,
                latency_s=self.now() - call.started,
                error_code=err.code or err.type,
                log_bodies=self._rt.log_bodies,
            )
        )
