"""Time as an injected object (trio's idea): every scheduler and every timestamp reads a
``Clock``, so that tests run on a ``VirtualClock`` that moves only when told.

The one ``Clock`` protocol and the one wall clock of the whole project live here, in a leaf
module that imports nothing but the standard library: the emulator imports nothing of ours,
and ``daygen_queue.clock`` re-exports these names for the service and its tests.

As in trio, a clock also answers ``deadline_to_sleep_time(deadline)``: how many real seconds
to sleep for ``deadline`` to arrive. The wall clock answers the difference; the virtual clock
answers ``math.inf``, because sleeping never moves it, only a jump does. The emulator's time
driver (``emulator.driving``) has one loop, and that answer is how it knows whether to sleep
or to jump.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, runtime_checkable


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware UTC."""
        ...

    async def sleep_until(self, when: datetime) -> None:
        """Return once ``now() >= when``."""
        ...

    def deadline_to_sleep_time(self, deadline: datetime) -> float:
        """Real seconds to sleep for ``deadline`` to arrive; ``math.inf`` if sleeping never
        makes it arrive (time on this clock moves only when it is jumped)."""
        ...


@runtime_checkable
class SteppableClock(Protocol):
    """A clock that moves only when jumped: the emulator's driver jumps it, from
    ``run_until_idle()`` and ``advance()``, once every delivery has finished or waits on it."""

    def now(self) -> datetime: ...

    async def sleep_until(self, when: datetime) -> None: ...

    def deadline_to_sleep_time(self, deadline: datetime) -> float: ...

    def advance_to(self, when: datetime) -> None:
        """Jump to ``when`` (never backwards) and wake every sleeper that is due."""
        ...

    def parked(self) -> Mapping[asyncio.Task[Any], datetime]:
        """The asyncio tasks blocked in ``sleep_until`` and the instant each waits for."""
        ...


class SystemClock:
    """The wall clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, when: datetime) -> None:
        delay = (when - self.now()).total_seconds()
        if delay > 0:
            await asyncio.sleep(delay)

    def deadline_to_sleep_time(self, deadline: datetime) -> float:
        return max(0.0, (deadline - self.now()).total_seconds())


# The name the emulator package has always exported for the wall clock.
RealClock = SystemClock

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
        self._order = itertools.count()  # ties between sleepers wake in the order they slept

    def now(self) -> datetime:
        return self._now

    async def sleep_until(self, when: datetime) -> None:
        if when <= self._now:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (when, next(self._order), future))
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

    def deadline_to_sleep_time(self, deadline: datetime) -> float:
        """Sleeping never moves a virtual clock: whoever drives it must jump it."""
        return math.inf

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
