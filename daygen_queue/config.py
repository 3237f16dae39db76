"""Queue configuration with Cloud Tasks' defaults and published limits.

Checked when built, for an early error that names the field; the queue service (real or
emulated) validates again like Cloud Tasks does.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

QUEUE_ID_PATTERN = r"^[A-Za-z0-9-]{1,100}$"
_QUEUE_ID_RE = re.compile(QUEUE_ID_PATTERN)


def derived_burst_size(max_dispatches_per_second: float) -> int:
    """Cloud Tasks v2 derives ``max_burst_size`` from the rate (it is output only); this is the
    emulator's documented reading of the observed values (500/s -> 100, 1/s -> 10)."""
    return max(10, min(100, math.ceil(max_dispatches_per_second)))


class RateLimits(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    max_dispatches_per_second: float = Field(500.0, gt=0, le=500)
    max_concurrent_dispatches: int = Field(1000, ge=1, le=5000)
    max_burst_size: int | None = Field(
        None,
        description="Output only, as in Cloud Tasks v2: a value given here is ignored and the "
        "service's derived value is reported back.",
    )

    @property
    def effective_burst_size(self) -> int:
        return self.max_burst_size or derived_burst_size(self.max_dispatches_per_second)


class RetryConfig(BaseModel):
    """Retries stop only when ``max_attempts`` attempts were made AND ``max_retry_duration``
    has passed since the first one (-1 attempts and a zero duration mean unlimited)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_attempts: int = Field(100, ge=-1)
    max_retry_duration: timedelta = timedelta(0)
    min_backoff: timedelta = timedelta(milliseconds=100)
    max_backoff: timedelta = timedelta(seconds=3600)
    max_doublings: int = Field(16, ge=0)

    @field_validator("max_attempts")
    @classmethod
    def _attempts_not_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("must be -1 (unlimited) or at least 1")
        return value

    @field_validator("max_retry_duration", "min_backoff", "max_backoff")
    @classmethod
    def _not_negative(cls, value: timedelta) -> timedelta:
        if value < timedelta(0):
            raise ValueError("cannot be negative")
        return value

    @model_validator(mode="after")
    def _min_below_max(self) -> Self:
        if self.min_backoff > self.max_backoff:
            raise ValueError("min_backoff must be less than or equal to max_backoff")
        return self


class QueueConfig(BaseModel):
    """A queue by its short id (``image-generation-queue``); project and location belong to
    the backend."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=QUEUE_ID_PATTERN)
    rate_limits: RateLimits = RateLimits()
    retry_config: RetryConfig = RetryConfig()

    def same_settings(self, other: QueueConfig) -> bool:
        """Equal in everything a client can set (the burst size is the service's)."""
        return (
            self.name == other.name
            and self.retry_config == other.retry_config
            and self.rate_limits.max_dispatches_per_second
            == other.rate_limits.max_dispatches_per_second
            and self.rate_limits.max_concurrent_dispatches
            == other.rate_limits.max_concurrent_dispatches
        )


def is_queue_id(value: str) -> bool:
    return _QUEUE_ID_RE.match(value) is not None
