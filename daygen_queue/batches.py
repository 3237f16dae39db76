"""``create_tasks`` over Cloud Tasks' BatchCreateTasks: requests in chunks of 100, the
long-running operation polled to its end, and one result per task read from it.

The operation is read raw (``google.longrunning.Operation``), not through api_core's
``operation.result()``: when every request of a batch fails Cloud Tasks sets the operation's
``error`` (ABORTED) and ``result()`` would raise, losing the per-task reasons that the
metadata's ``failed_requests`` still holds (an already existing task is one of them).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any, Final

from google.api_core import exceptions as google_errors
from google.longrunning import operations_pb2
from google.rpc import code_pb2

from daygen_queue import messages as pb
from daygen_queue.error_translation import translate_error, translated
from daygen_queue.errors import BackendUnavailable, QueueError
from daygen_queue.models import NewTask, Task
from daygen_queue.rpc import CloudTasksRpc, unpack_details

MAX_BATCH: Final = 100  # Cloud Tasks' limit per BatchCreateTasks
# Polling an operation that is not done yet: the first wait, its growth, its cap.
_FIRST_POLL_SECONDS: Final = 0.02
_POLL_GROWTH: Final = 2.0
_MAX_POLL_SECONDS: Final = 1.0


def chunks(tasks: Sequence[NewTask]) -> list[Sequence[NewTask]]:
    return [tasks[start : start + MAX_BATCH] for start in range(0, len(tasks), MAX_BATCH)]


async def create_chunk(
    rpc: CloudTasksRpc, queue_path: str, tasks: Sequence[NewTask], *, timeout: float
) -> list[Task | QueueError]:
    """One BatchCreateTasks call for at most 100 tasks, polled until done."""
    request = pb.BatchCreateTasksRequestPb(parent=queue_path)
    for task in tasks:
        request.requests.append(pb.create_task_request(queue_path, task))
    with translated("task"):
        operation = await rpc.batch_create_tasks(request)
        operation = await until_done(rpc, operation, timeout=timeout)
    return results(operation, tasks, request)


async def until_done(rpc: CloudTasksRpc, operation: Any, *, timeout: float) -> Any:
    """Poll GetOperation (with a growing pause) until the operation is done."""
    deadline = time.monotonic() + timeout
    pause = _FIRST_POLL_SECONDS
    while not operation.done:
        if time.monotonic() > deadline:
            raise BackendUnavailable(f"operation {operation.name} not done after {timeout} s")
        await asyncio.sleep(pause)
        pause = min(pause * _POLL_GROWTH, _MAX_POLL_SECONDS)
        operation = await rpc.get_operation(operations_pb2.GetOperationRequest(name=operation.name))
    return operation


def _error_of(status: Any) -> QueueError:
    error: google_errors.GoogleAPICallError = google_errors.from_grpc_status(  # type: ignore[no-untyped-call]
        status.code, status.message, details=unpack_details(status.details)
    )
    return translate_error(error, "task")


def results(operation: Any, tasks: Sequence[NewTask], request: Any) -> list[Task | QueueError]:
    """Per task, in order: the created task (from the response, which lists the created ones
    in request order) or its error (from the metadata's ``failed_requests``, by index)."""
    metadata = pb.BatchCreateTasksMetadataPb()
    if operation.HasField("metadata"):
        operation.metadata.Unpack(metadata)
    failed = metadata.failed_requests
    if operation.HasField("error") and not failed:
        raise _error_of(operation.error)  # the batch as a whole failed
    if operation.HasField("error") and operation.error.code != code_pb2.ABORTED:
        raise _error_of(operation.error)
    created: list[Any] = []
    if operation.HasField("response"):
        response = pb.BatchCreateTasksResponsePb()
        operation.response.Unpack(response)
        created = list(response.tasks)
    answers: list[Task | QueueError] = []
    next_created = iter(created)
    for index, task in enumerate(tasks):
        if index in failed:
            answers.append(_error_of(failed[index]))
            continue
        message = next(next_created, None)
        if message is None:  # a malformed answer: say so for this task, keep the others
            answers.append(QueueError(f"the batch reported no result for task {index}"))
            continue
        sent = (task.http_request, request.requests[index].task.http_request)
        answers.append(pb.task_model(message, sent=sent))
    return answers
