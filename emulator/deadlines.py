"""The dispatch deadlines of the attempts in flight, earliest first.

One heap for every queue, so that the engine's time driver needs a single look to know when
the next attempt times out. Most attempts finish long before their deadline, and a heap
cannot remove from the middle: a finished attempt's entry stays behind (lazy deletion) and is
dropped when it reaches the top, or in one rebuild once such entries are most of the heap,
so memory stays flat however many tasks pass through.
"""

from __future__ import annotations

import heapq
import itertools
from datetime import datetime, timedelta
from typing import Generic, Protocol, TypeVar

from emulator import rules

_MICRO = timedelta(microseconds=1)
# Below this many finished entries the heap is never rebuilt (a rebuild is O(n)).
_REBUILD_AFTER = 64


class Timed(Protocol):
    """What the heap holds: something with a deadline that may finish before it."""

    @property
    def deadline(self) -> datetime: ...

    @property
    def done(self) -> bool: ...


T = TypeVar("T", bound=Timed)


class DeadlineHeap(Generic[T]):
    def __init__(self) -> None:
        # (deadline in epoch microseconds, push order, item): ints compare faster than
        # datetimes, and the push order breaks ties without comparing items.
        self._entries: list[tuple[int, int, T]] = []
        self._order = itertools.count()
        self._finished = 0  # entries of finished items still in the heap

    def __len__(self) -> int:
        return len(self._entries)

    def push(self, item: T) -> None:
        due_us = (item.deadline - rules.EPOCH) // _MICRO
        heapq.heappush(self._entries, (due_us, next(self._order), item))

    def finished(self) -> None:
        """An item still in the heap finished before its deadline."""
        self._finished += 1
        self._prune()

    def earliest(self) -> datetime | None:
        """The deadline of the first unfinished item, if any."""
        self._prune()
        return self._entries[0][2].deadline if self._entries else None

    def pop_expired(self, now: datetime) -> list[T]:
        """Remove and return, in deadline order, the unfinished items whose deadline is at or
        before ``now``."""
        now_us = (now - rules.EPOCH) // _MICRO
        entries = self._entries
        expired: list[T] = []
        while entries and entries[0][0] <= now_us:
            _, _, item = heapq.heappop(entries)
            if item.done:
                self._finished -= 1
            else:
                expired.append(item)
        return expired

    def _prune(self) -> None:
        entries = self._entries
        while entries and entries[0][2].done:
            heapq.heappop(entries)
            self._finished -= 1
        if self._finished > _REBUILD_AFTER and self._finished * 2 > len(entries):
            self._entries = [entry for entry in entries if not entry[2].done]
            heapq.heapify(self._entries)
            self._finished = 0
