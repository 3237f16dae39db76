"""Queue configuration with Cloud Tasks' defaults and published limits.

Checked when built, for an early error that names the field; the queue service (real or
emulated) validates again like Cloud Tasks does.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Final, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

QUEUE_ID_PATTERN = r"^[A-Za-z0-9-]{1,100}$"
# Fields of a QueueConfig the service reports but a client cannot set.
OUTPUT_ONLY: Final = {"rate_limits": {"max_burst_size"}}


class RateLimits(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    max_dispatches_per_second: float = Field(500.0, gt=0, le=500)
    max_concurrent_dispatches: int = Field(1000, ge=1, le=5000)
    max_burst_size: int | None = Field(
        None,
        description="Output only, as in Cloud Tasks v2: the service derives it from the rate and "
        "reports it on every queue it returns; a value given here is ignored.",
    )


class RetryConfig(BaseModel):
    """Retries stop only when ``max_attempts`` attempts were made AND ``max_retry_duration``
    has passed since the first one (-1 attempts and a zero duration mean unlimited)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_attempts: int = Field(100, ge=-1)
    max_retry_duration: timedelta = timedelta(0)
    min_backoff: timedelta = timedelta(milliseconds=100)
    max_backoff: timedelta = timedelta(seconds=3600)
    # Cloud Tasks reads 0 as unset (proto3) and reports its default, 16, instead.
    max_doublings: int = Field(16, ge=1)

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

    def settable(self) -> dict[str, Any]:
        """Everything a client can set, as nested dicts: what ``same_settings`` compares and
        what ``daygen-queue apply`` reports field by field."""
        return self.model_dump(exclude=OUTPUT_ONLY)

    def same_settings(self, other: QueueConfig) -> bool:
        """Equal in everything a client can set (the burst size is the service's)."""
        return self.settable() == other.settable()
