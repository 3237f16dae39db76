"""Names that stay reserved after their resource is gone.

Cloud Tasks keeps a task name the client chose reserved for about an hour after the task
completed or was deleted (CreateTask with it answers ALREADY_EXISTS, GetTask says the task
"existed recently"), and a deleted queue's name for about seven days (CreateQueue answers
FAILED_PRECONDITION). Generated task ids are never reserved.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from datetime import datetime, timedelta

from emulator.errors import QUEUE_TOMBSTONED, FailedPrecondition


class Tombstones:
    """Task and queue tombstones with their expiry instants; the engine journals them."""

    def __init__(self, *, task_ttl: timedelta, queue_ttl: timedelta) -> None:
        self.task_ttl = task_ttl
        self.queue_ttl = queue_ttl
        self._tasks: dict[str, datetime] = {}
        # Task tombstones by expiry (a heap: a v2beta3 queue may set its own TTL), so that
        # expiring them costs nothing while none is due.
        self._task_order: list[tuple[datetime, str]] = []
        self._queues: dict[str, datetime] = {}

    def restore(self, tasks: Mapping[str, datetime], queues: Mapping[str, datetime]) -> None:
        """Take back what the store kept across a restart."""
        for name, until in sorted(tasks.items(), key=lambda item: item[1]):
            self._tasks[name] = until
            heapq.heappush(self._task_order, (until, name))
        self._queues.update(queues)

    def bury(self, task_name: str, now: datetime, ttl: timedelta | None = None) -> datetime:
        """Reserve a task name for ``ttl`` (the default TTL when None); returns until when,
        for the store."""
        until = now + (self.task_ttl if ttl is None else ttl)
        self._tasks[task_name] = until
        heapq.heappush(self._task_order, (until, task_name))
        return until

    def is_buried(self, task_name: str, now: datetime) -> bool:
        until = self._tasks.get(task_name)
        return until is not None and until > now

    def expire(self, now: datetime) -> None:
        """Forget the task tombstones that are over."""
        order = self._task_order
        while order and order[0][0] <= now:
            until, name = heapq.heappop(order)
            if self._tasks.get(name) == until:  # not buried again since
                del self._tasks[name]

    def bury_queue(self, queue_name: str, now: datetime) -> datetime:
        """Reserve a deleted queue's name; returns until when, for the store."""
        until = now + self.queue_ttl
        self._queues[queue_name] = until
        return until

    def check_queue(self, queue_name: str, now: datetime) -> None:
        """FAILED_PRECONDITION while the name is reserved; an expired tombstone is dropped."""
        until = self._queues.get(queue_name)
        if until is not None:
            if until > now:
                raise FailedPrecondition(QUEUE_TOMBSTONED, resource="queue")
            del self._queues[queue_name]
