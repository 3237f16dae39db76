"""Retry strategies per job type: one ``RetryPolicy`` read by the queue and by the app.

A policy is Cloud Tasks' own retry settings (attempts, backoff from ``min_backoff`` doubling
``max_doublings`` times up to ``max_backoff``, ``max_retry_duration``) plus which kinds of
failure are retried at all. Every task carries its type's policy as its own ``retry_config``
(Cloud Tasks' ``Task.retry_config``), the type's queues are configured with the same values,
and the processor stops at the same ``max_attempts``: one policy, read in three places.

The app stops at ``max_attempts`` itself because Cloud Tasks stops only once the attempts
**and** ``max_retry_duration`` are both used up; the duration is what the queue keeps retrying
for when the app cannot answer at all (an instance that dies mid-attempt).

Defaults are below, per type (the image types keep the seed's queue: 3 attempts, 1 s to 60 s,
within an hour, as ``queues.toml``). ``RETRY_POLICIES`` overrides any field per type, as JSON:
``{"video-generation": {"max_attempts": 5, "min_backoff": "20s", "retry_on": ["unavailable"]}}``.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from daygen_queue import RetryConfig

FAILURE_KINDS: Final = frozenset(
    {
        # ProviderError codes (app.providers.base.ErrorCode) that a provider may mark retryable
        "rate_limited",
        "unavailable",
        "aborted",
        "deadline",
        "result_expired",
        "task_failed",
        "task_not_found",
        # failures that are not a provider's answer
        "timeout",  # the job type's run_timeout passed
        "unclassified",  # a retryable ProviderError without a code
        "internal",  # an unexpected exception in the app
    }
)
"""What ``retry_on`` may name. A failure the provider calls permanent is never retried."""

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def _duration(value: object) -> object:
    """``"10s"``, ``"1.5m"``, ``"100ms"``, ``"1h"``, or a number of seconds."""
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise ValueError(f'expected a duration like "10s" or "1h", got {value!r}')
        return timedelta(seconds=float(match[1]) * _UNITS[match[2]])
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    return value


class RetryPolicy(BaseModel):
    """How one job type is retried. ``retry_on=None`` retries every failure the provider
    marks retryable; a list retries only those kinds (``FAILURE_KINDS``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_attempts: int = Field(3, ge=1, le=100)
    min_backoff: timedelta = timedelta(seconds=1)
    max_backoff: timedelta = timedelta(seconds=60)
    max_doublings: int = Field(16, ge=1, le=16)
    max_retry_duration: timedelta = timedelta(hours=1)
    retry_on: frozenset[str] | None = None

    @field_validator("min_backoff", "max_backoff", "max_retry_duration", mode="before")
    @classmethod
    def _parse_duration(cls, value: object) -> object:
        return _duration(value)

    @field_validator("retry_on")
    @classmethod
    def _known_kinds(cls, value: frozenset[str] | None) -> frozenset[str] | None:
        unknown = sorted(set(value or ()) - FAILURE_KINDS)
        if unknown:
            raise ValueError(f"unknown failure kind(s) {unknown}; expected {sorted(FAILURE_KINDS)}")
        return value

    @model_validator(mode="after")
    def _as_cloud_tasks_takes_it(self) -> RetryPolicy:
        self.retry_config()  # Cloud Tasks' own limits, checked when the policy is read
        return self

    def retry_config(self) -> RetryConfig:
        """The policy as Cloud Tasks' ``RetryConfig`` (a task's own, and its queues')."""
        return _retry_config(self)

    def retries(self, kind: str, attempt: int) -> bool:
        """Whether a retryable failure of ``kind`` on ``attempt`` (from 1) is tried again."""
        if attempt >= self.max_attempts:
            return False
        return self.retry_on is None or kind in self.retry_on

    def backoff(self, retry: int) -> timedelta:
        """The wait before retry ``retry`` (from 1), as Cloud Tasks computes it: doubling
        ``max_doublings`` times, then growing linearly by the last doubled step, capped."""
        doublings = min(retry - 1, self.max_doublings)
        delay: timedelta = self.min_backoff * 2**doublings
        if retry - 1 > self.max_doublings:
            delay += self.min_backoff * 2**self.max_doublings * (retry - 1 - self.max_doublings)
        return min(delay, self.max_backoff)


@functools.lru_cache(maxsize=64)
def _retry_config(policy: RetryPolicy) -> RetryConfig:
    """Built once per policy: every task of a type carries the same (frozen) one."""
    return RetryConfig(
        max_attempts=policy.max_attempts,
        max_retry_duration=policy.max_retry_duration,
        min_backoff=policy.min_backoff,
        max_backoff=policy.max_backoff,
        max_doublings=policy.max_doublings,
    )


DEFAULT_POLICIES: Final[dict[str, RetryPolicy]] = {
    "image-generation": RetryPolicy(),
    "image-upscale": RetryPolicy(),
    "batch-generation": RetryPolicy(),
    # A clip takes minutes and its provider bills per run: fewer, slower retries, and a clip
    # that ran past its model's deadline is not started again.
    "video-generation": RetryPolicy(
        max_attempts=3,
        min_backoff=timedelta(seconds=10),
        max_backoff=timedelta(seconds=300),
        max_doublings=3,
        max_retry_duration=timedelta(hours=2),
        retry_on=FAILURE_KINDS - {"deadline"},
    ),
}


def resolve_policies(overrides: Mapping[str, Mapping[str, Any]]) -> dict[str, RetryPolicy]:
    """The default policies with ``overrides`` (per type, any field) applied. Raises
    ``ValueError`` naming the type and field."""
    unknown = sorted(set(overrides) - set(DEFAULT_POLICIES))
    if unknown:
        raise ValueError(f"RETRY_POLICIES: unknown job type(s) {unknown}")
    policies = dict(DEFAULT_POLICIES)
    for name, fields in overrides.items():
        base = DEFAULT_POLICIES[name].model_dump(exclude_unset=False)
        try:
            policies[name] = RetryPolicy.model_validate({**base, **fields})
        except ValueError as error:
            raise ValueError(f"RETRY_POLICIES[{name!r}]: {error}") from None
    return policies


def failure_kind(error: BaseException) -> str:
    """The ``retry_on`` name of a failure."""
    code = getattr(error, "code", None)
    if hasattr(error, "retryable"):  # a ProviderError
        return str(code) if code else "unclassified"
    if isinstance(error, TimeoutError):
        return "timeout"
    return "internal"


_RESOLVED: dict[str, dict[str, RetryPolicy]] = {}


def policy_for(job_type: str, overrides: Mapping[str, Mapping[str, Any]]) -> RetryPolicy:
    """``job_type``'s policy under ``overrides`` (``Settings.retry_policies``), resolved once
    per distinct overrides."""
    key = json.dumps(overrides, sort_keys=True, default=str) if overrides else ""
    policies = _RESOLVED.get(key)
    if policies is None:
        policies = _RESOLVED[key] = resolve_policies(overrides)
    return policies[job_type]
