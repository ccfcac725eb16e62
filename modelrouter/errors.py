"""The router's own errors, each rendered in OpenAI's error shape.

``{"error": {"message", "type", "param", "code", ...extra}}`` with an HTTP status.
MCP tools turn the same errors into error results.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(slots=True)
class Attempt:
    """One try of one model, as shown in the trail (no secrets in ``error``)."""

    model: str
    provider: str
    status: int | None
    error: str | None
    duration_ms: float
    outcome: str
    """``"ok"``, a :class:`Failure` value, or ``"skipped"``."""
    retry_after: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON form used in error bodies, logs and MCP results."""
        return {
            "model": self.model,
            "provider": self.provider,
            "status": self.status,
            "error": self.error,
            "duration_ms": round(self.duration_ms, 2),
            "outcome": self.outcome,
        }


RETRYABLE = frozenset({408, 409, 429, 503, 504})
"""Statuses a client may retry as they are (429 and 503 with a ``Retry-After``)."""


class RouterError(Exception):
    """An error answered to the client with ``status`` and OpenAI's error body.

    Every answer whose status is not in :data:`RETRYABLE` carries
    ``x-should-retry: false`` unless ``should_retry`` says otherwise.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
        raw_body: bytes | None = None,
        should_retry: bool | None = None,
        attempts: Sequence[Attempt] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}
        self.attempts = attempts
        """The attempt trail, typed; rendered as ``error.attempts``."""
        if should_retry is None:
            should_retry = None if status in RETRYABLE else False
        if should_retry is not None:
            # Read by the OpenAI and Anthropic SDKs: without it they retry every 5xx,
            # and a 502 after the router already tried every model would be tried
            # (and fail) up to three times over during an outage.
            self.headers["x-should-retry"] = "true" if should_retry else "false"
        self.extra = extra or {}
        self.raw_body = raw_body
        """An upstream's own error body, returned as is (client errors)."""

    def payload(self) -> dict[str, Any]:
        """The ``{"error": {...}}`` object."""
        err: dict[str, Any] = {
            "message": self.message,
            "type": self.type,
            "param": self.param,
            "code": self.code,
        }
        if self.attempts:
            err["attempts"] = [a.as_dict() for a in self.attempts]
        err.update(self.extra)
        return {"error": err}

    def body(self) -> bytes:
        """The JSON body to send."""
        return self.raw_body if self.raw_body is not None else orjson.dumps(self.payload())


def bad_request(message: str, param: str | None = None, code: str | None = None) -> RouterError:
    """400 invalid_request_error."""
    return RouterError(400, message, param=param, code=code)


def model_not_found(name: str) -> RouterError:
    """404 for a name that is neither a route nor a model."""
    return RouterError(
        404,
        f"The model {name!r} does not exist: it is neither a configured route nor a model.",
        code="model_not_found",
        param="model",
    )


def unauthorized() -> RouterError:
    """401 for a missing or wrong API key."""
    return RouterError(
        401,
        "Invalid or missing API key. Send 'Authorization: Bearer <key>'.",
        type="authentication_error",
        code="invalid_api_key",
    )


def too_large(limit_mb: float) -> RouterError:
    """413 for a body over ``server.max_body_mb``."""
    return RouterError(
        413, f"Request body is larger than {limit_mb:g} MB.", code="request_too_large"
    )
