"""daygen_queue: one ``TaskQueue`` interface over Google Cloud Tasks and its local emulator.

The package root imports no Google client and no emulator: ``open_task_queue`` loads a
backend when asked. The one implementation is ``daygen_queue.client.CloudTasksQueue`` over a
``daygen_queue.rpc.CloudTasksRpc`` transport; ``emulator`` is imported only by
``backends/emulator.py`` (the in-process transport) and ``queues_file.py``.
"""

from daygen_queue.clock import Clock, SystemClock, VirtualClock
from daygen_queue.config import QueueConfig, RateLimits, RetryConfig
from daygen_queue.delivery import InvalidDelivery, TaskDelivery
from daygen_queue.errors import (
    BackendUnavailable,
    InvalidArgument,
    QueueAlreadyExists,
    QueueError,
    QueueNotFound,
    QueueRecentlyDeleted,
    TaskAlreadyExists,
    TaskNotFound,
)
from daygen_queue.factory import open_task_queue
from daygen_queue.interface import TaskQueue
from daygen_queue.models import (
    Attempt,
    HttpRequest,
    NewTask,
    OidcToken,
    Queue,
    QueueState,
    QueueStats,
    Task,
)

__all__ = [
    "Attempt",
    "BackendUnavailable",
    "Clock",
    "HttpRequest",
    "InvalidArgument",
    "InvalidDelivery",
    "NewTask",
    "OidcToken",
    "Queue",
    "QueueAlreadyExists",
    "QueueConfig",
    "QueueError",
    "QueueNotFound",
    "QueueRecentlyDeleted",
    "QueueState",
    "QueueStats",
    "RateLimits",
    "RetryConfig",
    "SystemClock",
    "Task",
    "TaskAlreadyExists",
    "TaskDelivery",
    "TaskNotFound",
    "TaskQueue",
    "VirtualClock",
    "open_task_queue",
]
