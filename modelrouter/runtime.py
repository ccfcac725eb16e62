"""The running router's parts: registry, health, dispatcher, probes, access and call logs.

One :class:`Runtime` per process, built once from the config. Surfaces never use it
directly: they go through :class:`modelrouter.frontdoor.FrontDoor`, which runs a
request over these parts (:meth:`Runtime.prepare`, then the dispatcher).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import partial
from typing import Any

from modelrouter.config import LoadedConfig
from modelrouter.dispatch import Dispatcher
from modelrouter.errors import bad_request
from modelrouter.health import HealthTracker
from modelrouter.logs import AccessLog
from modelrouter.probes import ProbeLoop, ProbeTarget
from modelrouter.redact import Redactor, config_secrets
from modelrouter.registry import Plan, Registry
from modelrouter.store.calllog import CallLog
from modelrouter.store.record import CallRecord
from providers.base import ChatRequest, InvalidBody, ProviderError


class Runtime:
    """Everything a request needs, built once from the config."""

    def __init__(
        self,
        config: LoadedConfig,
        *,
        log: AccessLog | None = None,
        health_clock: Callable[[], float] | None = None,
    ) -> None:
        self.config = config
        self.settings = config.settings
        # Health runs on an injectable clock (open_s, cooldowns, slow start), so tests
        # move time instead of sleeping.
        self.registry = Registry(config, health_clock=health_clock)
        self.tracker: HealthTracker = self.registry.tracker
        self.redactor = Redactor(config_secrets(config))
        self.dispatcher = Dispatcher(self.settings.router, self.tracker, redactor=self.redactor)
        self.log = log or AccessLog()
        self.calls = CallLog(self.settings.store, config.directory, redact=self.redactor.text)
        self.probes: ProbeLoop | None = None
        self.log_bodies = self.settings.server.log_bodies

    def record(self, record: CallRecord) -> None:
        """Keep the record of a finished request: a line on stderr, a row in the store."""
        self.log.emit(record)
        self.calls.put(record)

    async def start(self) -> None:
        """Open the store and connection pools, start the log writers and (unless
        ``probe = "none"``) probes. Raises :class:`~modelrouter.store.engine.StoreError`
        when the store must not be used as it is (see :meth:`CallLog.start`)."""
        await self.calls.start()
        await self.registry.start()
        self.log.start()
        h = self.settings.health
        if h.probe != "none" and self.registry.models:
            targets = {
                name: self._redacted(
                    partial(entry.provider.probe, entry.target, h.timeout_s, h.probe)
                )
                for name, entry in self.registry.models.items()
            }
            self.probes = ProbeLoop(
                self.tracker,
                targets,
                interval_s=h.interval_s,
                timeout_s=h.timeout_s,
                rng=random.Random(),
                redact=self.redactor.text,
            )
            await self.probes.start()

    def _redacted(self, probe: ProbeTarget) -> ProbeTarget:
        """``probe`` with secrets masked in its errors (they are shown on /health)."""

        async def run() -> None:
            try:
                await probe()
            except ProviderError as err:
                raise self.redactor.error(err) from None

        return run

    async def aclose(self) -> None:
        """Stop probes, close pools, flush the logs (the call log to the store or spool)."""
        if self.probes is not None:
            await self.probes.stop()
            self.probes = None
        await self.registry.aclose()
        await self.calls.aclose()
        self.log.stop()

    def prepare(
        self, body: dict[str, Any] | bytes, header_models: str | None = None, *, hops: int = 0
    ) -> tuple[ChatRequest, Plan]:
        """Validate a chat body and rank the models that may serve it."""
        request = self.parse(body, hops=hops)
        return request, self.plan(request, header_models)

    def parse(self, body: dict[str, Any] | bytes, *, hops: int = 0) -> ChatRequest:
        """A chat request from a decoded object (MCP, prompts) or the JSON bytes of an
        HTTP request, whose members are decoded only as far as routing needs them."""
        try:
            if isinstance(body, bytes):
                request = ChatRequest.from_json(body)
            else:
                request = ChatRequest.from_body(body)
        except InvalidBody as err:
            raise bad_request(str(err), err.param) from None
        request.hops = hops
        return request

    def plan(self, request: ChatRequest, header_models: str | None = None) -> Plan:
        """Check a request and rank the models that may serve it."""
        try:
            return self._prepare(request, header_models)[1]
        except InvalidBody as err:
            raise bad_request(str(err), err.param) from None

    def _prepare(self, request: ChatRequest, header_models: str | None) -> tuple[ChatRequest, Plan]:
        if not request.is_nonempty_array("messages"):
            raise bad_request("'messages' is required and must be a non-empty array.", "messages")
        model = request.get("model")
        if model is not None and not isinstance(model, str):
            raise bad_request("'model' must be a string.", "model")
        extra = request.get("models")
        if extra is None and header_models is not None:
            extra = [m.strip() for m in header_models.split(",") if m.strip()]
            if not extra:
                raise bad_request("The x-modelrouter-models header names no model.")
        registry = self.registry
        if extra is None:
            label, names = registry.resolve(model)
        else:
            if not isinstance(extra, list) or not all(isinstance(m, str) and m for m in extra):
                raise bad_request("'models' must be an array of model or route names.", "models")
            if not extra:
                raise bad_request("'models' must name at least one model or route.", "models")
            names = registry.resolve_list(([model] if model else []) + extra)
            label = ",".join(names)
        if self.log_bodies:
            request.body  # noqa: B018 - decode now: a body that cannot be logged is a 400
        return request, registry.plan(label, names, request)
