"""The per-queue token bucket: refill at ``max_dispatches_per_second``, capacity
``max_burst_size``; each dispatch takes one token."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

# Float refills land a hair below a whole token at the instant we computed for it.
_EPSILON = 1e-9


class TokenBucket:
    def __init__(self, rate: float, capacity: int, now: datetime) -> None:
        self.rate = rate
        self.capacity = capacity
        self.tokens = float(capacity)  # a new queue starts with a full bucket
        self._updated = now

    def refill(self, now: datetime) -> None:
        if now > self._updated:
            elapsed = (now - self._updated).total_seconds()
            self.tokens = min(float(self.capacity), self.tokens + elapsed * self.rate)
            self._updated = now

    def try_take(self, now: datetime) -> bool:
        self.refill(now)
        if self.tokens >= 1.0 - _EPSILON:
            self.tokens = max(0.0, self.tokens - 1.0)
            return True
        return False

    def next_token_time(self, now: datetime) -> datetime:
        """The first instant at which ``try_take`` will succeed."""
        self.refill(now)
        missing = 1.0 - self.tokens
        if missing <= _EPSILON:
            return now
        return now + timedelta(microseconds=math.ceil(missing / self.rate * 1_000_000))

    def reconfigure(self, rate: float, capacity: int, now: datetime) -> None:
        self.refill(now)
        self.rate = rate
        self.capacity = capacity
        self.tokens = min(self.tokens, float(capacity))
