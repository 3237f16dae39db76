"""``TaskQueue``: the one interface the app sees, whatever Cloud Tasks sits behind it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from daygen_queue.config import QueueConfig
from daygen_queue.errors import QueueError
from daygen_queue.models import NewTask, Queue, Task


@runtime_checkable
class TaskQueue(Protocol):
    """A Cloud Tasks service. Names are short ids: queue ``image-generation-queue``, task
    ``job-123``. Failures raise ``QueueError`` subclasses carrying Cloud Tasks' code and
    message."""

    async def create_queue(self, config: QueueConfig) -> Queue:
        """Raises ``QueueAlreadyExists``, or ``QueueRecentlyDeleted`` inside the reservation
        window after a delete."""
        ...

    async def update_queue(self, config: QueueConfig) -> Queue:
        """Set every field of ``config``; creates the queue if missing (an upsert, like
        Cloud Tasks' UpdateQueue). The state (running/paused) is not touched."""
        ...

    async def ensure_queue(self, config: QueueConfig) -> Queue:
        """Create or update so that the queue has ``config``: idempotent, for set-up scripts
        and service start-up. Changes nothing when the queue already matches."""
        ...

    async def get_queue(self, name: str) -> Queue:
        """With ``stats``. Raises ``QueueNotFound``."""
        ...

    async def list_queues(self) -> list[Queue]:
        """Every queue of the backend's project and location, by name."""
        ...

    async def delete_queue(self, name: str) -> None:
        """Deletes the queue and its tasks; the name stays reserved for a while."""
        ...

    async def pause_queue(self, name: str) -> Queue:
        """Stops dispatching; tasks can still be created."""
        ...

    async def resume_queue(self, name: str) -> Queue: ...

    async def purge_queue(self, name: str) -> Queue:
        """Deletes every task created so far (and, as Cloud Tasks, in the same second)."""
        ...

    async def create_task(self, queue: str, task: NewTask) -> Task:
        """Durably stored when it returns. Raises ``QueueNotFound``, ``TaskAlreadyExists``
        (dedup by name) or ``InvalidArgument``."""
        ...

    async def create_tasks(self, queue: str, tasks: Sequence[NewTask]) -> list[Task | QueueError]:
        """Create many tasks in one queue (Cloud Tasks' BatchCreateTasks, 100 per call). Not
        atomic: one result per task, in order, the created ``Task`` or the ``QueueError`` that
        task alone would have raised. A failure of the whole call (``QueueNotFound``,
        ``BackendUnavailable``...) raises."""
        ...

    async def get_task(self, queue: str, task: str) -> Task:
        """Raises ``TaskNotFound`` once the task succeeded, ran out of retries or was
        deleted."""
        ...

    async def list_tasks(self, queue: str) -> list[Task]: ...

    async def delete_task(self, queue: str, task: str) -> None: ...

    async def run_task(self, queue: str, task: str) -> Task:
        """Dispatch now, even if the queue is paused or rate-limited."""
        ...

    async def close(self) -> None: ...
