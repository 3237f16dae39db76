"""The observer stream: every state change of queues and tasks, stamped with the clock.

Tests assert on it, metrics count it and the console shows it, so there is exactly one
source of truth for "what happened when".
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import NamedTuple


class EventKind(enum.StrEnum):
    QUEUE_CREATED = "queue_created"
    QUEUE_UPDATED = "queue_updated"
    QUEUE_PAUSED = "queue_paused"
    QUEUE_RESUMED = "queue_resumed"
    QUEUE_PURGED = "queue_purged"
    QUEUE_DELETED = "queue_deleted"
    TASK_CREATED = "task_created"
    TASK_DISPATCHED = "task_dispatched"
    ATTEMPT_SUCCEEDED = "attempt_succeeded"
    ATTEMPT_FAILED = "attempt_failed"
    RETRY_SCHEDULED = "retry_scheduled"
    TASK_EXHAUSTED = "task_exhausted"
    TASK_DELETED = "task_deleted"
    TASK_PURGED = "task_purged"


class Event(NamedTuple):
    """One state change. ``queue`` and ``task`` are short ids; ``attempt`` counts dispatches
    from 1; ``status`` is the HTTP status of a finished attempt (None for a timeout or a
    connection error, with ``detail`` saying which)."""

    time: datetime
    kind: EventKind
    queue: str
    task: str | None = None
    attempt: int | None = None
    status: int | None = None
    retry_at: datetime | None = None
    detail: str = ""


Subscriber = Callable[[Event], None]


class EventStream:
    """Keeps the last ``history`` events and calls subscribers synchronously on each one."""

    def __init__(self, history: int = 100_000) -> None:
        self._history: deque[Event] = deque(maxlen=history)
        self._subscribers: list[Subscriber] = []

    def emit(self, event: Event) -> None:
        self._history.append(event)
        for subscriber in self._subscribers:
            subscriber(event)

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Returns the function that unsubscribes."""
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber)

    def of_kind(self, *kinds: EventKind) -> list[Event]:
        return [event for event in self._history if event.kind in kinds]

    def for_task(self, task: str) -> list[Event]:
        return [event for event in self._history if event.task == task]

    def clear(self) -> None:
        self._history.clear()

    def __iter__(self) -> Iterator[Event]:
        return iter(list(self._history))

    def __len__(self) -> int:
        return len(self._history)
