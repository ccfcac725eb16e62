"""The running router's parts: registry, health, dispatcher, probes, access and call logs.

One :class:`Runtime` per process, built once from the config. Surfaces never use it
directly: they go through :class:`modelrouter.frontdoor.FrontDoor`, which runs a
request over these parts (:meth:`Runtime.prepare`, then the dispatcher).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from modelrouter.cluster.instance import instance_name
from modelrouter.config import LoadedConfig
from modelrouter.dispatch import Dispatcher
from modelrouter.errors import bad_request
from modelrouter.health import HealthTracker
from modelrouter.logs import AccessLog
from modelrouter.observe import tracing
from modelrouter.observe.metrics import Metrics
from modelrouter.probes import ProbeLoop, ProbeTarget
from modelrouter.redact import Redactor, config_secrets
from modelrouter.registry import ModelEntry, Plan, Registry
from modelrouter.store.calllog import CallLog
from modelrouter.store.record import CallRecord
from providers.base import ChatRequest, InvalidBody, Native, ProviderError
from providers.embeddings import Embedder, EmbedRequest, parse_embed

if TYPE_CHECKING:
    from modelrouter.cluster.node import Cluster


class Runtime:
    """Everything a request needs, built once from the config."""

    def __init__(
        self,
        config: LoadedConfig,
        *,
        log: AccessLog | None = None,
        health_clock: Callable[[], float] | None = None,
        metrics_dir: str | None = None,
    ) -> None:
        self.config = config
        self.settings = config.settings
        s = self.settings
        self.instance = instance_name(s.cluster, s.server)
        """This replica's name (``cluster.instance``, else ``host:port``): ``/health``,
        the logs, metrics labels."""
        self.cluster: Cluster | None = None
        """Membership of a cluster of replicas; ``None`` without ``cluster.redis_url``."""
        # Health runs on an injectable clock (open_s, cooldowns, slow start), so tests
        # move time instead of sleeping.
        tracker = None
        if s.cluster.redis_url:
            # Imported only here: a lone router never loads the Redis client.
            from modelrouter.cluster.node import Cluster
            from modelrouter.cluster.tracker import ClusterTracker

            clock = {"clock": health_clock} if health_clock is not None else {}
            tracker = ClusterTracker(s.health, s.models, **clock)
            self.cluster = Cluster(s.cluster, s.health, tracker, instance=self.instance)
        self.registry = Registry(config, health_clock=health_clock, tracker=tracker)
        self.tracker: HealthTracker = self.registry.tracker
        self.redactor = Redactor(config_secrets(config))
        self.dispatcher = Dispatcher(self.settings.router, self.tracker, redactor=self.redactor)
        named = self.cluster is not None or bool(s.cluster.instance.strip())
        self.log = log or AccessLog(instance=self.instance if named else None)
        self.calls = CallLog(self.settings.store, config.directory, redact=self.redactor.text)
        self.probes: ProbeLoop | None = None
        self.log_bodies = self.settings.server.log_bodies
        # ``metrics_dir``: shared by the workers of one server (``serve --workers N``).
        self.metrics = Metrics(self.settings, metrics_dir)
        self.tracker.on_transition = self.metrics.transition
        self.tracer: tracing.Tracer | None = None

    def record(self, record: CallRecord) -> None:
        """Keep the record of a finished request: a line on stderr, a row in the store,
        the metrics, and (with an OTLP endpoint) its spans."""
        self.log.emit(record)
        self.calls.put(record)
        self.metrics.record(record)
        if self.tracer is not None:
            self.tracer.record(record)

    async def start(self) -> None:
        """Open the store and connection pools, start the log writers and (unless
        ``probe = "none"``) probes. Raises :class:`~modelrouter.store.engine.StoreError`
        when the store must not be used as it is (see :meth:`CallLog.start`)."""
        await self.calls.start()
        await self.metrics.start(self.calls)
        self.tracer = tracing.from_env(self.config)
        await self.registry.start()
        self.log.start()
        h = self.settings.health
        cluster = self.cluster
        if h.probe != "none" and self.registry.models:
            targets = {
                name: self._redacted(self._probe_of(entry, h.timeout_s, h.probe))
                for name, entry in self.registry.models.items()
            }
            self.probes = ProbeLoop(
                self.tracker,
                targets,
                interval_s=h.interval_s,
                timeout_s=h.timeout_s,
                rng=random.Random(),
                redact=self.redactor.text,
                on_probe=self.metrics.probe,
                gate=cluster.may_probe if cluster is not None else None,
                due_in=cluster.tracker.probe_due_in if cluster is not None else None,
            )
            if cluster is not None:
                cluster.on_lease_gained(self.probes.wake)
        if cluster is not None:
            # Before the probes: a replica joining a running cluster reads the shared
            # health first, and probes only if it is the one to.
            await cluster.start()
        if self.probes is not None:
            await self.probes.start()

    @staticmethod
    def _probe_of(entry: ModelEntry, timeout: float, mode: str) -> ProbeTarget:
        """The probe of one model: for an embedding model, ``chat`` means one embedding."""
        if mode != "chat" or entry.settings.mode != "embedding":
            return partial(entry.provider.probe, entry.target, timeout, mode)
        embedder = cast(Embedder, entry.provider)

        async def embed_one() -> None:
            request = parse_embed({"input": "ping", "model": entry.target.upstream_model})
            async with asyncio.timeout(timeout):
                await embedder.embed(request, entry.target, timeout)

        return embed_one

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
        if self.cluster is not None:
            # After the probes (their last results go out), before the pools close:
            # the lease is given back and the outbox sent.
            await self.cluster.stop()
        await self.registry.aclose()
        await self.calls.aclose()
        await self.metrics.stop()
        if self.tracer is not None:
            # Blocking: the exporter sends what is still queued.
            await asyncio.to_thread(self.tracer.shutdown)
            self.tracer = None
        self.log.stop()

    def prepare(
        self,
        body: dict[str, Any] | bytes,
        header_models: str | None = None,
        *,
        hops: int = 0,
        native: Native | None = None,
    ) -> tuple[ChatRequest, Plan]:
        """Validate a chat body and rank the models that may serve it."""
        request = self.parse(body, hops=hops, native=native)
        return request, self.plan(request, header_models)

    def parse(
        self, body: dict[str, Any] | bytes, *, hops: int = 0, native: Native | None = None
    ) -> ChatRequest:
        """A chat request from a decoded object (MCP, prompts) or the JSON bytes of an
        HTTP request, whose members are decoded only as far as routing needs them.
        ``native``: the body as sent to another API's door (``body`` is its translation)."""
        try:
            if isinstance(body, bytes):
                request = ChatRequest.from_json(body)
            else:
                request = ChatRequest.from_body(body)
        except InvalidBody as err:
            raise bad_request(str(err), err.param) from None
        request.hops = hops
        request.native = native
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
        label, names = self._resolve(request, header_models)
        registry = self.registry
        if registry.embedding and not registry.embedding.isdisjoint(names):
            found = next(n for n in names if n in registry.embedding)
            raise bad_request(
                f'{found!r} is an embedding model (mode = "embedding"): it answers on '
                "/v1/embeddings, not chat.",
                "model",
            )
        if self.log_bodies:
            request.body  # noqa: B018 - decode now: a body that cannot be logged is a 400
        return request, registry.plan(label, names, request)

    def _resolve(self, body: ChatRequest, header_models: str | None) -> tuple[str, list[str]]:
        """The route label and model names that ``model``, ``models`` or the header ask for."""
        model = body.get("model")
        if model is not None and not isinstance(model, str):
            raise bad_request("'model' must be a string.", "model")
        extra = body.get("models")
        if extra is None and header_models is not None:
            extra = [m.strip() for m in header_models.split(",") if m.strip()]
            if not extra:
                raise bad_request("The x-modelrouter-models header names no model.")
        registry = self.registry
        if extra is None:
            return registry.resolve(model)
        if not isinstance(extra, list) or not all(isinstance(m, str) and m for m in extra):
            raise bad_request("'models' must be an array of model or route names.", "models")
        if not extra:
            raise bad_request("'models' must name at least one model or route.", "models")
        names = registry.resolve_list(([model] if model else []) + extra)
        return ",".join(names), names

    def prepare_embedding(
        self, body: dict[str, Any] | bytes, header_models: str | None = None, *, hops: int = 0
    ) -> tuple[EmbedRequest, Plan]:
        """Validate an embeddings body and rank the embedding models that may serve it."""
        try:
            request = parse_embed(body)
            request.hops = hops
            label, names = self._resolve(request.wire, header_models)
            if self.log_bodies:
                request.wire.body  # noqa: B018 - decode now: a body that cannot be logged is a 400
        except InvalidBody as err:
            raise bad_request(str(err), err.param) from None
        chat = [n for n in names if n not in self.registry.embedding]
        if chat:
            raise bad_request(
                f'{chat[0]!r} is a chat model: embeddings need a model with mode = "embedding".',
                "model",
            )
        return request, self.registry.plan(label, names, None)
