"""Where the engine keeps what must survive a restart.

The engine's state lives in memory; a store is a write-behind journal of it. Writes are
queued synchronously (so the state machine never awaits in the middle of a transition) and
``flush()`` waits until everything queued is durable: CreateTask flushes before it answers,
which is Cloud Tasks' promise that an acknowledged task is stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from emulator.clock import Clock
from emulator.model import QueueRecord, TaskRecord


@dataclass(slots=True)
class StoredState:
    queues: list[QueueRecord] = field(default_factory=list)
    tasks: list[TaskRecord] = field(default_factory=list)
    task_tombstones: dict[str, datetime] = field(default_factory=dict)
    queue_tombstones: dict[str, datetime] = field(default_factory=dict)


class Store(Protocol):
    async def load(self, clock: Clock) -> StoredState:
        """What was kept, without the tombstones that are over. ``clock`` is the engine's:
        a store dates its own housekeeping with it, never with the wall clock."""
        ...

    def put_queue(self, queue: QueueRecord) -> None: ...

    def remove_queue(self, name: str, tombstone_until: datetime) -> None: ...

    def put_task(self, task: TaskRecord) -> None: ...

    def remove_task(self, name: str, tombstone_until: datetime | None) -> None:
        """Forget the task; keep its name reserved until ``tombstone_until`` (None: a
        generated name, nothing to reserve)."""
        ...

    async def flush(self) -> None: ...

    async def close(self) -> None: ...


class MemoryStore:
    """Keeps nothing: the engine's memory is the only copy (the in-process default)."""

    async def load(self, clock: Clock) -> StoredState:
        return StoredState()

    def put_queue(self, queue: QueueRecord) -> None:
        return None

    def remove_queue(self, name: str, tombstone_until: datetime) -> None:
        return None

    def put_task(self, task: TaskRecord) -> None:
        return None

    def remove_task(self, name: str, tombstone_until: datetime | None) -> None:
        return None

    async def flush(self) -> None:
        return None

    async def close(self) -> None:
        return None
