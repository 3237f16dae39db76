"""Time as an injected object (trio's idea): every scheduler and every timestamp reads a
``Clock``, so tests run on a ``VirtualClock`` that moves only when told.

Both classes also satisfy the emulator's own clock protocols structurally.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware UTC."""
        ...

    async def sleep_until(self, when: datetime) -> None:
        """Return once ``now() >= when``."""
        ...


class SystemClock:
    """The wall clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, when: datetime) -> None:
        delay = (when - self.now()).total_seconds()
        if delay > 0:
            await asyncio.sleep(delay)


DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)


class VirtualClock:
    """A clock that stands still until ``advance()`` / ``advance_to()`` moves it.

    Sleepers are woken in deadline order when time passes their deadline; nothing ever waits
    on the wall clock, so "retry in an hour" takes microseconds.
    """

    def __init__(self, start: datetime = DEFAULT_START) -> None:
        if start.tzinfo is None:
            raise ValueError("VirtualClock needs a timezone-aware start")
        self._now = start.astimezone(UTC)
        self._sleepers: list[tuple[datetime, int, asyncio.Future[None]]] = []
        self._parked: dict[asyncio.Task[Any], datetime] = {}
        self._seq = itertools.count()

    def now(self) -> datetime:
        return self._now

    async def sleep_until(self, when: datetime) -> None:
        if when <= self._now:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (when, next(self._seq), future))
        task = asyncio.current_task()
        if task is not None:
            self._parked[task] = when
        try:
            await future
        finally:
            if task is not None:
                self._parked.pop(task, None)

    async def sleep(self, seconds: float) -> None:
        await self.sleep_until(self._now + timedelta(seconds=seconds))

    def advance(self, delta: timedelta) -> None:
        if delta < timedelta(0):
            raise ValueError("time does not go backwards")
        self.advance_to(self._now + delta)

    def advance_to(self, when: datetime) -> None:
        if when < self._now:
            raise ValueError(f"time does not go backwards ({when} < {self._now})")
        self._now = when
        while self._sleepers and self._sleepers[0][0] <= when:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)

    def parked(self) -> Mapping[asyncio.Task[Any], datetime]:
        """Tasks blocked in ``sleep_until`` whose wake-up has not been triggered yet."""
        return {task: when for task, when in self._parked.items() if when > self._now}

    def next_wakeup(self) -> datetime | None:
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)
        return self._sleepers[0][0] if self._sleepers else None
