"""``BatchCreateTasks`` and ``BatchDeleteTasks``: many CreateTask / DeleteTask calls under one
long-running operation.

Neither is atomic: each request is carried out exactly as its single RPC would be (same
validation, same errors), successes and failures side by side. What is wrong with the batch
as a whole is refused before anything is done, synchronously: a malformed or missing queue,
too many requests (more than 100 creates, 1000 deletes), a request naming another queue.
The operation's metadata gives ``start_time``, ``end_time``, ``state`` and the failures by
index; when every request failed the operation's ``error`` is ABORTED with the message
Cloud Tasks documents for BatchDelete (used for BatchCreate too: the API leaves that case
open) and ``state`` is PARTIALLY_SUCCEEDED, under whose documentation the rule stands.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Final

from google.longrunning import operations_pb2
from google.protobuf import empty_pb2
from google.rpc import code_pb2, status_pb2

from emulator import rules
from emulator.apis import Api
from emulator.clock import Clock
from emulator.conversions import set_timestamp
from emulator.engine import Engine
from emulator.errors import EmulatorError, InvalidArgument, rpc_status_of
from emulator.model import TaskRecord
from emulator.operations import OperationStore
from emulator.validation import split_queue_name, split_task_name

NONE_SUCCEEDED: Final = (
    "None of the requests succeeded, refer to {metadata}.failed_requests for individual "
    "error details"
)
CreateOne = Callable[[str, Any, Api], Awaitable[TaskRecord]]
TaskToPb = Callable[[TaskRecord, int, Api], Any]


class Batches:
    def __init__(
        self,
        engine: Engine,
        operations: OperationStore,
        *,
        create_one: CreateOne,
        task_to_pb: TaskToPb,
    ) -> None:
        self._engine = engine
        self._operations = operations
        self._create_one = create_one
        self._task_to_pb = task_to_pb

    @property
    def _clock(self) -> Clock:
        return self._engine.clock

    async def create(self, request: Any, api: Api) -> operations_pb2.Operation:
        parent = request.parent
        location = _location(parent)
        replay = self._operations.replay(location, "BatchCreateTasks", request.request_id)
        if replay is not None:
            return replay
        self._engine.get_queue(parent)  # NOT_FOUND before anything is created
        items = list(request.requests)
        if not items:
            raise InvalidArgument("BatchCreateTasksRequest.requests is required.")
        if len(items) > rules.MAX_BATCH_CREATE_REQUESTS:
            raise InvalidArgument(
                f"BatchCreateTasksRequest.requests has {len(items)} requests; the maximum is "
                f"{rules.MAX_BATCH_CREATE_REQUESTS}."
            )
        for index, item in enumerate(items):
            if item.parent and item.parent != parent:
                raise InvalidArgument(
                    f"BatchCreateTasksRequest.requests[{index}].parent ('{item.parent}') must be "
                    f"the same as BatchCreateTasksRequest.parent ('{parent}')."
                )
        start = self._clock.now()
        created: list[Any] = []
        failed: dict[int, status_pb2.Status] = {}
        for index, item in enumerate(items):
            try:
                record = await self._create_one(parent, item.task, api)
            except EmulatorError as error:
                failed[index] = rpc_status_of(error)
                continue
            created.append(self._task_to_pb(record, item.response_view, api))
        response = api.BatchCreateTasksResponse()
        response.tasks.extend(created)
        return self._finish(
            api, "BatchCreateTasks", api.BatchCreateTasksMetadata, location, request.request_id,
            start=start, failed=failed, total=len(items), response=response,
        )  # fmt: skip

    async def delete(self, request: Any, api: Api) -> operations_pb2.Operation:
        parent = request.parent
        location = _location(parent)
        replay = self._operations.replay(location, "BatchDeleteTasks", request.request_id)
        if replay is not None:
            return replay
        self._engine.get_queue(parent)
        names = list(request.names)
        if not names:
            raise InvalidArgument("BatchDeleteTasksRequest.names is required.")
        if len(names) > rules.MAX_BATCH_DELETE_NAMES:
            raise InvalidArgument(
                f"BatchDeleteTasksRequest.names has {len(names)} names; the maximum is "
                f"{rules.MAX_BATCH_DELETE_NAMES}."
            )
        start = self._clock.now()
        failed: dict[int, status_pb2.Status] = {}
        for index, name in enumerate(names):
            try:
                queue, _ = split_task_name(name)
                if queue != parent:
                    raise InvalidArgument(
                        f"The queue name from request ('{parent}') must be the same as the queue "
                        f"name in the named task ('{queue}').",
                        resource="task",
                    )
                await self._engine.delete_task(name)
            except EmulatorError as error:
                failed[index] = rpc_status_of(error)
        return self._finish(
            api, "BatchDeleteTasks", api.BatchDeleteTasksMetadata, location, request.request_id,
            start=start, failed=failed, total=len(names), response=empty_pb2.Empty(),
        )  # fmt: skip

    def _finish(
        self,
        api: Api,
        method: str,
        metadata_class: Any,
        location: str,
        request_id: str,
        *,
        start: datetime,
        failed: dict[int, status_pb2.Status],
        total: int,
        response: Any,
    ) -> operations_pb2.Operation:
        states = metadata_class.State
        name = OperationStore.new_name(location)
        metadata = metadata_class()
        set_timestamp(metadata.start_time, start)
        running = operations_pb2.Operation(name=name, done=False)
        metadata.state = states.Value("RUNNING")
        running.metadata.Pack(metadata)
        set_timestamp(metadata.end_time, self._clock.now())
        for index, status in failed.items():
            metadata.failed_requests[index].CopyFrom(status)
        final = operations_pb2.Operation(name=name, done=True)
        if not failed:
            metadata.state = states.Value("SUCCEEDED")
            final.response.Pack(response)
        elif len(failed) < total:
            metadata.state = states.Value("PARTIALLY_SUCCEEDED")
            final.response.Pack(response)
        else:
            metadata.state = states.Value("PARTIALLY_SUCCEEDED")
            short = metadata_class.DESCRIPTOR.name
            final.error.code = code_pb2.ABORTED
            final.error.message = NONE_SUCCEEDED.format(metadata=short)
        final.metadata.Pack(metadata)
        return self._operations.keep(
            final, running, location=location, method=method, request_id=request_id
        )


def _location(parent: str) -> str:
    """``projects/P/locations/L`` of a queue name (INVALID_ARGUMENT when malformed)."""
    project, location, _ = split_queue_name(parent)
    return f"projects/{project}/locations/{location}"
