"""The time protocols the engine needs, and a real clock for when the emulator runs alone.

The engine never reads the wall clock directly: ``daygen_queue``'s ``SystemClock`` and
``VirtualClock`` satisfy these protocols structurally, so the emulator imports nothing of ours.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable


class Clock(Protocol):
    def now(self) -> datetime:
        """Timezone-aware UTC."""
        ...

    async def sleep_until(self, when: datetime) -> None:
        """Return once ``now() >= when``."""
        ...


@runtime_checkable
class SteppableClock(Protocol):
    """A clock that moves only when told (a virtual clock).

    On such a clock the engine dispatches nothing on its own: ``run_until_idle()`` and
    ``advance()`` drive it, which is what makes a scenario's event trace identical every run.
    """

    def now(self) -> datetime: ...

    async def sleep_until(self, when: datetime) -> None: ...

    def advance_to(self, when: datetime) -> None:
        """Jump to ``when`` (never backwards) and wake every sleeper that is due."""
        ...

    def parked(self) -> Mapping[asyncio.Task[Any], datetime]:
        """The asyncio tasks blocked in ``sleep_until`` and the instant each waits for."""
        ...


class RealClock:
    """Wall-clock time in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, when: datetime) -> None:
        delay = (when - self.now()).total_seconds()
        if delay > 0:
            await asyncio.sleep(delay)
