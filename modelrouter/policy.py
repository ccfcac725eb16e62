"""The failure policy as data: what the router does after each kind of failure.

One row per :class:`~providers.failures.Failure`: whether the same model is tried
again, whether the next model is, what the failure does to the model's health, and
whether the upstream's answer becomes the client's. The dispatcher and the health
tracker read these rows and nothing else; README.md's failure table is generated
from them (:func:`markdown_table`, checked by a test), so the docs cannot drift.

The rule behind the health column: only what the upstream did may count against a
model. A request the client got wrong is a 400 before any call; a bug in the router
is a 500 with a logged traceback; neither ever reaches this table.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from providers.failures import Failure


class Again(enum.Enum):
    """Whether a failed model is tried again within the same request."""

    NO = "no"
    AFTER_BACKOFF = "once, after backoff"
    AFTER_RETRY_AFTER = (
        "after its Retry-After, if at most `retry_after_max_s` and the deadline allows"
    )


class Health(enum.Enum):
    """What a failure does to the model's health."""

    COUNTS = "counts as a failure"
    COOLS_DOWN = "cools the model down for its Retry-After (10 s if none)"
    MISCONFIGURED = "opens the breaker at once: misconfigured"
    IGNORED = "none (not the model's fault)"


@dataclass(frozen=True, slots=True)
class Rule:
    """The policy for one failure kind."""

    when: str
    """The situation, as README's table names it."""
    again: Again
    next_model: bool
    """Whether another candidate is tried (else the request ends with this failure)."""
    health: Health
    to_client: bool = False
    """The upstream's own error answer is returned to the client as it gave it."""

    @property
    def counts(self) -> bool:
        """Whether the failure counts against the model's breaker."""
        return self.health in (Health.COUNTS, Health.MISCONFIGURED)

    @property
    def next_text(self) -> str:
        """README's wording of the next-model column."""
        if self.next_model:
            return "yes"
        if self.to_client:
            return "no: the upstream's error is returned as is"
        return "no: the stream ends with an SSE error event"


POLICY: Mapping[Failure, Rule] = MappingProxyType(
    {
        Failure.CONNECT: Rule(
            "no answer: connection refused or reset, DNS failure, closed unanswered",
            Again.AFTER_BACKOFF,
            True,
            Health.COUNTS,
        ),
        Failure.INTERRUPTED: Rule(
            "answer broke off mid-way (the upstream had the request)",
            Again.NO,
            True,
            Health.COUNTS,
        ),
        Failure.TIMEOUT: Rule(
            "timeout (connect, first token, idle)", Again.NO, True, Health.COUNTS
        ),
        Failure.SERVER: Rule(
            "408, 409, 500, 502, 503, 504, 529", Again.AFTER_BACKOFF, True, Health.COUNTS
        ),
        Failure.RATE_LIMIT: Rule("429", Again.AFTER_RETRY_AFTER, True, Health.COOLS_DOWN),
        Failure.MISCONFIGURED: Rule(
            "3xx, 401, 403, 404, 405, 410, 415, model not pulled (our key, model id or URL "
            "is wrong)",
            Again.NO,
            True,
            Health.MISCONFIGURED,
        ),
        Failure.CLIENT: Rule(
            "400/413/422 blaming the request", Again.NO, False, Health.IGNORED, to_client=True
        ),
        Failure.CONTEXT_LENGTH: Rule(
            "400 context length exceeded (a bigger model may fit)",
            Again.NO,
            True,
            Health.IGNORED,
        ),
        Failure.CONTENT_FILTER: Rule(
            "the upstream refused the content", Again.NO, True, Health.IGNORED
        ),
        Failure.MALFORMED: Rule(
            "malformed answer (bad JSON or UTF-8, no choices, bad stream event, too large)",
            Again.NO,
            True,
            Health.COUNTS,
        ),
        Failure.STREAM_CUT: Rule(
            "stream fails after its first byte reached the client",
            Again.NO,
            False,
            Health.COUNTS,
        ),
    }
)


def rule(failure: Failure) -> Rule:
    """The policy row for ``failure``."""
    return POLICY[failure]


def markdown_table() -> str:
    """The failure table as README.md shows it (a test keeps the two identical)."""
    lines = [
        "| failure (`outcome`) | same model again? | next model? | model health |",
        "|---|---|---|---|",
    ]
    for failure, r in POLICY.items():
        lines.append(
            f"| {r.when} (`{failure.value}`) | {r.again.value} | {r.next_text} | {r.health.value} |"
        )
    return "\n".join(lines)
