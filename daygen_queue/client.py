"""``CloudTasksQueue``: the one ``TaskQueue`` implementation, over any ``CloudTasksRpc``.

All the policy lives here once, as httpx keeps it in its ``Client``: resource names, request
construction, conversion of replies into ``daygen_queue`` models, error translation,
``ensure_queue`` and list paging. Under it sits a narrow transport (one coroutine per Cloud
Tasks RPC, protobuf in and out): Google's clients over gRPC or REST
(``backends.cloud_tasks``), or the emulator's service in process (``backends.emulator``). So
an in-process test goes through the same requests, validation, conversions and error mapping
as production.

Named for what it speaks: it is a ``TaskQueue`` for any Cloud Tasks, Google's or emulated.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Self

from google.api_core import exceptions as google_errors
from google.protobuf import field_mask_pb2

from daygen_queue import batches
from daygen_queue import messages as pb
from daygen_queue.config import QueueConfig
from daygen_queue.error_translation import translate_error, translated
from daygen_queue.errors import BackendUnavailable, QueueError, QueueNotFound
from daygen_queue.models import NewTask, Queue, Task
from daygen_queue.rpc import CloudTasksRpc

# The most ListTasks answers per page (Cloud Tasks' limit); fewer round trips for a listing.
_TASKS_PAGE_SIZE = 1000


class CloudTasksQueue:
    """A ``TaskQueue`` on the Cloud Tasks v2 API, whatever carries the calls.

    ``project`` and ``location`` name where the queues live; the interface itself speaks in
    short ids (queue ``image-generation-queue``, task ``job-123``).
    """

    def __init__(
        self,
        rpc: CloudTasksRpc,
        *,
        project: str,
        location: str,
        operation_timeout: float = 60.0,
    ) -> None:
        """``operation_timeout``: how long ``create_tasks`` polls one batch operation."""
        self.rpc = rpc
        self.operation_timeout = operation_timeout
        self.project = project
        self.location = location
        self.parent = f"projects/{project}/locations/{location}"

    def queue_path(self, queue: str) -> str:
        return f"{self.parent}/queues/{queue}"

    def task_path(self, queue: str, task: str) -> str:
        return f"{self.parent}/queues/{queue}/tasks/{task}"

    # ------------------------------------------------------------------ queues

    async def create_queue(self, config: QueueConfig) -> Queue:
        request = pb.CreateQueueRequestPb(parent=self.parent)
        pb.fill_queue(request.queue, config, self.queue_path(config.name))
        with translated("queue"):
            return pb.queue_model(await self.rpc.create_queue(request))

    async def update_queue(self, config: QueueConfig) -> Queue:
        request = pb.UpdateQueueRequestPb(
            update_mask=field_mask_pb2.FieldMask(paths=pb.SETTABLE_QUEUE_PATHS)
        )
        pb.fill_queue(request.queue, config, self.queue_path(config.name))
        with translated("queue"):
            return pb.queue_model(await self.rpc.update_queue(request))

    async def ensure_queue(self, config: QueueConfig) -> Queue:
        request = pb.GetQueueRequestPb(name=self.queue_path(config.name))
        try:
            with translated("queue"):
                current = pb.queue_model(await self.rpc.get_queue(request))
        except QueueNotFound:
            return await self.create_queue(config)
        if current.config.same_settings(config):
            return current
        return await self.update_queue(config)

    async def get_queue(self, name: str) -> Queue:
        request = pb.BetaGetQueueRequestPb(name=self.queue_path(name))
        request.read_mask.paths.extend(pb.STATS_READ_MASK)
        with translated("queue"):
            return pb.queue_with_stats(await self.rpc.get_queue_v2beta3(request))

    async def list_queues(self) -> list[Queue]:
        request = pb.ListQueuesRequestPb(parent=self.parent)
        with translated("queue"):
            pages = await _every_page(self.rpc.list_queues, request, "queues")
        return [pb.queue_model(queue) for queue in pages]

    async def delete_queue(self, name: str) -> None:
        with translated("queue"):
            await self.rpc.delete_queue(pb.DeleteQueueRequestPb(name=self.queue_path(name)))

    async def pause_queue(self, name: str) -> Queue:
        request = pb.PauseQueueRequestPb(name=self.queue_path(name))
        with translated("queue"):
            return pb.queue_model(await self.rpc.pause_queue(request))

    async def resume_queue(self, name: str) -> Queue:
        request = pb.ResumeQueueRequestPb(name=self.queue_path(name))
        with translated("queue"):
            return pb.queue_model(await self.rpc.resume_queue(request))

    async def purge_queue(self, name: str) -> Queue:
        request = pb.PurgeQueueRequestPb(name=self.queue_path(name))
        with translated("queue"):
            return pb.queue_model(await self.rpc.purge_queue(request))

    # ------------------------------------------------------------------ tasks

    async def create_task(self, queue: str, task: NewTask) -> Task:
        request = pb.create_task_request(self.queue_path(queue), task)
        # The hot path (every job): a plain try instead of ``translated``'s generator.
        try:
            created = await self.rpc.create_task(request)
        except google_errors.RetryError as error:
            raise BackendUnavailable(str(error)) from None
        except google_errors.GoogleAPICallError as error:
            raise translate_error(error, "task") from None
        return pb.task_model(created, sent=(task.http_request, request.task.http_request))

    async def create_tasks(self, queue: str, tasks: Sequence[NewTask]) -> list[Task | QueueError]:
        """BatchCreateTasks, 100 tasks per call, one result per task in order."""
        path = self.queue_path(queue)
        results: list[Task | QueueError] = []
        for chunk in batches.chunks(tasks):
            results.extend(
                await batches.create_chunk(self.rpc, path, chunk, timeout=self.operation_timeout)
            )
        return results

    async def get_task(self, queue: str, task: str) -> Task:
        request = pb.GetTaskRequestPb(name=self.task_path(queue, task), response_view=pb.FULL_VIEW)
        with translated("task"):
            return pb.task_model(await self.rpc.get_task(request))

    async def list_tasks(self, queue: str) -> list[Task]:
        request = pb.ListTasksRequestPb(
            parent=self.queue_path(queue), response_view=pb.FULL_VIEW, page_size=_TASKS_PAGE_SIZE
        )
        with translated("queue"):
            pages = await _every_page(self.rpc.list_tasks, request, "tasks")
        return [pb.task_model(task) for task in pages]

    async def delete_task(self, queue: str, task: str) -> None:
        with translated("task"):
            await self.rpc.delete_task(pb.DeleteTaskRequestPb(name=self.task_path(queue, task)))

    async def run_task(self, queue: str, task: str) -> Task:
        request = pb.RunTaskRequestPb(name=self.task_path(queue, task), response_view=pb.FULL_VIEW)
        with translated("task"):
            return pb.task_model(await self.rpc.run_task(request))

    # ------------------------------------------------------------------ lifecycle

    async def close(self) -> None:
        await self.rpc.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def _every_page(call: Callable[[Any], Awaitable[Any]], request: Any, field: str) -> list[Any]:
    """The items of every page of a List call, following ``next_page_token``."""
    items: list[Any] = []
    while True:
        response = await call(request)
        items.extend(getattr(response, field))
        if not response.next_page_token:
            return items
        request.page_token = response.next_page_token
